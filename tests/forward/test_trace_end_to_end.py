"""One trace from ingest to the sink, joined through CloudEvent extensions and W3C headers.

The OpenTelemetry SDK's in-memory exporter records the spans; the pipeline
itself only uses the API.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
import redis
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from functions.alert.build import make_alert_handler
from functions.forward.delivery import Deliverer
from functions.forward.routing import Router
from functions.forward.sinks.webhook import WebhookSink
from shared.broker.keys import Keys
from shared.context import Context
from shared.envelope import FIELD, decode
from tests.ingest.conftest import make_client
from tests.support.vendor import VendorServer

_exporter = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def sdk() -> Iterator[None]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_exporter))
    trace.set_tracer_provider(provider)
    yield


@pytest.mark.usefixtures("demo_rules")
def test_one_trace_from_ingest_through_alert_to_the_sink(
    ctx: Context, r: redis.Redis, keys: Keys, vendor: VendorServer
) -> None:
    from functions.forward.sinks.http import HttpSession

    _exporter.clear()
    client = make_client(ctx.settings)
    caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "t1",
        "ce-source": "/router",
        "ce-type": "io.mutt.syslog.v1",
        "content-type": "application/json",
        "traceparent": f"00-{caller_trace}-00f067aa0ba902b7-01",
    }
    body = {"hostname": "r1", "message": "Interface Gi0/1, changed state to down"}
    assert client.post("/", data=orjson.dumps(body), headers=headers).status_code == 202

    ((_, fields),) = r.xrange(keys.events)
    accepted = decode(fields[FIELD])
    assert accepted["traceparent"].split("-")[1] == caller_trace

    (outcome,) = make_alert_handler(ctx).handle([accepted])
    alert = next(x for x in outcome.replies if x["type"] == "io.mutt.alert.raised.v1")
    sink = WebhookSink("hook", f"{vendor.url}/hook", session=HttpSession())
    deliverer = Deliverer(r, keys, {"hook": sink}, Router([], ["hook"]), ctx.dynamic)
    (done,) = deliverer.handle([alert])
    assert done.status == "ok"

    (request,) = vendor.requests
    assert request.headers["traceparent"].split("-")[1] == caller_trace
    spans = {s.name: s for s in _exporter.get_finished_spans()}
    assert {"mutt.ingest", "mutt.ingest.event", "mutt.alert", "mutt.forward"} <= set(spans)
    assert {format(s.context.trace_id, "032x") for s in spans.values()} == {caller_trace}
    assert spans["mutt.alert"].parent.span_id == spans["mutt.ingest.event"].context.span_id
    assert spans["mutt.forward"].parent.span_id == spans["mutt.alert"].context.span_id
