"""The HTTP adapter: serve a handler as a Knative-style CloudEvents function.

Knative delivers one CloudEvent per POST and treats the answer as the reply:
``200`` with a binary-mode CloudEvent when there is a next event, ``202``
with an empty body when there is none, ``400`` for malformed input (not
retried), ``503`` for transient failures (retried). ``@functions_framework.cloud_event``
cannot do this (it always answers 200 with a text body), hence ``@http``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import flask
import orjson
import redis
from cloudevents.exceptions import GenericException
from cloudevents.http import from_http, to_binary

from shared.batch_protocol import BATCH, OUTCOMES, ProtocolError, decode_batch, encode_outcomes
from shared.broker.schedule import now_ms
from shared.broker.streams import Entry, Settlement, dead_letter_fields, settle
from shared.context import Context, get_context
from shared.envelope import FIELD, encode
from shared.handler import Handler, Outcome
from shared.metrics import HTTP_IN_FLIGHT, render
from shared.models import INTERNAL_TYPES
from shared.readiness import Probe, is_ok, readiness

log = logging.getLogger(__name__)


def json_response(
    body: object, status: int, headers: dict[str, str] | None = None
) -> flask.Response:
    return flask.Response(orjson.dumps(body), status, headers, mimetype="application/json")


def serve_ops(request: flask.Request, probe: Probe | None = None) -> flask.Response | None:
    """``/healthz``, ``/readyz`` and ``/metrics``; ``None`` for any other path."""
    if request.method != "GET":
        return None
    if request.path == "/healthz":
        return json_response({"status": "ok"}, 200)
    if request.path == "/readyz":
        checks = readiness(get_context(), probe)
        ok = all(is_ok(v) for v in checks.values())
        return json_response(
            {"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503
        )
    if request.path == "/metrics":
        body, ctype = render()
        return flask.Response(body, 200, {"Content-Type": ctype})
    return None


def settle_side_work(ctx: Context, stage: str, stream: str, outcome: Outcome) -> None:
    """Publish internal replies, park ``later`` copies and dead-letter ``dead`` ones,
    in one transaction, as the stream worker would."""
    internal = [r for r in outcome.replies if r["type"] in INTERNAL_TYPES]
    if not outcome.later and not outcome.dead and not internal:
        return
    plan = Settlement()
    for reply in internal:
        plan.add(ctx.keys.stream_for(reply["type"]), {FIELD: encode(reply)})
    for event, delay in outcome.later:
        plan.defer(stream, uuid.uuid4().hex, encode(event), now_ms() + int(delay * 1000))
    for event, why in outcome.dead:
        entry = Entry(event["id"], {FIELD: encode(event)})
        plan.add(
            ctx.keys.dlq(stage), dead_letter_fields(entry, stage=stage, origin="http", reason=why)
        )
    settle(ctx.redis, stream, stage, plan)


def cloudevent_function(
    make_handler: Callable[[Context], Handler],
    input_stream: Callable[[Context], str] | None = None,
) -> Callable[[flask.Request], flask.Response]:
    """A functions-framework ``@http`` body that feeds one CloudEvent per POST to a handler."""
    handler: Handler | None = None

    def handler_checks(ctx: Context) -> dict[str, str]:
        """The handler's own readiness (rules loaded, database reachable...), if it has one."""
        nonlocal handler
        try:
            if handler is None:
                handler = make_handler(ctx)
        except Exception as exc:
            return {"handler": f"error: {type(exc).__name__}: {exc}"[:300]}
        probe = getattr(handler, "readiness", None)
        return dict(probe()) if callable(probe) else {}

    def view(request: flask.Request) -> flask.Response:
        nonlocal handler
        ops = serve_ops(request, handler_checks)
        if ops is not None:
            return ops
        if request.method != "POST" or request.path != "/":
            return json_response({"error": f"no route for {request.method} {request.path}"}, 404)
        if handler is None:
            handler = make_handler(get_context())
        gauge = HTTP_IN_FLIGHT.labels(handler.stage)
        gauge.inc()
        try:
            if (request.content_type or "").startswith(BATCH):
                return _batch(handler, request)
            return _single(handler, request)
        finally:
            gauge.dec()

    def _single(handler: Handler, request: flask.Request) -> flask.Response:
        """One binary-mode CloudEvent, answered as Knative (and a Broker) expects."""
        try:
            event = from_http(dict(request.headers), request.get_data())
        except GenericException as exc:
            return json_response({"error": f"not a CloudEvent: {exc}"}, 400)
        outcome = handler.handle([event])[0]
        if outcome.status == "ok" and input_stream is not None:
            ctx = get_context()
            try:
                settle_side_work(ctx, handler.stage, input_stream(ctx), outcome)
            except redis.RedisError as exc:
                return json_response(
                    {"error": f"could not park work: {exc}"}, 503, {"Retry-After": "1"}
                )
        if outcome.status == "reject":
            return json_response({"error": outcome.reason}, 400)
        if outcome.status == "retry":
            return json_response({"error": outcome.reason}, 503, {"Retry-After": "1"})
        replies = [r for r in outcome.replies if r["type"] not in INTERNAL_TYPES]
        if not replies:
            return flask.Response(b"", 202)
        if len(replies) == 1:
            headers, body = to_binary(replies[0])
            return flask.Response(body, 200, headers)
        batch = b"[" + b",".join(encode(r) for r in replies) + b"]"
        return flask.Response(batch, 200, {"Content-Type": "application/cloudevents-batch+json"})

    return view


def _batch(handler: Handler, request: flask.Request) -> flask.Response:
    """A batch from the relay: one outcome per event back, nothing applied here.

    See ``shared.batch_protocol``: the relay settles replies, parked copies,
    dead letters and the acknowledgement in one transaction.
    """
    try:
        items = decode_batch(request.get_data())
    except ProtocolError as exc:
        return json_response({"error": str(exc)}, 400)
    events = [item for item in items if not isinstance(item, str)]
    try:
        results = handler.handle(events) if events else []
    except Exception as exc:  # an outage or a bug: the relay backs off and retries
        log.exception("handler %s failed on a batch of %d", handler.stage, len(events))
        return json_response({"error": f"handler error: {exc}"}, 503, {"Retry-After": "1"})
    if len(results) != len(events):
        why = f"handler {handler.stage} returned {len(results)} outcomes for {len(events)} events"
        return json_response({"error": why}, 500)
    handled = iter(results)
    outcomes = [Outcome.reject(item) if isinstance(item, str) else next(handled) for item in items]
    return flask.Response(encode_outcomes(outcomes), 200, {"Content-Type": OUTCOMES})
