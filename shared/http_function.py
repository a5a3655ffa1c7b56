"""The HTTP adapter: serve a handler as a Knative-style CloudEvents function.

Two callers. The relay POSTs batches of stream entries and gets one outcome
per entry back (``shared.batch_protocol``). Knative Eventing (a Broker's
Trigger) and other callers POST one binary-mode CloudEvent and take the
answer as the reply: ``200`` with one binary-mode CloudEvent when there is a
next event, ``202`` with an empty body when there is none, ``400`` for
malformed input (not retried), ``429``/``503`` with ``Retry-After`` for work
that must wait or a transient failure (retried); ``shared.single_event``
holds those rules. ``@functions_framework.cloud_event`` cannot do this (it
always answers 200 with a text body), hence ``@http``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Literal

import flask
import orjson
import redis
from cloudevents.exceptions import GenericException
from cloudevents.http import from_http, to_binary

from shared.batch_protocol import BATCH, OUTCOMES, ProtocolError, decode_batch, encode_outcomes
from shared.broker.keys import DELIVERED_MAXLEN
from shared.broker.schedule import now_ms
from shared.broker.streams import Entry, Settlement, dead_letter_fields, settle
from shared.context import Context, get_context
from shared.envelope import FIELD, EnvelopeError, encode
from shared.handler import Handler, Outcome
from shared.metrics import HTTP_IN_FLIGHT, render
from shared.models import TYPE_DELIVERED
from shared.readiness import Probe, is_ok, readiness
from shared.single_event import SIDE_TYPES, merged, reply_of, retry_after, unpack

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


def settle_side_work(
    ctx: Context, stage: str, stream: str, outcome: Outcome, *, park: bool = True
) -> None:
    """Publish internal replies and reports, park ``later`` copies and dead-letter ``dead``
    ones, in one transaction, as the stream worker would (``park=False``: reports only)."""
    side = [r for r in outcome.replies if r["type"] in SIDE_TYPES]
    later = outcome.later if park else ()
    dead = outcome.dead if park else ()
    if not later and not dead and not side:
        return
    plan = Settlement()
    for reply in side:
        target = ctx.keys.stream_for(reply["type"])
        maxlen = DELIVERED_MAXLEN if reply["type"] == TYPE_DELIVERED else None
        plan.add(target, {FIELD: encode(reply)}, maxlen)
    for event, delay in later:
        plan.defer(stream, uuid.uuid4().hex, encode(event), now_ms() + int(delay * 1000))
    for event, why in dead:
        entry = Entry(event["id"], {FIELD: encode(event)})
        plan.add(
            ctx.keys.dlq(stage), dead_letter_fields(entry, stage=stage, origin="http", reason=why)
        )
    settle(ctx.redis, stream, stage, plan)


def cloudevent_function(
    make_handler: Callable[[Context], Handler],
    input_stream: Callable[[Context], str] | None = None,
    *,
    waits: Literal["park", "refuse"] = "park",
) -> Callable[[flask.Request], flask.Response]:
    """A functions-framework ``@http`` body for a handler: relay batches or single events.

    ``waits``: what a single event's work that must wait becomes (see
    ``shared.single_event``): parked in the input stream, or refused with 429
    and ``Retry-After`` when no stream worker may be there to promote it.
    """
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
            events = unpack(event)
        except (GenericException, EnvelopeError) as exc:
            return json_response({"error": f"not a CloudEvent: {exc}"}, 400)
        outcome = merged(events, handler.handle(events))
        if outcome.status == "reject":
            return json_response({"error": outcome.reason}, 400)
        if outcome.status == "retry":
            return json_response({"error": outcome.reason}, 503, {"Retry-After": "1"})
        refuse = waits == "refuse" and bool(outcome.later)
        if input_stream is not None:
            ctx = get_context()
            try:
                settle_side_work(ctx, handler.stage, input_stream(ctx), outcome, park=not refuse)
            except redis.RedisError as exc:
                return json_response(
                    {"error": f"could not park work: {exc}"}, 503, {"Retry-After": "1"}
                )
        if refuse:  # nothing may promote parked work here: the caller brings it back
            return json_response(
                {"error": "some of the work must wait (rate limit, breaker, retry)"},
                429,
                {"Retry-After": retry_after(outcome)},
            )
        reply = reply_of(outcome)
        if reply is None:
            return flask.Response(b"", 202)
        headers, body = to_binary(reply)
        return flask.Response(body, 200, headers)

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
