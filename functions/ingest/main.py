"""functions-framework entry of ingest: ``--source functions/ingest/main.py --target ingest``."""

import flask
import functions_framework

from functions.ingest.app import handle


@functions_framework.http
def ingest(request: flask.Request) -> flask.Response:
    return handle(request)
