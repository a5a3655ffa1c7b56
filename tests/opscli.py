"""``mutt`` with the operator command groups registered, for tests.

``mutt.cli.build_parser`` adds the groups of ``mutt.commands`` once they are
wired in; until then (and harmlessly afterwards) this adds the ones it lacks,
so the tests exercise the real parser, the real commands and the real
``mutt: ...`` error handling either way. ``python -m tests.opscli ARGS`` is
the subprocess form.
"""

from __future__ import annotations

import argparse
import sys

from mutt import cli
from mutt.commands import audit, config, dlq, rules, status
from shared.errors import MuttError

GROUPS = {"rules": rules, "config": config, "audit": audit, "status": status, "dlq": dlq}


def build_parser() -> argparse.ArgumentParser:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, module in GROUPS.items():
        if name not in sub.choices:
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Same contract as ``mutt.cli.main``: one ``mutt: ...`` line per expected failure."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except MuttError as exc:
        print(f"mutt: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
