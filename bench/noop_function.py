"""The HTTP floor for the ingest benchmarks: a functions-framework ``@http`` function
that reads the request body and answers ``202`` with an empty body, doing nothing else.

Served by the same gunicorn (``python -m functions_framework --target noop
--source bench/noop_function.py``) with the same ``WORKERS``/``THREADS`` as
``mutt serve ingest``, so the ratio ingest / no-op is the cost of MUTT's own work.
"""

import flask
import functions_framework


@functions_framework.http
def noop(request: flask.Request) -> tuple[str, int]:
    request.get_data()  # receive the body, as ingest must
    return "", 202
