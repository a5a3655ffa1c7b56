"""functions-framework entry of forward: ``--source functions/forward/main.py --target forward``."""

import flask
import functions_framework

from functions.forward.handler import make_forward_handler
from shared.context import built_once
from shared.http_function import cloudevent_function

_view = cloudevent_function(built_once(make_forward_handler), lambda ctx: ctx.keys.alerts)


@functions_framework.http
def forward(request: flask.Request) -> flask.Response:
    return _view(request)
