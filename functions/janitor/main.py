"""functions-framework entry of janitor: ``--source functions/janitor/main.py --target janitor``."""

import flask
import functions_framework

from functions.janitor.handler import JanitorHandler
from shared.context import built_once
from shared.http_function import cloudevent_function

_view = cloudevent_function(built_once(JanitorHandler))


@functions_framework.http
def janitor(request: flask.Request) -> flask.Response:
    return _view(request)
