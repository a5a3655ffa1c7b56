"""gunicorn settings ``mutt serve`` adds: a hardened container, and ingest's worker class.

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


# ingest answers a throttled client's new connections at accept, before gunicorn
# parses them (functions/ingest/worker.py); every other function keeps gthread.
WORKER_CLASSES = {"ingest": "functions.ingest.worker.IngestWorker"}


def worker(function: str) -> dict[str, object]:
    """The ``worker_class`` option for ``function``, when it has its own."""
    name = WORKER_CLASSES.get(function)
    return {"worker_class": name} if name else {}
