"""functions-framework entry of admin: ``--source functions/admin/main.py --target admin``."""

import flask
import functions_framework

from functions.admin.app import handle


@functions_framework.http
def admin(request: flask.Request) -> flask.Response:
    return handle(request)


def _ours(error: Exception) -> flask.Response:
    """Paths functions-framework's own routing refuses (a newline in the path) get our answer."""
    return handle(flask.request)


# functions-framework runs this module inside its app's context.
flask.current_app.register_error_handler(404, _ours)
flask.current_app.register_error_handler(405, _ours)
