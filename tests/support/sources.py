"""Helpers for the sources tests: a real ingest in this process, the events it published,
the argv of the source commands, readiness of UDP daemons that have no health endpoint."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import functions_framework
import redis
from werkzeug.serving import make_server

import functions
from functions.ingest import app as ingest_app
from functions.ingest import auth
from functions.ingest.exposure import check_start
from mutt.cli import build_parser
from shared.broker.keys import Keys
from shared.config import Settings
from shared.context import Context, set_context
from shared.envelope import FIELD, decode
from tests.support.processes import mutt

INGEST_SOURCE = Path(functions.__file__).parent / "ingest" / "main.py"
API_KEY = "sources-test-key"


def source_command(*args: str) -> list[str]:
    """argv of ``mutt syslog`` / ``mutt trap-handle``: through ``mutt`` once the command is
    registered in mutt/cli.py, else through ``python -m mutt.commands.sources``."""
    choices = next(a.choices for a in build_parser()._actions if a.dest == "command" and a.choices)
    if args and args[0] in choices:
        return mutt(*args)
    return [*mutt()[:-1], "mutt.commands.sources", *args]


@contextmanager
def ingest_server(settings: Settings, port: int = 0) -> Iterator[str]:
    """The real ingest app (functions-framework, as ``mutt serve ingest``) on ``port``
    (a free one by default)."""
    ctx = Context(settings)
    check_start(settings, ctx.secrets, "127.0.0.1")
    set_context(ctx)
    ingest_app._ingest = None
    app = functions_framework.create_app("ingest", str(INGEST_SOURCE), "http")  # type: ignore[no-untyped-call]
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        thread.join(5)
        set_context(None)
        ingest_app._ingest = None
        auth.allow_keyless(False)


def published(r: redis.Redis, keys: Keys) -> list[dict[str, Any]]:
    """The data of every event ingest published, oldest first."""
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], r.xrange(keys.events))
    return [decode(fields[FIELD]).data for _, fields in entries]


def wait_for(
    probe: Callable[[], list[dict[str, Any]]],
    accept: Callable[[dict[str, Any]], bool],
    timeout: float = 20.0,
    count: int = 1,
) -> list[dict[str, Any]]:
    """Poll ``probe`` until ``count`` items satisfy ``accept`` (fail after ``timeout``)."""
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = [item for item in probe() if accept(item)]
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{len(found)} of {count} expected items within {timeout}s")


def udp_bound(port: int) -> bool:
    """Whether some process has UDP ``port`` open (Linux /proc)."""
    wanted = f":{port:04X}"
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        if any(line.split()[1].endswith(wanted) for line in lines if len(line.split()) > 1):
            return True
    return False


def wait_udp_bound(port: int, alive: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise AssertionError(f"the daemon exited before binding UDP port {port}")
        if udp_bound(port):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing bound UDP port {port} within {timeout}s")
