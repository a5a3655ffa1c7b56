"""TLS to PostgreSQL the libpq way: ``sslmode`` (and ``sslrootcert``) in the database URL.

pg8000 on its own offers two things: no TLS, or a client context it builds
with ``ssl.create_default_context()`` on every connection (49 ms here, most
of it loading CA certificates it then does not verify against). This module
maps libpq's modes onto pg8000 and builds each context once per process:

- ``disable``: plain TCP.
- ``prefer`` (the default, as in libpq): TLS when the server offers it, not
  verified; plain when the server has TLS off (remembered per server).
- ``require``: TLS or no connection, not verified.
- ``verify-ca``: TLS with the server certificate checked against
  ``sslrootcert`` (a file) or the system's CA store.
- ``verify-full``: as verify-ca, and the host name must match the certificate.

Unix sockets never use TLS, as in libpq.
"""

from __future__ import annotations

import ssl
import threading
from functools import lru_cache

MODES = ("disable", "prefer", "require", "verify-ca", "verify-full")
DEFAULT_MODE = "prefer"

_REFUSED = "Server refuses SSL"  # pg8000's InterfaceError text when the server says 'N'
_plain_servers: set[tuple[str, int]] = set()  # servers seen answering prefer without TLS
_lock = threading.Lock()


@lru_cache(maxsize=8)
def client_context(mode: str, rootcert: str | None = None) -> ssl.SSLContext:
    """The client context of a TLS mode, built once per process (and per root certificate)."""
    if mode in ("prefer", "require"):
        unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no CA store to load
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE
        return unverified
    verified = ssl.create_default_context(cafile=rootcert)
    verified.check_hostname = mode == "verify-full"
    return verified


def ssl_argument(
    mode: str, rootcert: str | None, server: tuple[str, int] | None
) -> ssl.SSLContext | bool:
    """pg8000's ``ssl_context`` for a connection; ``server`` is None for a Unix socket."""
    if mode == "disable" or server is None:
        return False
    if mode == "prefer":
        with _lock:
            if server in _plain_servers:
                return False
    return client_context(mode, rootcert)


def refused_tls(exc: BaseException) -> bool:
    """Whether a pg8000 error says the server does not offer TLS."""
    return _REFUSED in str(exc)


def remember_plain(server: tuple[str, int]) -> None:
    """Under ``prefer``, later connections to this server go plain at once."""
    with _lock:
        _plain_servers.add(server)
