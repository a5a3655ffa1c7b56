"""The floor of the auth-flood benchmark: a WSGI app that answers 429 and does nothing else.

Served by gunicorn with the same worker class, workers and threads as
``mutt serve ingest`` (``python -m gunicorn -k gthread ... bench.empty_wsgi:app``):
what answering a request costs before any of MUTT's or Flask's code runs.
"""

from collections.abc import Callable, Iterable
from typing import Any

BODY = b'{"error": "throttled"}'


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response(
        "429 Too Many Requests",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(BODY))),
            ("Retry-After", "30"),
        ],
    )
    return [BODY]
