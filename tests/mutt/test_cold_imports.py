"""A function process imports only what it uses: every module is cold-start time.

Each case starts the real command (``mutt worker NAME``, ``mutt serve NAME``)
in a child process, up to the point where it would start serving (the
handler built, the app loaded), and lists the modules it imported. What a
function does not use must not be there: Flask in a stream worker (~130 ms),
pg8000 in a function that never opens PostgreSQL (~30 ms), hvac without
Vault, ``mutt run``'s requests, PyYAML and embedded servers in ``mutt serve``.
And the garbage collector, paused while a command starts, runs again when it serves.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from shared.config import Settings
from tests.support.processes import free_port, settings_env

# The child stops where serving would begin and prints every imported module.
_WORKER = """
import gc, sys
from mutt.runtime import worker
worker.StreamWorker.run = lambda self: print(*sorted(sys.modules), f"gc={gc.isenabled()}")
from mutt.cli import main
raise SystemExit(main(sys.argv[1:]))
"""

_SERVE = """
import gc, sys
import functions_framework._http as http
class _Server:
    def run(self, host, port):
        print(*sorted(sys.modules), f"gc={gc.isenabled()}")
http.create_server = lambda *args, **kwargs: _Server()
from mutt.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def _imported(settings: Settings, script: str, *argv: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", script, *argv],
        env=settings_env(settings),
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    modules = set(proc.stdout.split())
    assert "shared.context" in modules  # the probe really ran the command
    # The start ran with the cyclic GC off (mutt.cli); serving never does.
    assert "gc=True" in modules
    return modules


def _top_level(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules} | modules


@pytest.mark.parametrize(
    ("stage", "forbidden"),
    [
        ("alert", {"flask", "functions_framework", "gunicorn", "werkzeug", "hvac", "yaml"}),
        ("forward", {"flask", "functions_framework", "gunicorn", "pg8000", "hvac"}),
    ],
)
def test_a_stream_worker_imports_no_http_framework_and_nothing_it_does_not_use(
    settings: Settings, stage: str, forbidden: set[str]
) -> None:
    modules = _top_level(_imported(settings, _WORKER, "worker", stage))
    assert modules & forbidden == set()


@pytest.mark.parametrize(
    ("function", "forbidden"),
    [
        ("alert", {"mutt.run", "requests", "yaml", "hvac"}),
        ("forward", {"mutt.run", "pg8000", "hvac"}),
    ],
)
def test_an_http_function_imports_neither_mutt_run_nor_what_it_does_not_use(
    settings: Settings, function: str, forbidden: set[str]
) -> None:
    modules = _top_level(_imported(settings, _SERVE, "serve", function, "--port", str(free_port())))
    assert "functions_framework" in modules
    assert modules & forbidden == set()
