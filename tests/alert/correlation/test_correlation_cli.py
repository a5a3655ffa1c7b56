"""``mutt correlation apply|export|status``: the correlation file as code, audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pg8000.native
import yaml

from functions.alert.correlation.config import load_doc
from tests.alert.correlation.conftest import Stage, alerts, link


def write(tmp_path: Path, doc: object) -> str:
    path = tmp_path / "correlation.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_apply_is_validated_diffed_audited_and_live(
    stage: Stage, mutt: Any, tmp_path: Path, pg: pg8000.native.Connection
) -> None:
    rule = stage.rules["changed state to down"]
    doc = {
        "pairs": [
            {
                "rule": rule,
                "clear": "changed state to up",
                "instance": r"Interface (?P<instance>[^,\s]+)",
            }
        ]
    }
    path = write(tmp_path, doc)
    dry = mutt("correlation", "apply", path, "--reason", "pair links", "--dry-run")
    assert dry.code == 0 and f"+ rule {rule}" in dry.out and "dry run" in dry.out
    assert load_doc(stage.r, stage.keys)[1] is None

    ran = mutt(
        "correlation", "apply", path, "--reason", "CHG-9 pair links", "--by", "carol", "--yes"
    )
    assert ran.code == 0, ran.err
    (down,) = alerts(stage.send(link("down")))
    (up,) = alerts(stage.send(link("up")))
    assert (down.action, up.action) == ("trigger", "resolve")

    assert "no changes" in mutt("correlation", "apply", path, "--reason", "again", "--yes").out
    exported = mutt("correlation", "export")
    assert yaml.safe_load(exported.out)["pairs"][0]["rule"] == rule

    removed = mutt(
        "correlation", "apply", write(tmp_path, {"pairs": []}), "--reason", "unpair", "--yes"
    )
    assert removed.code == 0 and f"- rule {rule}" in removed.out
    rows = pg.run(
        "SELECT operation, changed_by, new_values FROM config_audit_log"
        " WHERE table_name = 'correlation_pairs' AND record_id = :r ORDER BY id",
        r=str(rule),
    )
    assert [op for op, _, _ in rows] == ["CREATE", "DELETE"]
    assert rows[0][1] == "carol"
    assert rows[0][2]["clear"] == "changed state to up"


def test_invalid_files_and_unknown_rules_change_nothing(
    stage: Stage, mutt: Any, tmp_path: Path
) -> None:
    bad = write(
        tmp_path,
        {"pairs": [{"rule": 1, "clear": "(up"}, {"rule": 2, "clear": "x", "instance": "(y)"}]},
    )
    ran = mutt("correlation", "apply", bad, "--reason", "r", "--yes")
    assert ran.code != 0 and "2 problems" in ran.err
    assert "pairs.#1.clear" in ran.err and "pairs.#2.instance" in ran.err

    missing = write(tmp_path, {"pairs": [{"rule": 999_999, "clear": "up"}]})
    ran = mutt("correlation", "apply", missing, "--reason", "r", "--yes")
    assert ran.code != 0 and "999999 do not exist" in ran.err
    assert load_doc(stage.r, stage.keys)[1] is None


def test_status_reports_open_and_flapping_keys(stage: Stage, mutt: Any) -> None:
    stage.pair_links()
    stage.send(link("down", "Gi0/1"), link("down", "Gi0/2"))
    ran = mutt("correlation", "status", "--json")
    assert ran.code == 0, ran.err
    status = orjson.loads(ran.out)
    assert status["pairs"] == 1
    assert status["open_paired_alerts"] == 2
    assert status["flapping_keys"] == 0
    assert status["alert_dedup_seconds"] == 0
