"""The configuration audit never fails for a value PostgreSQL cannot store."""

from __future__ import annotations

import uuid

import pg8000.native

from shared.config_audit import ConfigChange, write_config_audit


def test_a_nul_in_any_value_is_stored_as_a_replacement_character(
    pg: pg8000.native.Connection,
) -> None:
    record = f"nul-{uuid.uuid4().hex[:8]}"
    change = ConfigChange(
        "UPDATE", "dynamic_config", record, {"old": "a\x00b"}, {"n\x00": ["\x00"]}
    )
    write_config_audit(pg, [change], changed_by="t\x00", reason="r\x00", correlation_id="c")
    ((old, new, by, reason),) = pg.run(
        "SELECT old_values, new_values, changed_by, reason FROM config_audit_log"
        " WHERE record_id = :r",
        r=record,
    )
    assert old == {"old": "a\ufffdb"}
    assert new == {"n\ufffd": ["\ufffd"]}
    assert (by, reason) == ("t\ufffd", "r\ufffd")
    pg.run("DELETE FROM config_audit_log WHERE record_id = :r", r=record)
