"""Is a TCP port free to listen on? One small module, so ``mutt serve`` can ask
without importing ``mutt.run`` (requests, PyYAML, the embedded servers: ~45 ms
of a function's cold start)."""

from __future__ import annotations

import socket

from shared.errors import PortInUseError


def check_port_free(host: str, port: int) -> None:
    """Fail with one clear line if another process listens on ``host:port``.

    The probe sets ``SO_REUSEADDR``, as every server MUTT starts does
    (gunicorn, the ops server, asyncio): a port held only by ``TIME_WAIT``
    sockets of a process that just died is free to listen on again, so a
    restart (systemd ``Restart=always``, a quadlet, a benchmark) is not refused
    for the kernel's 60 s ``TIME_WAIT`` period.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(1)  # with SO_REUSEADDR a bind alone succeeds beside a listener
    except OSError as exc:
        raise PortInUseError(
            f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port"
        ) from None
    finally:
        sock.close()
