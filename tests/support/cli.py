"""Running the operator commands in tests: in-process (fast) or as a real process.

Both go through the real entry point, ``mutt.cli.main``, as an operator's
shell does: its parser, its commands and its one-line ``mutt: ...`` errors.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mutt.cli import main
from shared.config import Settings
from tests.support.processes import settings_env

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


Cli = Callable[..., Ran]


def in_process(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Cli:
    """``mutt ARGS`` called in this process with exactly ``settings`` in the environment."""
    for key in [k for k in os.environ if k.startswith("MUTT_")]:
        monkeypatch.delenv(key)
    for key, value in settings_env(settings).items():
        if key.startswith("MUTT_"):
            monkeypatch.setenv(key, value)

    def run(*argv: str) -> Ran:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


def as_process(settings: Settings, *argv: str, stdin: str | None = None) -> Ran:
    """``mutt ARGS`` as a child process (what an operator's shell does)."""
    proc = subprocess.run(
        [sys.executable, "-m", "mutt", *argv],
        env=settings_env(settings),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    return Ran(proc.returncode, proc.stdout, proc.stderr)
