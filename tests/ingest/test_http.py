"""ingest through HTTP (the functions-framework app, as Knative serves it) against real Redis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
import yaml
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.ingest import app as ingest_app
from shared.broker import streams
from shared.broker.keys import Keys
from shared.config import Settings
from shared.dynconfig import DynamicConfig
from shared.envelope import FIELD, decode
from tests.ingest.conftest import API_KEY, make_client

DATA = Path(__file__).parent / "data"


def stream_data(r: redis.Redis, keys: Keys) -> list[dict[str, Any]]:
    return [decode(f[FIELD]).data for _, f in r.xrange(keys.events)]


def binary(
    ce_id: str = "1", data: object = None, type_: str = "io.mutt.syslog.v1", **extra: str
) -> dict[str, Any]:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": ce_id,
        "ce-source": "/router",
        "ce-type": type_,
        "content-type": "application/json",
        **extra,
    }
    body = (
        data
        if data is not None
        else {"hostname": " Core-RTR-01. ", "message": "LINK down", "syslog_severity": 3}
    )
    return {"headers": headers, "data": orjson.dumps(body)}


# -- CloudEvents -------------------------------------------------------------


def test_binary_cloudevent_is_normalized_and_published(
    client: FlaskClient, r: redis.Redis, keys: Keys
) -> None:
    resp = client.post(
        "/",
        **binary(
            data={
                "hostname": " Core-RTR-01. ",
                "message": "LINK down",
                "syslog_severity": "err",
                "trap_oid": ".1.3.6.1.4.1.9",
                "timestamp": "2025-11-11T10:00:00.1234567+01:00",
            }
        ),
    )
    assert resp.status_code == 202, resp.json
    assert resp.json["accepted"] == 1
    (data,) = stream_data(r, keys)
    assert data["hostname"] == "core-rtr-01"
    assert (data["severity"], data["severity_name"]) == (3, "error")
    assert data["trap_oid"] == "1.3.6.1.4.1.9"
    assert data["time"].startswith("2025-11-11T09:00:00.123456")
    assert data["time_estimated"] is False


def test_structured_cloudevent(client: FlaskClient, r: redis.Redis, keys: Keys) -> None:
    envelope = {
        "specversion": "1.0",
        "id": "s1",
        "source": "/x",
        "type": "io.mutt.snmp.trap.v1",
        "data": {
            "hostname": "sw1",
            "trap_oid": "1.3.6.1.6.3.1.1.5.3",
            "varbinds": [{"oid": "1.3.6.1.2.1.2.2.1.1.2", "value": "2"}],
        },
    }
    resp = client.post(
        "/", data=orjson.dumps(envelope), headers={"content-type": "application/cloudevents+json"}
    )
    assert resp.status_code == 202, resp.json
    (data,) = stream_data(r, keys)
    assert data["trap_oid"] == "1.3.6.1.6.3.1.1.5.3"
    assert "1.3.6.1.6.3.1.1.5.3" in data["message"]


def test_bad_time_falls_back_to_received_time_and_is_flagged(
    client: FlaskClient, r: redis.Redis, keys: Keys
) -> None:
    resp = client.post(
        "/", **binary(data={"hostname": "h", "message": "m", "timestamp": "yesterday-ish"})
    )
    assert resp.status_code == 202
    (data,) = stream_data(r, keys)
    assert data["time_estimated"] is True
    assert data["time"] == data["received_at"]


def test_batch_mode_is_on_by_default_and_can_be_refused(
    client: FlaskClient, settings: Settings, r: redis.Redis, keys: Keys
) -> None:
    batch = [
        {
            "specversion": "1.0",
            "id": str(i),
            "source": "/b",
            "type": "io.mutt.event.v1",
            "data": {"hostname": "h", "message": f"m{i}"},
        }
        for i in range(3)
    ]
    headers = {"content-type": "application/cloudevents-batch+json"}
    assert Settings.model_fields["ingest_cloudevents_batch"].default is True
    resp = client.post("/", data=orjson.dumps(batch), headers=headers)
    assert resp.status_code == 202
    assert resp.json["accepted"] == 3
    assert len(stream_data(r, keys)) == 3
    refusing = make_client(settings.model_copy(update={"ingest_cloudevents_batch": False}))
    resp = refusing.post("/", data=orjson.dumps(batch), headers=headers)
    assert resp.status_code == 415
    assert "batch mode is disabled" in resp.json["error"]


def conformance_cases() -> list[tuple[str, dict[str, Any], str]]:
    cases = []
    for name in ("v1_minimum.yaml", "v1.yaml"):
        for doc in yaml.safe_load_all((DATA / "conformance" / name).read_text()):
            if doc:
                attrs = {
                    k: str(v) for k, v in doc["ContextAttributes"].items() if k != "Extensions"
                }
                attrs.update(
                    {
                        k: str(v).strip()
                        for k, v in (doc["ContextAttributes"].get("Extensions") or {}).items()
                    }
                )
                cases.append((name, attrs, doc["Data"]))
    return cases


@pytest.mark.parametrize("mode", ["binary", "structured"])
@pytest.mark.parametrize(("name", "attrs", "data"), conformance_cases())
def test_conformance_events_are_accepted_in_both_modes(
    client: FlaskClient,
    r: redis.Redis,
    keys: Keys,
    mode: str,
    name: str,
    attrs: dict[str, str],
    data: str,
) -> None:
    ctype = attrs.get("datacontenttype", "application/json")
    if mode == "binary":
        headers = {f"ce-{k}": v for k, v in attrs.items() if k != "datacontenttype"}
        headers["content-type"] = ctype
        resp = client.post("/", data=data.encode(), headers=headers)
    else:
        envelope: dict[str, Any] = dict(attrs)
        if ctype.startswith("application/json"):
            envelope["data"] = json.loads(data)
        else:
            envelope["data"] = data
        resp = client.post(
            "/",
            data=orjson.dumps(envelope),
            headers={"content-type": "application/cloudevents+json"},
        )
    assert resp.status_code == 202, resp.json
    (event,) = stream_data(r, keys)
    assert event["id"] == attrs["id"]
    assert event["attributes"]["cloudevent"]["type"] == attrs["type"]
    assert event["message"]


def test_not_a_cloudevent(client: FlaskClient, r: redis.Redis, keys: Keys) -> None:
    resp = client.post("/", data=b"{}", headers={"content-type": "application/json"})
    assert resp.status_code == 415
    resp = client.post("/", data=b"{", headers={"content-type": "application/cloudevents+json"})
    assert resp.status_code == 400
    resp = client.post("/", **binary(data={"hostname": "h"}))  # a syslog event needs a message
    assert resp.status_code == 400
    assert resp.json["field"] == "data.message"
    assert stream_data(r, keys) == []


# -- the legacy webhook ------------------------------------------------------


def test_legacy_object_array_and_ndjson(client: FlaskClient, r: redis.Redis, keys: Keys) -> None:
    events = json.loads((DATA / "mutt-v25-test-syslog-events.json").read_text())
    resp = client.post("/api/v2/ingest", json=events[0], headers={"X-Correlation-ID": "abc-123"})
    assert resp.status_code == 202
    assert resp.headers["X-Correlation-ID"] == "abc-123"
    resp = client.post("/ingest", json=events[1:])
    assert resp.status_code == 202
    assert resp.json["accepted"] == 65
    ndjson = b"\n".join(orjson.dumps(e) for e in events[:3])
    resp = client.post(
        "/ingest", data=ndjson + b"x", headers={"content-type": "application/x-ndjson"}
    )
    assert resp.status_code == 400  # the trailing garbage line is not JSON
    resp = client.post("/ingest", data=ndjson, headers={"content-type": "application/x-ndjson"})
    assert resp.status_code == 202
    assert resp.json["duplicates"] == 0
    data = stream_data(r, keys)
    assert len(data) == 69
    assert data[0]["correlation_id"] == "abc-123"
    assert all(d["source_type"] for d in data)


def test_legacy_batch_accepts_valid_items_and_names_the_bad_ones(
    client: FlaskClient, r: redis.Redis, keys: Keys
) -> None:
    body = [
        {"hostname": "a", "message": "ok", "timestamp": "2025-01-01T00:00:00Z"},
        {"hostname": "b", "timestamp": "2025-01-01T00:00:00Z"},
        {
            "hostname": "c",
            "message": "fine",
            "timestamp": "2025-01-01T00:00:00Z",
            "trap_oid": "IF-MIB::x",
        },
    ]
    resp = client.post("/ingest", json=body)
    assert resp.status_code == 400
    assert resp.json["accepted"] == 1
    fields = {(e["index"], e["field"]) for e in resp.json["errors"]}
    assert fields == {(1, "message"), (2, "trap_oid")}
    assert [d["hostname"] for d in stream_data(r, keys)] == ["a"]


def test_a_retried_legacy_request_is_deduplicated(
    client: FlaskClient, r: redis.Redis, keys: Keys
) -> None:
    body = [
        {"hostname": "a", "message": f"m{i}", "timestamp": "2025-01-01T00:00:00Z"} for i in range(5)
    ]
    assert client.post("/ingest", json=body).json["accepted"] == 5
    again = client.post("/ingest", json=body)
    assert again.status_code == 202
    assert (again.json["accepted"], again.json["duplicates"]) == (0, 5)
    assert len(stream_data(r, keys)) == 5


def test_cloudevent_dedup_on_source_and_id(client: FlaskClient, r: redis.Redis, keys: Keys) -> None:
    assert client.post("/", **binary("same")).json["accepted"] == 1
    second = client.post("/", **binary("same"))
    assert second.status_code == 202
    assert second.json["duplicates"] == 1
    assert client.post("/", **binary("other")).json["accepted"] == 1
    assert len(stream_data(r, keys)) == 2


def test_alertmanager_webhook(client: FlaskClient, r: redis.Redis, keys: Keys) -> None:
    body = json.loads((DATA / "alertmanager_v4.json").read_text())
    resp = client.post("/api/v2/alertmanager", json=body)
    assert resp.status_code == 202, resp.json
    data = stream_data(r, keys)
    assert len(data) == len(body["alerts"])
    assert {d["attributes"]["status"] for d in data} == {a["status"] for a in body["alerts"]}


# -- errors, auth and admission ----------------------------------------------


def test_auth(secured: FlaskClient, r: redis.Redis, keys: Keys) -> None:
    ok = {"hostname": "h", "message": "m", "timestamp": "2025-01-01T00:00:00Z"}
    missing = secured.post("/ingest", json=ok)
    assert missing.status_code == 401
    assert "missing credentials" in missing.json["error"]
    assert secured.post("/ingest", json=ok, headers={"X-API-KEY": "nope"}).status_code == 401
    assert secured.post("/", **binary()).status_code == 401
    assert stream_data(r, keys) == []
    assert secured.post("/ingest", json=ok, headers={"X-API-KEY": API_KEY}).status_code == 202
    assert secured.post("/ingest", json=ok, headers={"X-API-KEY": "old-key"}).status_code == 202
    assert secured.post("/", **binary(Authorization=f"Bearer {API_KEY}")).status_code == 202
    assert secured.get("/healthz").status_code == 200  # probes need no key
    ready = secured.get("/readyz")
    assert ready.status_code == 200, ready.json
    assert ready.json["checks"]["auth"] == "ok (on)"


def test_size_type_and_route_errors(client: FlaskClient, settings: Settings) -> None:
    big = b'{"hostname":"h","message":"' + b"x" * settings.ingest_max_body_bytes + b'"}'
    resp = client.post("/ingest", data=big, headers={"content-type": "application/json"})
    assert resp.status_code == 413
    resp = client.post("/ingest", data=b"<xml/>", headers={"content-type": "application/xml"})
    assert resp.status_code == 415
    resp = client.post("/ingest", data=b"{nope", headers={"content-type": "application/json"})
    assert resp.status_code == 400
    assert resp.json["field"] == "body"
    assert client.post("/nowhere", json={}).status_code == 404
    assert client.get("/ingest").status_code == 405


def test_rate_limit_answers_429_with_retry_after(
    client: FlaskClient, r: redis.Redis, keys: Keys
) -> None:
    dyn = DynamicConfig(r, keys.config)
    dyn.set("ingest_rate_limit", "3")
    dyn.set("ingest_rate_window_ms", "60000")
    ingest_app._ingest = None  # a fresh process view of the knobs
    codes = [client.post("/", **binary(str(i))).status_code for i in range(5)]
    assert codes == [202, 202, 202, 429, 429]
    refused = client.post("/", **binary("9"))
    assert int(refused.headers["Retry-After"]) >= 1
    assert len(stream_data(r, keys)) == 3


def test_backlog_answers_503_with_retry_after(
    client: FlaskClient, r: redis.Redis, keys: Keys
) -> None:
    DynamicConfig(r, keys.config).set("ingest_max_pending", "1000")
    streams.ensure_group(r, keys.events, "alert")
    streams.publish(r, keys.events, [{FIELD: b"{}"}] * 1001)
    ingest_app._ingest = None
    resp = client.post("/", **binary())
    assert resp.status_code == 503
    assert resp.headers["Retry-After"]
    assert r.xlen(keys.events) == 1001


def test_default_limits_admit_ten_thousand_events_per_second(r: redis.Redis, keys: Keys) -> None:
    dyn = DynamicConfig(r, keys.config)
    assert dyn.get("ingest_rate_limit") * 1000 / dyn.get("ingest_rate_window_ms") >= 10_000


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
header_names = st.sampled_from(
    [
        "content-type",
        "ce-specversion",
        "ce-id",
        "ce-source",
        "ce-type",
        "ce-time",
        "x-correlation-id",
        "x-api-key",
        "content-encoding",
    ]
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(["/", "/ingest", "/api/v2/ingest", "/alertmanager"]),
    body=st.one_of(json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=200)),
    headers=st.dictionaries(
        header_names,
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
        max_size=6,
    ),
)
def test_random_requests_never_5xx_and_never_store_garbage(
    client: FlaskClient, r: redis.Redis, keys: Keys, path: str, body: bytes, headers: dict[str, str]
) -> None:
    before = r.xlen(keys.events) if r.exists(keys.events) else 0
    resp = client.post(path, data=body, headers=headers)
    assert 200 <= resp.status_code < 500, resp.data
    assert resp.json and ("error" in resp.json or "accepted" in resp.json)
    after = r.xlen(keys.events) if r.exists(keys.events) else 0
    if resp.status_code >= 400 and "accepted" not in resp.json:
        assert after == before  # a refused request stores nothing
    for _, f in r.xrange(keys.events, min="-", max="+", count=10_000)[before:]:
        decode(f[FIELD])  # whatever was stored is a valid event envelope
