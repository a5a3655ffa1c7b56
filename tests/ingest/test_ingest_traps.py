"""Real-world traps through HTTP ingest, on every intake path: X.733 and unknown
severities, agents known only by their address, the three varbind forms, and the
message a trap gets when it carries none."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import redis
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from shared.broker.keys import Keys
from shared.envelope import FIELD, decode

LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"
ALARM_TRAP = "1.3.6.1.4.1.9999.1.0.1"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
IF_DESCR = "1.3.6.1.2.1.2.2.1.2.2"
PATHS = ("legacy", "syslog", "trap")


def stream_data(r: redis.Redis, keys: Keys) -> list[dict[str, Any]]:
    return [decode(f[FIELD]).data for _, f in r.xrange(keys.events)]


def post(client: FlaskClient, path: str, data: dict[str, Any], ce_id: str = "1") -> Any:
    """One event through ingest: the legacy webhook, or a structured CloudEvent."""
    if path == "legacy":  # orjson keeps the key order (the test client's json= sorts keys)
        return client.post(
            "/api/v2/ingest", data=orjson.dumps(data), headers={"content-type": "application/json"}
        )
    envelope = {
        "specversion": "1.0",
        "id": ce_id,
        "source": "/test/traps",
        "type": {"syslog": "io.mutt.syslog.v1", "trap": "io.mutt.snmp.trap.v1"}[path],
        "data": data,
    }
    return client.post(
        "/", data=orjson.dumps(envelope), headers={"content-type": "application/cloudevents+json"}
    )


def body(path: str, **fields: Any) -> dict[str, Any]:
    """A valid event for ``path``: a trap for the trap path, a syslog line otherwise."""
    if path == "trap":
        data: dict[str, Any] = {"hostname": "sw-1", "trap_oid": ALARM_TRAP}
    else:
        data = {"hostname": "sw-1", "message": "fan 2 failed"}
    data.update(fields)
    return {key: value for key, value in data.items() if value is not ...}


def unknown_severities(client: FlaskClient) -> dict[str, float]:
    """``mutt_ingest_unknown_severity_total`` by kind, as ingest's /metrics serves it."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True)):
        if family.name == "mutt_ingest_unknown_severity":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    found[sample.labels["kind"]] = sample.value
    return found


# -- severities ------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("word", "severity", "perceived"),
    [
        ("Major", 3, "major"),
        ("MINOR", 4, "minor"),
        ("indeterminate", None, "indeterminate"),
        ("Cleared", 6, "cleared"),
    ],
)
def test_x733_severities_are_accepted_and_mapped(
    client: FlaskClient,
    r: redis.Redis,
    keys: Keys,
    path: str,
    word: str,
    severity: int | None,
    perceived: str,
) -> None:
    resp = post(client, path, body(path, syslog_severity=word))
    assert resp.status_code == 202, resp.json
    (data,) = stream_data(r, keys)
    assert data["severity"] == severity
    assert data["perceived_severity"] == perceived
    assert "syslog_severity" not in data["attributes"]


@pytest.mark.parametrize(
    ("fields", "severity", "perceived"),
    [
        ({"severity": "Critical"}, 2, "critical"),  # a trap speaks X.733...
        ({"severity": "warning"}, 4, "warning"),  # ...at the level syslog gives the word
        ({"syslog_severity": "Warning", "trap_oid": None}, 4, None),  # a syslog line: syslog
    ],
)
def test_words_of_both_vocabularies_on_legacy_events(
    client: FlaskClient,
    r: redis.Redis,
    keys: Keys,
    fields: dict[str, Any],
    severity: int,
    perceived: str | None,
) -> None:
    data = {"hostname": "sw-1", "message": "m", "trap_oid": ALARM_TRAP, **fields}
    resp = post(client, "legacy", {k: v for k, v in data.items() if v is not None})
    assert resp.status_code == 202, resp.json
    (event,) = stream_data(r, keys)
    assert (event["severity"], event.get("perceived_severity")) == (severity, perceived)


def test_an_event_without_x733_severity_does_not_carry_the_field(
    client: FlaskClient, r: redis.Redis, keys: Keys
) -> None:
    assert post(client, "syslog", body("syslog", syslog_severity="err")).status_code == 202
    (data,) = stream_data(r, keys)
    assert "perceived_severity" not in data  # the stream entry looks as it always did


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("key", ["syslog_severity", "severity"])
def test_an_unknown_severity_is_kept_defaulted_and_counted(
    client: FlaskClient, r: redis.Redis, keys: Keys, path: str, key: str
) -> None:
    kind = {"legacy": "legacy", "syslog": "syslog", "trap": "trap"}[path]
    before = unknown_severities(client).get(kind, 0.0)
    resp = post(client, path, body(path, **{key: "Bogus-Level"}))
    assert resp.status_code == 202, resp.json
    (data,) = stream_data(r, keys)
    assert data["severity"] is None
    assert data["severity_name"] is None
    assert data["attributes"][key] == "Bogus-Level"
    assert unknown_severities(client)[kind] == before + 1


def test_unreadable_severities_of_every_shape_are_accepted(
    client: FlaskClient, r: redis.Redis, keys: Keys
) -> None:
    values: list[Any] = [9, -1, True, 2.5, [3], {"level": 3}, "x\u0000y", "z" * 5000]
    before = unknown_severities(client).get("legacy", 0.0)
    items = [body("legacy", syslog_severity=value) for value in values]
    resp = client.post(
        "/api/v2/ingest", data=orjson.dumps(items), headers={"content-type": "application/json"}
    )
    assert resp.status_code == 202, resp.json
    kept = [d["attributes"]["syslog_severity"] for d in stream_data(r, keys)]
    assert kept == [9, -1, True, 2.5, "a JSON array", "a JSON object", "x\ufffdy", "z" * 128]
    assert unknown_severities(client)["legacy"] == before + len(values)


def test_a_refused_event_does_not_count_its_unknown_severity(client: FlaskClient) -> None:
    before = unknown_severities(client).get("legacy", 0.0)
    resp = post(client, "legacy", {"hostname": "a b", "message": "m", "syslog_severity": "loud"})
    assert resp.status_code == 400
    assert resp.json["field"] == "hostname"
    assert unknown_severities(client).get("legacy", 0.0) == before


# -- the agent of a trap ---------------------------------------------------------


@pytest.mark.parametrize("path", ["legacy", "trap"])
@pytest.mark.parametrize(
    ("fields", "hostname"),
    [
        ({"source_ip": "10.1.2.3"}, "10.1.2.3"),
        ({"agent_address": "10.1.2.4"}, "10.1.2.4"),
        ({"agent_address": "10.1.2.4", "source_ip": "10.9.9.9"}, "10.1.2.4"),
        ({"hostname": "", "source_ip": "2001:db8::7"}, "2001:db8::7"),
        (
            {"varbinds": {SYS_NAME: "Edge-7.example.net"}, "source_ip": "10.1.2.3"},
            "edge-7.example.net",
        ),
        ({"varbinds": {SYS_NAME: "Edge router 7"}, "source_ip": "10.1.2.3"}, "10.1.2.3"),
        ({"hostname": "Named", "source_ip": "10.1.2.3"}, "named"),
    ],
)
def test_a_trap_without_hostname_is_named_like_trap_handle_names_it(
    client: FlaskClient,
    r: redis.Redis,
    keys: Keys,
    path: str,
    fields: dict[str, Any],
    hostname: str,
) -> None:
    data = {"trap_oid": LINK_DOWN, **fields}
    resp = post(client, path, data)
    assert resp.status_code == 202, resp.json
    (event,) = stream_data(r, keys)
    assert event["hostname"] == hostname
    for key in ("agent_address", "source_ip"):
        if key in fields:
            assert event["attributes"][key] == fields[key]  # the address is kept either way


@pytest.mark.parametrize(("path", "field"), [("legacy", "hostname"), ("trap", "data.hostname")])
def test_a_trap_with_no_name_at_all_is_refused_naming_the_fields(
    client: FlaskClient, path: str, field: str
) -> None:
    resp = post(client, path, {"trap_oid": LINK_DOWN, "varbinds": [[SYS_UPTIME, "5"]]})
    assert resp.status_code == 400
    assert resp.json["field"] == field
    for name in ("sysName.0", SYS_NAME, "agent_address", "source_ip"):
        assert name in resp.json["error"]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"trap_oid": LINK_DOWN, "agent_address": "10.0.0.1 x"}, "agent_address"),
        ({"trap_oid": LINK_DOWN, "source_ip": 17}, "source_ip"),
    ],
)
def test_a_bad_agent_address_is_refused_by_its_name(
    client: FlaskClient, data: dict[str, Any], field: str
) -> None:
    resp = post(client, "legacy", data)
    assert resp.status_code == 400
    assert resp.json["field"] == field


def test_a_syslog_event_still_needs_its_hostname(client: FlaskClient) -> None:
    resp = post(client, "legacy", {"message": "m", "source_ip": "10.1.2.3"})
    assert resp.status_code == 400
    assert (resp.json["field"], resp.json["error"]) == ("hostname", "is required")


# -- varbind forms ---------------------------------------------------------------

VARBINDS = [(SYS_UPTIME, "0:0:40:11.01"), (SNMP_TRAP_OID, LINK_DOWN), (IF_DESCR, "Gi0/2")]
FORMS: dict[str, Any] = {
    "objects": [{"oid": oid, "value": value} for oid, value in VARBINDS],
    "pairs": [[oid, value] for oid, value in VARBINDS],
    "map": dict(VARBINDS),
}


@pytest.mark.parametrize("path", ["legacy", "trap"])
@pytest.mark.parametrize("form", sorted(FORMS))
def test_every_varbind_form_gives_the_same_event(
    client: FlaskClient, r: redis.Redis, keys: Keys, path: str, form: str
) -> None:
    resp = post(
        client, path, {"source_ip": "10.0.0.9", "trap_oid": LINK_DOWN, "varbinds": FORMS[form]}
    )
    assert resp.status_code == 202, resp.json
    (event,) = stream_data(r, keys)
    assert [(v["oid"], v["value"]) for v in event["varbinds"]] == VARBINDS
    # the message names the trap and says what it is about, not its uptime or its own OID
    assert event["message"] == f"SNMP trap {LINK_DOWN} (linkDown): {IF_DESCR}=Gi0/2"


@pytest.mark.parametrize(
    ("varbinds", "field", "problem"),
    [
        ([[IF_DESCR]], "varbinds[0]", "must be an [oid, value] pair"),
        ({IF_DESCR: {"value": 1}}, f"varbinds['{IF_DESCR}']", "must be a string or a number"),
        ("1.3=2", "varbinds", "must be an array of varbinds or an object of OID: value"),
    ],
)
def test_a_bad_varbind_is_refused_naming_it(
    client: FlaskClient, varbinds: object, field: str, problem: str
) -> None:
    resp = post(client, "trap", {"hostname": "sw-1", "trap_oid": LINK_DOWN, "varbinds": varbinds})
    assert resp.status_code == 400
    assert resp.json["field"] == f"data.{field}"
    assert resp.json["error"].startswith(problem)


def test_a_trap_with_only_housekeeping_varbinds_is_named_by_its_oid(
    client: FlaskClient, r: redis.Redis, keys: Keys
) -> None:
    varbinds = {SYS_UPTIME: 5, SNMP_TRAP_OID: ALARM_TRAP}
    resp = post(client, "trap", {"hostname": "sw-1", "trap_oid": ALARM_TRAP, "varbinds": varbinds})
    assert resp.status_code == 202, resp.json
    (event,) = stream_data(r, keys)
    assert event["message"] == f"SNMP trap {ALARM_TRAP}"
    assert len(event["varbinds"]) == 2  # kept in the event all the same
