"""The folders say what runs (ADR 0007): who may import whom."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imports_of(folder: str) -> dict[str, set[str]]:
    """Module path -> every module it imports (absolute names)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[str(path.relative_to(ROOT))] = names
    return found


def offenders(folder: str, forbidden: str) -> list[str]:
    return [
        f"{path} imports {name}"
        for path, names in imports_of(folder).items()
        for name in sorted(names)
        if name == forbidden or name.startswith(forbidden + ".")
    ]


@pytest.mark.parametrize("folder", ["functions", "shared", "mutt"])
def test_the_product_never_imports_the_benchmarks(folder: str) -> None:
    assert offenders(folder, "bench") == []


@pytest.mark.parametrize("folder", ["functions", "shared"])
def test_functions_and_shared_never_import_the_processes_that_host_them(folder: str) -> None:
    assert offenders(folder, "mutt") == []


def test_shared_never_imports_a_function() -> None:
    assert offenders("shared", "functions") == []


def test_the_janitor_imports_nothing_of_forward() -> None:
    assert offenders("functions/janitor", "functions.forward") == []
