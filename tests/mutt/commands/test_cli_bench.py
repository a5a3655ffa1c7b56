"""``mutt bench``: the benchmark runner behind the main command."""

from __future__ import annotations

import subprocess
import sys


def mutt(*words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mutt", *words],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_mutt_bench_lists_every_benchmark() -> None:
    done = mutt("bench", "--list")
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines()]
    for name in ("rules_bench", "ingest_bench", "audit_bench", "forward_bench", "e2e_bench"):
        assert name in names
    assert "coldstart_bench" in names


def test_mutt_bench_refuses_an_unknown_benchmark() -> None:
    done = mutt("bench", "no_such_bench")
    assert done.returncode == 2
    assert "unknown benchmark(s): no_such_bench" in done.stderr
    assert "usage: mutt bench" in done.stderr


def test_mutt_help_names_the_bench_command() -> None:
    assert "bench" in mutt("--help").stdout
