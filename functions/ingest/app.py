"""ingest over HTTP: every way events arrive, validated, authenticated, admitted.

Routes:
  POST /                   CloudEvents: binary, structured, and batch mode
                           (``application/cloudevents-batch+json``) when enabled
  POST /ingest, /api/v2/ingest
                           the legacy MUTT webhook: an object, an array (rsyslog
                           batching) or newline-delimited objects
  POST /alertmanager, /api/v2/alertmanager
                           the Prometheus Alertmanager webhook (version 4)
  GET  /healthz /readyz /metrics

Order of checks: route, size (413), failed-authentication throttle (429,
in process: a bad-key flood never reaches Redis), credentials (401; 503
while no key is configured), content type (415), body (400), backpressure
(503), then rate limit + dedup + publish in one atomic step (429 or 2xx).
Nothing invalid reaches the stream, and 2xx means the events are in it.
Items of a batch are validated one by one: valid ones are accepted, invalid
ones listed in a 400 answer with their index.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import flask
import orjson
import redis
from cloudevents.exceptions import GenericException
from cloudevents.http import CloudEvent, from_http
from opentelemetry.trace import SpanKind

from functions.ingest.admission import Admitter
from functions.ingest.alertmanager import parse_alertmanager
from functions.ingest.auth import ApiKeys, Verdict
from functions.ingest.auth_throttle import FailureLimiter
from functions.ingest.binary_mode import BinaryModeError, parse_binary
from functions.ingest.client_address import client_address
from functions.ingest.cloudevent_data import ACCEPTED_TYPES, parse_cloudevent_data
from functions.ingest.contract import API_VERSION, DEPRECATED_ROUTES, DEPRECATED_SUNSET, openapi
from functions.ingest.errors import InputError
from functions.ingest.foreign import parse_foreign_cloudevent
from functions.ingest.legacy import item_id, legacy_items, parse_legacy_event
from shared.context import Context, get_context
from shared.errors import UnreachableError
from shared.http_function import json_response, serve_ops
from shared.metrics import (
    AUTH_FAILURES,
    AUTH_THROTTLED,
    EVENTS_ACCEPTED,
    EVENTS_DUPLICATE,
    EVENTS_RECEIVED,
    EVENTS_REJECTED,
    INGEST_REQUESTS,
    INGEST_SECONDS,
    watch_streams,
)
from shared.models import Event, utcnow
from shared.redis_client import recover_auth
from shared.tracing import context_from, span

log = logging.getLogger(__name__)

LEGACY_PATHS = frozenset({"/ingest", "/api/v2/ingest", "/api/v1/ingest"})
ALERTMANAGER_PATHS = frozenset({"/alertmanager", "/api/v2/alertmanager"})
CE_JSON = "application/cloudevents+json"
CE_BATCH = "application/cloudevents-batch+json"
# What the cloudevents SDK raises on malformed input (bad UTF-8, odd headers; it
# parses structured mode with json.loads, which gives up on deep nesting with
# RecursionError): each is a 400 "not a valid CloudEvent".
SDK_ERRORS = (GenericException, ValueError, TypeError, KeyError, AttributeError, RecursionError)


@dataclass
class Parsed:
    """A request's events, and the items that failed validation."""

    events: list[Event] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)


class Problem(Exception):
    """An HTTP error answer."""

    def __init__(self, status: int, message: str, **extra: object) -> None:
        super().__init__(message)
        self.status = status
        self.reason = _REASONS.get(status, str(status))  # the metric label; may be refined
        self.body: dict[str, object] = {"error": message, **extra}
        self.headers: dict[str, str] = {}


class Ingest:
    """One per process; thread-safe (gunicorn threads share it)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.keys = ApiKeys(ctx.secrets, self.settings.ingest_auth)
        self.throttle = FailureLimiter(
            self.settings.ingest_auth_failure_limit,
            self.settings.ingest_auth_failure_window_seconds,
        )
        self.proxies = self.settings.trusted_proxies
        self.admitter = Admitter(ctx.redis, ctx.keys, ctx.dynamic)
        watch_streams(ctx.redis, ctx.keys)

    def __call__(self, request: flask.Request) -> flask.Response:
        response = self._dispatch(request)
        response.headers["X-MUTT-API-Version"] = API_VERSION
        if request.path in DEPRECATED_ROUTES:
            response.headers["Deprecation"] = "true"
            response.headers["Sunset"] = DEPRECATED_SUNSET
            response.headers["Link"] = '</api/v2/ingest>; rel="successor-version"'
        return response

    def _dispatch(self, request: flask.Request) -> flask.Response:
        if request.method == "GET" and request.path == "/openapi.json":
            return flask.Response(_OPENAPI, 200, mimetype="application/json")
        ops = serve_ops(request, self._probe)
        if ops is not None:
            return ops
        correlation = _correlation_id(request)
        started = time.perf_counter()
        route = route_label(request.path)
        parent = context_from({k.lower(): v for k, v in request.headers.items()})
        with span("mutt.ingest", context=parent, kind=SpanKind.SERVER) as current:
            current.set_attribute("mutt.route", route)
            try:
                response = self._serve(request, route, correlation)
            except Exception:  # a bug: answer 500 (counted for the SLO), never hang or leak a trace
                log.exception("ingest failed on %s %s", request.method, request.path)
                response = json_response({"error": "internal error"}, 500)
            current.set_attribute("http.status_code", response.status_code)
        INGEST_REQUESTS.labels(route, str(response.status_code)).inc()
        INGEST_SECONDS.labels(route).observe(time.perf_counter() - started)
        return response

    def _serve(self, request: flask.Request, route: str, correlation: str) -> flask.Response:
        try:
            parser = self._route(request)
            self._check_size(request)
            headers = {k.lower(): v for k, v in request.headers.items()}
            self._authenticate(request, headers)
            body = self._read(request)
            parsed = parser(request, headers, body, correlation)
            EVENTS_RECEIVED.labels(route).inc(len(parsed.events) + len(parsed.errors))
            if parsed.errors:
                EVENTS_REJECTED.labels("validation").inc(len(parsed.errors))
            response = self._admit(parsed)
        except Problem as p:
            EVENTS_REJECTED.labels(p.reason).inc()
            response = json_response(p.body, p.status, p.headers)
        response.headers["X-Correlation-ID"] = correlation
        return response

    def _authenticate(self, request: flask.Request, headers: dict[str, str]) -> None:
        """Pass, or raise the 429 / 401 / 503; a throttled address's key is not even read."""
        client = client_address(request.remote_addr, headers.get("x-forwarded-for"), self.proxies)
        wait = self.throttle.retry_after(client)
        if wait is not None:
            AUTH_THROTTLED.inc()
            p = Problem(
                429,
                "too many failed authentications from this address; retry later",
                retry_after_seconds=wait,
            )
            p.reason = "auth_throttled"
            p.headers["Retry-After"] = str(wait)
            raise p
        verdict = self.keys.check(headers)
        if verdict is Verdict.OK:
            return
        if verdict is Verdict.UNCONFIGURED:
            p = Problem(503, verdict.value)
            p.reason = "auth"
            p.headers["Retry-After"] = "30"
            raise p
        AUTH_FAILURES.labels(verdict.name.lower()).inc()
        self.throttle.failed(client)
        raise Problem(401, verdict.value)

    def _route(
        self, request: flask.Request
    ) -> Callable[[flask.Request, dict[str, str], bytes, str], Parsed]:
        if request.method != "POST":
            raise Problem(405, f"{request.method} is not allowed on {request.path}; use POST")
        if request.path == "/":
            return self._cloudevents
        if request.path in LEGACY_PATHS:
            return self._legacy
        if request.path in ALERTMANAGER_PATHS:
            return self._alertmanager
        raise Problem(404, f"no route for POST {request.path}")

    def _check_size(self, request: flask.Request) -> None:
        limit = self.settings.ingest_max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise Problem(
                413, f"body of {request.content_length} bytes exceeds the limit of {limit}"
            )

    def _read(self, request: flask.Request) -> bytes:
        limit = self.settings.ingest_max_body_bytes
        body = request.stream.read(limit + 1)
        if len(body) > limit:
            raise Problem(413, f"body exceeds the limit of {limit} bytes")
        return body

    # -- the three front doors ------------------------------------------------

    def _cloudevents(
        self, request: flask.Request, headers: dict[str, str], body: bytes, cid: str
    ) -> Parsed:
        ctype = _media_type(headers)
        if ctype == CE_BATCH:
            if not self.settings.ingest_cloudevents_batch:
                raise Problem(
                    415, "CloudEvents batch mode is disabled here (MUTT_INGEST_CLOUDEVENTS_BATCH)"
                )
            return self._ce_batch(body, cid)
        if ctype != CE_JSON and "ce-specversion" not in headers:
            raise Problem(
                415,
                f"unsupported content type {ctype or '(none)'!r} at POST /: send a CloudEvent "
                f"(binary mode with ce-* headers, or {CE_JSON})",
            )
        try:
            event = parse_binary(headers, body)  # the common case, without the SDK's overhead
        except BinaryModeError as exc:
            raise Problem(400, f"not a valid CloudEvent: {_short(exc)}") from None
        if event is None:  # not the common shape: the SDK decides
            event = _from_sdk(headers, body)
        attrs, data = event
        return self._collect([attrs], [data], cid)

    def _ce_batch(self, body: bytes, cid: str) -> Parsed:
        docs = _json(body)
        if not isinstance(docs, list) or not docs:
            raise Problem(400, "a CloudEvents batch must be a non-empty JSON array", field="body")
        self._check_count(len(docs))
        attrs: list[dict[str, object]] = []
        datas: list[object] = []
        parsed = Parsed()
        for i, doc in enumerate(docs):
            if not isinstance(doc, dict):
                parsed.errors.append(InputError("body", "must be a CloudEvent object", i))
                continue
            attrs.append({k: v for k, v in doc.items() if k not in ("data", "data_base64")})
            datas.append(doc.get("data"))
        more = self._collect(attrs, datas, cid)
        parsed.events += more.events
        parsed.errors += more.errors
        return parsed

    def _collect(self, attrs: list[dict[str, object]], datas: list[object], cid: str) -> Parsed:
        parsed = Parsed()
        received = utcnow()
        for i, (a, data) in enumerate(zip(attrs, datas, strict=True)):
            try:
                _check_envelope(a, i)
                if a.get("type") in ACCEPTED_TYPES:
                    ev = parse_cloudevent_data(
                        a.get("type"),
                        data,
                        source=a.get("source"),
                        event_id=a.get("id"),
                        time=a.get("time"),
                        received_at=received,
                        correlation_id=cid,
                    )
                else:
                    ev = parse_foreign_cloudevent(a, data, received_at=received, correlation_id=cid)
                parsed.events.append(ev)
            except InputError as exc:
                parsed.errors.append(
                    InputError(exc.field, exc.problem, i if len(attrs) > 1 else None)
                )
        return parsed

    def _legacy(
        self, request: flask.Request, headers: dict[str, str], body: bytes, cid: str
    ) -> Parsed:
        ctype = _media_type(headers)
        if ctype in ("application/json", ""):
            doc = _json(body)
        elif ctype in ("application/x-ndjson", "text/plain"):
            doc = _ndjson(body)
        else:
            raise Problem(
                415,
                f"unsupported content type {ctype!r}: use application/json or application/x-ndjson",
            )
        try:
            items = legacy_items(doc, self.settings.ingest_max_batch)
        except InputError as exc:
            raise Problem(400, exc.problem, **exc.to_dict()) from None
        request_id = headers.get("idempotency-key") or headers.get("x-request-id")
        request_id = (request_id or hashlib.sha256(body).hexdigest()[:32])[:200]
        parsed = Parsed()
        received = utcnow()
        header_cid = headers.get("x-correlation-id")
        for i, item in enumerate(items):
            try:
                parsed.events.append(
                    parse_legacy_event(
                        item,
                        source=request.path,
                        event_id=item_id(request_id, i),
                        received_at=received,
                        correlation_id=header_cid or None,
                        index=i if len(items) > 1 else None,
                    )
                )
            except InputError as exc:
                parsed.errors.append(exc)
        return parsed

    def _alertmanager(
        self, request: flask.Request, headers: dict[str, str], body: bytes, cid: str
    ) -> Parsed:
        if _media_type(headers) not in ("application/json", ""):
            raise Problem(415, "the Alertmanager webhook sends application/json")
        try:
            events = parse_alertmanager(
                _json(body),
                received_at=utcnow(),
                correlation_id=cid,
                max_alerts=self.settings.ingest_max_batch,
            )
        except InputError as exc:
            raise Problem(400, exc.problem, **exc.to_dict()) from None
        return Parsed(events)

    # -- admission ----------------------------------------------------------

    def _check_count(self, n: int) -> None:
        if n > self.settings.ingest_max_batch:
            raise Problem(
                400, f"{n} events in one request; the limit is {self.settings.ingest_max_batch}"
            )

    def _admit(self, parsed: Parsed) -> flask.Response:
        errors = [e.to_dict() for e in parsed.errors]
        if not parsed.events:
            first = errors[0] if errors else {"error": "no events in the request"}
            raise Problem(
                400,
                str(first.get("error")),
                field=first.get("field"),
                index=first.get("index"),
                errors=errors,
            )
        self._check_count(len(parsed.events))
        try:
            backlog = self.admitter.overloaded()
            if backlog is not None:
                p = Problem(503, f"event backlog of {backlog} is above the limit; retry later")
                p.headers["Retry-After"] = "5"
                raise p
            result = self.admitter.admit(parsed.events)
        except redis.RedisError as exc:
            if isinstance(exc, redis.AuthenticationError):
                recover_auth(self.ctx.redis)  # a rotated password: the next try uses the other
            log.error("admission failed: %s", exc)
            p = Problem(503, "event stream unavailable; retry later")
            p.headers["Retry-After"] = "1"
            raise p from None
        EVENTS_ACCEPTED.inc(result.published)
        EVENTS_DUPLICATE.inc(sum(result.duplicates))
        if result.refused:
            seconds = max(1, -(-result.retry_after_ms // 1000))
            p = Problem(429, "rate limit reached; retry later", retry_after_seconds=seconds)
            p.headers["Retry-After"] = str(seconds)
            raise p
        body: dict[str, object] = {
            "status": "accepted" if not errors else "partially accepted",
            "accepted": result.published,
            "duplicates": sum(result.duplicates),
            "event_ids": [str(e.event_id) for e in parsed.events],
        }
        if errors:
            body["errors"] = errors
            return json_response(body, 400)
        return json_response(body, 202)

    def _probe(self, ctx: Context) -> dict[str, str]:
        return {"auth": self.keys.state()}


_OPENAPI = orjson.dumps(openapi())

_REASONS = {
    400: "validation",
    401: "auth",
    404: "route",
    405: "route",
    413: "size",
    415: "content_type",
    429: "rate_limit",
    503: "backpressure",
}


def route_label(path: str) -> str:
    if path in LEGACY_PATHS:
        return "legacy"
    if path in ALERTMANAGER_PATHS:
        return "alertmanager"
    return "cloudevents" if path == "/" else "other"


def _check_envelope(attrs: dict[str, object], index: int) -> None:
    version = attrs.get("specversion")
    if version != "1.0":
        raise InputError(
            "specversion",
            f"unsupported CloudEvents specversion {str(version)[:20]!r}: use 1.0",
            index,
        )
    for name in ("id", "source", "type"):
        value = attrs.get(name)
        if not isinstance(value, str) or not value:
            raise InputError(name, "is required (a non-empty string)", index)


def _from_sdk(headers: dict[str, str], body: bytes) -> tuple[dict[str, object], object]:
    """A CloudEvent's attributes and data as the cloudevents SDK reads them."""
    try:
        ce = from_http(headers, body)
    except SDK_ERRORS as exc:
        raise Problem(400, f"not a valid CloudEvent: {_short(exc)}") from None
    return dict(ce.get_attributes()), ce.data


def _media_type(headers: dict[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _json(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"body is not valid JSON: {exc}", field="body") from None


def _ndjson(body: bytes) -> object:
    lines = [line for line in body.splitlines() if line.strip()]
    if len(lines) == 1:
        return _json(lines[0])
    return [_json(line) for line in lines]


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:300]


def _correlation_id(request: flask.Request) -> str:
    given = request.headers.get("X-Correlation-ID", "")
    if given and len(given) <= 128 and given.isprintable():
        return given
    return str(uuid.uuid4())


_ingest: Ingest | None = None


def handle(request: flask.Request) -> flask.Response:
    """The functions-framework entry body: one ``Ingest`` per process."""
    global _ingest
    if _ingest is None:
        try:
            _ingest = Ingest(get_context())
        except (UnreachableError, redis.RedisError) as exc:
            # Started while Redis is away (a pod scaled from zero during an outage):
            # alive, not ready, and a sender must retry later, not see a 500.
            if request.method == "GET" and request.path == "/healthz":
                return json_response({"status": "ok"}, 200)
            log.error("ingest cannot reach Redis yet: %s", exc)
            return json_response(
                {"error": "event stream unavailable; retry later"}, 503, {"Retry-After": "1"}
            )
    return _ingest(request)


__all__ = ["CloudEvent", "Ingest", "handle"]
