"""``mutt silence`` / ``mutt correlation`` in tests, through ``mutt.cli.main``."""

from __future__ import annotations

import os

import pytest

from mutt.cli import main as mutt_main
from shared.config import Settings
from tests.cli_support import Cli, Ran
from tests.helpers import settings_env


def in_process(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Cli:
    """``mutt ARGS`` in this process with exactly ``settings`` in the environment."""
    for key in [k for k in os.environ if k.startswith("MUTT_")]:
        monkeypatch.delenv(key)
    for key, value in settings_env(settings).items():
        if key.startswith("MUTT_"):
            monkeypatch.setenv(key, value)

    def run(*argv: str) -> Ran:
        capsys.readouterr()
        code = mutt_main(list(argv))
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run
