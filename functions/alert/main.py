"""functions-framework entry of alert: ``--source functions/alert/main.py --target alert``."""

import flask
import functions_framework

from functions.alert.build import make_alert_handler
from shared.context import built_once
from shared.http_function import cloudevent_function

_view = cloudevent_function(built_once(make_alert_handler), lambda ctx: ctx.keys.events)


@functions_framework.http
def alert(request: flask.Request) -> flask.Response:
    return _view(request)
