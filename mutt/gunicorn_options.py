"""gunicorn settings ``mutt serve`` adds for a hardened container.

gunicorn 25.1 and later open a control socket (``gunicornc``: change the
worker count, reload, shut down) at ``$HOME/.gunicorn/gunicorn.ctl``. MUTT
never uses it, it is one more door into the process, and it is a write
outside the paths the image makes writable: on a read-only root filesystem
it fails with an error in the log (tests/deploy/test_image_runtime.py).
Older gunicorns have no such setting and refuse unknown ones.
"""

from __future__ import annotations

from gunicorn.config import KNOWN_SETTINGS  # type: ignore[import-untyped]


def hardening() -> dict[str, object]:
    """Options for functions-framework's ``create_server`` (gunicorn settings)."""
    known = {setting.name for setting in KNOWN_SETTINGS}
    return {"control_socket_disable": True} if "control_socket_disable" in known else {}
