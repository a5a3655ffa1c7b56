"""functions-framework entry of audit: ``--source functions/audit/main.py --target audit``.

The audit writer usually runs as a stream worker (``mutt worker audit``); this
entry lets the relay feed it over HTTP too (``mutt relay --to audit=URL``).
"""

import flask
import functions_framework

from functions.audit.build import make_audit_writer
from shared.context import built_once
from shared.http_function import cloudevent_function

_view = cloudevent_function(built_once(make_audit_writer), lambda ctx: ctx.keys.audit)


@functions_framework.http
def audit(request: flask.Request) -> flask.Response:
    return _view(request)
