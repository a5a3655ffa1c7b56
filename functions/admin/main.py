"""functions-framework entry of admin: ``--source functions/admin/main.py --target admin``."""

import flask
import functions_framework

from functions.admin.app import handle


@functions_framework.http
def admin(request: flask.Request) -> flask.Response:
    return handle(request)
