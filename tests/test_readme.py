"""The README stays true: every setting documented, the quickstart is what CI runs."""

from __future__ import annotations

from pathlib import Path

from mutt.docs_gen import render
from shared.config import Settings, env_name

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [env_name(n) for n in Settings.model_fields if f"`{env_name(n)}`" not in readme]
    assert missing == []
    assert render(readme) == readme, "run: python -m mutt.docs_gen"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert ".venv/bin/pytest -q" in readme
    assert "\n.venv/bin/pytest -q\n" in ci
    # exactly as a fresh machine runs it: every MUTT_* variable unset first
    before = ci.split("\n.venv/bin/pytest -q\n")[0]
    assert "unset MUTT_REDIS_URL MUTT_DATABASE_URL" in before
    assert "MUTT_REDIS_URL=" not in ci and "MUTT_DATABASE_URL=" not in ci
    assert "export MUTT" not in ci
    assert "mutt run --demo" in readme
    assert "mutt run --demo" in ci
