"""schemathesis against a live admin function: no 5xx, answers as the document says."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.admin.conftest import KEYS, Admin

pytestmark = pytest.mark.slow

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def test_admin_conforms_to_its_contract(admin: Admin) -> None:
    """Every operation, a bounded number of generated requests each, as an admin."""
    schema = schemathesis.openapi.from_url(admin.url + "/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 40
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=CHECKS, headers={"X-API-KEY": KEYS["admin"]})

        check()
