"""schemathesis against a live ingest (``mutt serve ingest``): no 5xx, and every
response conforms to the OpenAPI document the server publishes."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from shared.config import load_settings
from tests.support.processes import free_port, mutt, settings_env, stop, wait_http

pytestmark = pytest.mark.slow

# What the contract promises: no 5xx, and answers that match the document.
# (Positive/negative data acceptance are left out on purpose: the parsers
# apply rules no JSON Schema can say, such as "no NUL characters".)
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def live_ingest(servers: tuple[str, str], db_schema: str) -> Iterator[str]:
    namespace = f"st{uuid.uuid4().hex[:8]}"
    env = settings_env(
        load_settings(
            {},
            redis_url=servers[0],
            database_url=servers[1],
            database_schema=db_schema,
            namespace=namespace,
        )
    )
    port = free_port()
    proc = subprocess.Popen(
        mutt("serve", "ingest", "--port", str(port)), env=env, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/healthz", proc)
        yield url
    finally:
        stop(proc)
        client = redis.Redis.from_url(servers[0])
        keys = list(client.scan_iter(match=f"{namespace}:*"))
        if keys:
            client.delete(*keys)


def test_ingest_conforms_to_its_contract(live_ingest: str) -> None:
    """Every operation, a bounded number of generated requests each."""
    schema = schemathesis.openapi.from_url(live_ingest + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=CHECKS)

        check()
