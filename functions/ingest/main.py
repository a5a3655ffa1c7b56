"""functions-framework entry of ingest: ``--source functions/ingest/main.py --target ingest``.

functions-framework runs this module inside the app's context: the app's WSGI
callable is wrapped here so a throttled address's 429 never reaches Flask
(``throttle_gate``), whoever starts the server.
"""

import flask
import functions_framework

from functions.ingest.app import handle
from functions.ingest.throttle_gate import throttle_gate

_app = flask.current_app._get_current_object()  # type: ignore[attr-defined]
_app.wsgi_app = throttle_gate(_app.wsgi_app)


@functions_framework.http
def ingest(request: flask.Request) -> flask.Response:
    return handle(request)
