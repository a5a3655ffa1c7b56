"""functions-framework entry of forward: ``--source functions/forward/main.py --target forward``."""

import flask
import functions_framework

from functions.forward.handler import make_forward_handler
from shared.context import built_once
from shared.http_function import cloudevent_function

# Behind a Broker nothing reads the alerts stream, so a delivery that must wait
# answers 429 + Retry-After rather than parking there (shared.single_event).
_view = cloudevent_function(
    built_once(make_forward_handler), lambda ctx: ctx.keys.alerts, waits="refuse"
)


@functions_framework.http
def forward(request: flask.Request) -> flask.Response:
    return _view(request)
