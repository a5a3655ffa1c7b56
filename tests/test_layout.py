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


# Suites that cut across the tree: deploy files, hostile conditions, the security review.
CROSS_CUTTING = {"deploy", "resilience", "security", "support"}


def test_tests_mirror_the_source_tree() -> None:
    """tests/<function>/, tests/shared/, tests/mutt/ (and the cross-cutting suites)."""
    tests = ROOT / "tests"
    functions = {p.name for p in (ROOT / "functions").iterdir() if (p / "__init__.py").exists()}
    allowed = functions | {"shared", "mutt"} | CROSS_CUTTING
    folders = {p.name for p in tests.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders - allowed == set()
    for top in ("shared", "mutt", *functions):
        for folder in (tests / top).rglob("*"):
            if folder.is_dir() and (folder / "__init__.py").exists():
                source = ROOT / (top if top in ("shared", "mutt") else f"functions/{top}")
                mirrored = source / folder.relative_to(tests / top)
                # a package, or a module whose tests fill a folder (shared/secrets.py)
                assert mirrored.is_dir() or mirrored.with_suffix(".py").is_file(), folder


def test_helpers_live_in_tests_support_only() -> None:
    """One naming scheme: a test module is test_*.py, a helper is tests/support/<what>.py."""
    strays = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests").rglob("*.py")
        if not p.name.startswith("test_")
        and p.name not in ("__init__.py", "conftest.py")
        and p.parent.name != "support"
    ]
    assert strays == []
