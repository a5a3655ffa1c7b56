"""``mutt bench``: the benchmarks of ``bench/`` (the same as ``python -m bench``).

The benchmarks live beside the code in a source checkout, not in the
installed package (they need ``wrk``, the test factories and a scratch
namespace), so this command finds the checkout the ``mutt`` package was
installed from (``pip install -e .``) and runs its runner, ``python -m bench``,
as a child process with the words after ``bench`` unchanged. The product
never imports ``bench/`` (ADR 0007): development tooling stays out of the
processes that run in production.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from shared.errors import ConfigError

EPILOG = """examples:
  mutt bench --list                         # what there is
  mutt bench --quick                        # every benchmark, small sizes
  mutt bench rules_bench e2e_bench          # some, at their default sizes
  python -m bench.e2e_bench --help          # one benchmark's own options
"""


def checkout_root() -> Path | None:
    """The source checkout holding ``bench/``, or ``None`` for an installed wheel."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "bench" / "__main__.py").is_file() else None


def run_bench(argv: Sequence[str]) -> int:
    """``python -m bench ARGV`` from the checkout; its exit code."""
    root = checkout_root()
    if root is None:
        raise ConfigError(
            "mutt bench runs from a source checkout (git clone, then pip install -e '.[test]'):"
            " this installation has no bench/ folder"
        )
    env = {**os.environ, "BENCH_PROG": "mutt bench"}
    argv = [sys.executable, "-m", "bench", *argv]
    return subprocess.run(argv, check=False, cwd=root, env=env).returncode


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``mutt bench`` (for ``mutt --help``; ``mutt.cli.main`` passes its words through)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "bench",
        help="run the benchmarks (python -m bench): --list, --quick, NAME ...",
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("words", nargs="*", help="passed to the benchmark runner")
    p.set_defaults(func=lambda args: run_bench(args.words))
