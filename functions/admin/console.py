"""The web console (placeholder until the pages land)."""

from __future__ import annotations

import flask

from functions.admin.errors import ApiError


def error_page(err: ApiError) -> flask.Response:
    return flask.Response(f"{err.status}: {err.message}", err.status, mimetype="text/plain")
