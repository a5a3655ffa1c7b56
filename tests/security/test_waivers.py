"""Every waiver of a security rule says why, on its line; none waives everything.

ruff's ``S`` rules (bandit) run on the code outside ``tests/`` and ``bench/``
(pyproject.toml). A ``# noqa: S...`` is a security decision: the comment must
carry its reason after the codes (``# noqa: S608 - fixed column names``).
A bare ``# noqa`` or a file-wide ``# ruff: noqa`` would silence the S rules
without saying so, and is refused anywhere.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "functions", "mutt", "bench", "tests")
NOQA = re.compile(r"#\s*noqa\b(?P<rest>.*)", re.IGNORECASE)
CODES = re.compile(r"^:\s*(?P<codes>[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*)(?P<why>.*)$")
FILE_WIDE = re.compile(r"#\s*(ruff|flake8)\s*:\s*noqa", re.IGNORECASE)


def comments(path: Path) -> list[tuple[int, str]]:
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    return [(t.start[0], t.string) for t in tokens if t.type == tokenize.COMMENT]


def problems(comment: str) -> list[str]:
    """What is wrong with one comment's waivers (nothing: an empty list)."""
    if FILE_WIDE.search(comment):
        return ["a file-wide noqa"]
    found = NOQA.search(comment)
    if not found:
        return []
    parsed = CODES.match(found["rest"])
    if not parsed:
        return ["a noqa without codes"]
    codes = [c.strip() for c in parsed["codes"].split(",")]
    why = parsed["why"].strip().lstrip("-\u2013\u2014:;(").strip()
    if any(c.startswith("S") for c in codes) and len(why.split()) < 1:
        return [f"{', '.join(codes)} waived without a reason"]
    return []


def python_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_every_security_waiver_is_justified_inline() -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {problem}: {text.strip()}"
        for path in python_files()
        for line, text in comments(path)
        for problem in problems(text)
    ]
    assert bad == []


def test_there_are_waivers_to_check() -> None:
    waivers = [t for p in python_files() for _, t in comments(p) if re.search(r"noqa:\s*S", t)]
    assert len(waivers) >= 5  # the scan reads the comments it must (see the list above)


@pytest.mark.parametrize(
    ("comment", "ok"),
    [
        ("# noqa: S608 - fixed column names", True),
        ("# noqa: S311 - jitter, not crypto", True),
        ("# noqa: S105 (the name of the secret)", True),
        ("# noqa: E501", True),
        ("# noqa: S104", False),
        ("# noqa: S104 -", False),
        ("# noqa: E501, S603", False),
        ("# noqa", False),
        ("# ruff: noqa", False),
        ("# ruff: noqa: S101", False),
    ],
)
def test_the_rule(comment: str, ok: bool) -> None:
    assert (problems(comment) == []) is ok
