"""``mutt`` with the correlation command groups, for tests (until mutt/cli.py wires them)."""

from __future__ import annotations

import argparse
import os
import sys

import pytest

from mutt.commands import correlation, silence
from shared.config import Settings
from shared.errors import MuttError
from tests import opscli
from tests.cli_support import Cli, Ran
from tests.helpers import settings_env

GROUPS = {"silence": silence, "correlation": correlation}


def build_parser() -> argparse.ArgumentParser:
    parser = opscli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, module in GROUPS.items():
        if name not in sub.choices:
            module.register(sub)
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except MuttError as exc:
        print(f"mutt: {exc}", file=sys.stderr)
        return exc.exit_code


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
        code = main(list(argv))
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run
