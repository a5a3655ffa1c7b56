"""The console in a real browser: create a rule, see it in ``mutt rules list``, see its alert.

Debian's chromium (``/usr/bin/chromium``, installed by
``.ci/install-system-packages.sh``) driven by playwright; no browser is ever
downloaded. Screenshots are kept under ``$MUTT_TEST_ARTIFACTS`` (or the
test's temporary directory) and their path is printed.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mutt.cli import main as mutt_main
from tests.admin.conftest import Run

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if shutil.which(CHROMIUM) is None:  # pragma: no cover - CI installs it
    pytest.skip(
        f"{CHROMIUM} is not installed (.ci/install-system-packages.sh)", allow_module_level=True
    )
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    base = os.environ.get("MUTT_TEST_ARTIFACTS")
    where = Path(base) / "admin-console" if base else tmp_path / "screenshots"
    where.mkdir(parents=True, exist_ok=True)
    print(f"\nconsole screenshots: {where}")
    return where


@pytest.fixture
def page(mutt_run: Run) -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        yield context.new_page()
        context.close()
        browser.close()


def send_event(run: Run, host: str, message: str) -> None:
    got = requests.post(
        run.ingest_url + "/",
        json={"hostname": host, "message": message, "syslog_severity": "error"},
        headers={
            "ce-specversion": "1.0",
            "ce-id": uuid.uuid4().hex,
            "ce-source": "/tests/admin/browser",
            "ce-type": "io.mutt.syslog.v1",
        },
        timeout=10,
    )
    assert got.status_code in (200, 202), got.text


def test_create_a_rule_in_the_console_and_find_its_alert(
    mutt_run: Run,
    page: object,
    artifacts: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pg = page  # playwright's Page
    marker = f"CONSOLE-{uuid.uuid4().hex[:8].upper()}"
    host = f"web-{uuid.uuid4().hex[:6]}"

    pg.goto(mutt_run.admin_url + "/rules")  # type: ignore[attr-defined]
    assert "/login" in pg.url  # type: ignore[attr-defined]
    pg.fill("#api_key", "not-the-key-at-all-000")  # type: ignore[attr-defined]
    pg.click("button[type=submit]")  # type: ignore[attr-defined]
    assert "not valid" in pg.inner_text("#error")  # type: ignore[attr-defined]
    pg.fill("#api_key", mutt_run.key)  # type: ignore[attr-defined]
    pg.click("button[type=submit]")  # type: ignore[attr-defined]
    pg.wait_for_url("**/rules")  # type: ignore[attr-defined]
    pg.screenshot(path=str(artifacts / "1-rules.png"), full_page=True)  # type: ignore[attr-defined]

    pg.click("text=New rule")  # type: ignore[attr-defined]
    pg.fill("#match_string", marker)  # type: ignore[attr-defined]
    pg.select_option("#prod_handling", "Page_and_ticket")  # type: ignore[attr-defined]
    pg.fill("#team_assignment", "WebOps")  # type: ignore[attr-defined]
    pg.fill("#priority", "1")  # type: ignore[attr-defined]
    summary = pg.locator("#preview-summary")  # type: ignore[attr-defined]
    summary.filter(has_text="would match").wait_for(timeout=10_000)
    pg.screenshot(path=str(artifacts / "2-new-rule-preview.png"), full_page=True)  # type: ignore[attr-defined]

    pg.click("#review")  # type: ignore[attr-defined]
    diff = pg.inner_text("#diff")  # type: ignore[attr-defined]
    assert "+ new rule" in diff and marker in diff
    pg.screenshot(path=str(artifacts / "3-review-diff.png"), full_page=True)  # type: ignore[attr-defined]
    pg.click("#save")  # type: ignore[attr-defined]
    assert pg.url.endswith("/rules/review")  # type: ignore[attr-defined]  # reason is required
    pg.fill("#reason", "CHG-42 page WebOps on console test events")  # type: ignore[attr-defined]
    pg.click("#save")  # type: ignore[attr-defined]
    pg.wait_for_url("**/rules?done=saved*")  # type: ignore[attr-defined]
    assert marker in pg.inner_text("#rules")  # type: ignore[attr-defined]

    for name in [k for k in os.environ if k.startswith("MUTT_")]:
        monkeypatch.delenv(name)  # the operator command finds the run by its data directory
    capsys.readouterr()
    assert mutt_main(["rules", "list", "--json", "--data-dir", str(mutt_run.data_dir)]) == 0
    listed = capsys.readouterr().out
    assert marker in listed and "WebOps" in listed

    send_event(mutt_run, host, f"%APP-3-FAIL: {marker} checkout failing")
    deadline = time.monotonic() + 60
    while True:
        pg.goto(f"{mutt_run.admin_url}/audit?hostname={host}")  # type: ignore[attr-defined]
        rows = pg.locator("#events tbody tr")  # type: ignore[attr-defined]
        if rows.count() and "Page_and_ticket" in rows.first.inner_text():
            break
        assert time.monotonic() < deadline, "the alert never reached the audit view"
        time.sleep(0.5)
    row = rows.first.inner_text()
    assert "WebOps" in row and marker in row
    assert "yes" in row  # forwarded: an alert was raised
    pg.screenshot(path=str(artifacts / "4-audit.png"), full_page=True)  # type: ignore[attr-defined]
    changes = pg.inner_text("#changes")  # type: ignore[attr-defined]
    assert "CHG-42 page WebOps" in changes
    for name, path in (("5-overview", "/"), ("6-status", "/status"), ("7-hosts", "/hosts")):
        pg.goto(mutt_run.admin_url + path)  # type: ignore[attr-defined]
        pg.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]
