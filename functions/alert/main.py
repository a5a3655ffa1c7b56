"""functions-framework entry of alert: ``--source functions/alert/main.py --target alert``."""

import flask
import functions_framework

from functions.alert.handler import AlertHandler
from shared.http_function import cloudevent_function

_view = cloudevent_function(lambda ctx: AlertHandler(ctx.settings.default_team))


@functions_framework.http
def alert(request: flask.Request) -> flask.Response:
    return _view(request)
