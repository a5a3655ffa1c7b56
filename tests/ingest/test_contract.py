"""The published contract stays true: committed documents match the code and the events."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import orjson
import pytest
from flask.testing import FlaskClient

from functions.alert.build import make_alert_handler
from functions.ingest.contract import openapi
from shared.models import SCHEMAS, schema_url
from tests.support.factories import alert_event

ROOT = Path(__file__).resolve().parents[2]


def test_committed_openapi_document_is_current() -> None:
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert committed == json.loads(orjson.dumps(openapi())), (
        "run: mutt openapi --out docs/openapi.json"
    )


def test_committed_event_schemas_are_current() -> None:
    for event_type, model in SCHEMAS.items():
        committed = json.loads((ROOT / "docs" / "schemas" / f"{event_type}.json").read_text())
        assert committed == {"$id": schema_url(event_type), **model.model_json_schema()}, (
            "run: mutt schemas"
        )


def validate(event_type: str, data: object) -> None:
    schema = json.loads((ROOT / "docs" / "schemas" / f"{event_type}.json").read_text())
    jsonschema.validate(data, schema)


def test_served_document_and_version_headers(client: FlaskClient) -> None:
    resp = client.get("/openapi.json")
    assert resp.status_code == 200
    assert resp.json["openapi"] == "3.1.0"
    assert resp.headers["X-MUTT-API-Version"]
    old = client.post("/ingest", json={"hostname": "h", "message": "m"})
    assert old.headers["Deprecation"] == "true"
    assert old.headers["Sunset"]
    assert (
        "Deprecation"
        not in client.post("/api/v2/ingest", json={"hostname": "h", "message": "m"}).headers
    )


@pytest.mark.usefixtures("demo_rules")
def test_every_emitted_event_validates_against_its_schema(
    client: FlaskClient, ctx, r, keys
) -> None:  # type: ignore[no-untyped-def]
    from shared.envelope import FIELD, decode

    client.post(
        "/api/v2/ingest",
        json={
            "hostname": "r1",
            "message": "Gi1 changed state to down",
            "syslog_severity": "err",
            "trap_oid": ".1.3.6.1.4.1.9.9.41",
        },
    )
    ((_, fields),) = r.xrange(keys.events)
    accepted = decode(fields[FIELD])
    assert accepted["dataschema"] == schema_url(accepted["type"])
    validate(accepted["type"], accepted.data)
    (outcome,) = make_alert_handler(ctx).handle([accepted])
    for reply in outcome.replies:
        if reply["type"] in SCHEMAS:
            assert reply["dataschema"] == schema_url(reply["type"])
            validate(reply["type"], reply.data)
    from functions.forward.handler import make_forward_handler

    (delivered,) = make_forward_handler(ctx).handle([alert_event(1)])
    (report,) = delivered.replies
    validate(report["type"], report.data)
