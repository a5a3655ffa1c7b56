"""functions-framework entry of forward: ``--source functions/forward/main.py --target forward``."""

import flask
import functions_framework

from functions.forward.handler import ForwardHandler
from functions.forward.sinks.file import FileSink
from shared.http_function import cloudevent_function

_view = cloudevent_function(lambda ctx: ForwardHandler(FileSink(ctx.settings.sink_path)))


@functions_framework.http
def forward(request: flask.Request) -> flask.Response:
    return _view(request)
