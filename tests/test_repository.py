"""The repository stands on its own: nothing in it points at files users do not have.

Every tracked file (``git ls-files``, binary files included) is searched for
absolute paths into the build machine's work tree and for the names of
documents that were never part of the repository. The facts those documents
held live in ``docs/reference/``; citations of its sections must resolve.
"""

from __future__ import annotations

import re
import subprocess
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The names are put together from pieces, so that this file does not itself
# hold what it looks for (and needs no exception).
WORK = "/" + "work"
PERF = "perf" + "-limits.md"
DESIGN = "DES" + "IGN.md"
BASELINE = "mutt-v25" + "-baseline.md"
KIT = ".." + "/shared"

FORBIDDEN: dict[str, re.Pattern[bytes]] = {
    f"an absolute path into {WORK}": re.compile(
        rb"(?<![\w.])" + re.escape(WORK.encode()) + rb"(?=[/\s\"'`)]|$)", re.M
    ),
    PERF: re.compile(rb"perf[-_ ]" + rb"limits", re.I),
    DESIGN: re.compile(rb"\bDES" + rb"IGN(?:\.md|\s*\xc2\xa7)"),  # also "... §2"
    BASELINE: re.compile(rb"mutt-v25" + rb"-baseline", re.I),
    KIT: re.compile(re.escape(KIT.encode()) + rb"\b"),
}

# Single lines that must stay, each with its reason: (path, the exact line, stripped).
LINE_EXCEPTIONS: dict[tuple[str, bytes], str] = {}


def tracked_files() -> list[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"not a git checkout ({exc}): cannot list the tracked files")
    return [name for name in out.decode().split("\0") if name]


def offending_lines(path: str, data: bytes) -> list[str]:
    found = []
    for number, line in enumerate(data.splitlines(), 1):
        for what, pattern in FORBIDDEN.items():
            if pattern.search(line) and (path, line.strip()) not in LINE_EXCEPTIONS:
                found.append(f"{path}:{number}: {what}: {line.strip()[:120]!r}")
    return found


def test_no_tracked_file_points_outside_the_repository() -> None:
    files = tracked_files()
    assert len(files) > 100
    problems = []
    for path in files:
        full = ROOT / path
        if full.is_file():  # a deletion not yet committed is not content
            problems += offending_lines(path, full.read_bytes())
    assert problems == [], "\n".join(problems)


def test_every_exception_is_still_needed() -> None:
    """An exception whose line is gone must be removed, or it would hide a new one."""
    for (path, line), _reason in LINE_EXCEPTIONS.items():
        lines = [raw.strip() for raw in (ROOT / path).read_bytes().splitlines()]
        assert line in lines, f"{path} no longer holds the excepted line; drop the exception"


@pytest.mark.parametrize(
    ("line", "what"),
    [
        (f"see {WORK}/shared/reference/x.md".encode(), f"an absolute path into {WORK}"),
        (
            f'CONFORMANCE = Path("{WORK}/shared/conformance")'.encode(),
            f"an absolute path into {WORK}",
        ),
        (f"(reference/{PERF} \u00a71)".encode(), PERF),
        (f"({DESIGN} section 2)".encode(), DESIGN),
        (f"shared/models.py, {DESIGN[:-3]} \u00a72".encode(), DESIGN),
        (f"`{BASELINE}` section 3".encode(), BASELINE),
        (f"  - {KIT}/reference".encode(), KIT),
    ],
)
def test_the_patterns_catch_what_they_are_for(line: bytes, what: str) -> None:
    assert [w for w, p in FORBIDDEN.items() if p.search(line)] == [what]


@pytest.mark.parametrize(
    "line",
    [
        f"https://example.com{WORK}/item".encode(),
        f"cd {WORK}space && make".encode(),
        b"  - ../base",
        b"the design of the relay",
        b"`/var/run/secrets/mutt`",
    ],
)
def test_the_patterns_leave_ordinary_text_alone(line: bytes) -> None:
    assert [w for w, p in FORBIDDEN.items() if p.search(line)] == []


# --- citations of docs/reference/ resolve ------------------------------------

REFERENCE = ROOT / "docs" / "reference"
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$", re.M)
_SECTION_CITATION = re.compile(r"docs/reference/([\w-]+\.md) §(\d+(?:\.\d+)?)")
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    kept = "".join(
        ch
        for ch in text
        if ch in " -_" or unicodedata.category(ch)[0] in "LN"  # letters and digits
    )
    return kept.replace(" ", "-")


def anchors(markdown: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", markdown.read_text(), flags=re.S)
    return {slug(m.group(2)) for m in _HEADING.finditer(text)}


def section_numbers(markdown: Path) -> set[str]:
    return {
        m.group(2).split()[0].rstrip(".")
        for m in _HEADING.finditer(markdown.read_text())
        if m.group(2)[:1].isdigit()
    }


def test_slug_matches_github() -> None:
    assert slug("4. Rule matching: 10,000 rules") == "4-rule-matching-10000-rules"
    assert slug("1.1 Ingest API") == "11-ingest-api"
    assert slug("What changed from v2.5 and why") == "what-changed-from-v25-and-why"
    assert slug("Data (PostgreSQL)") == "data-postgresql"


def test_section_citations_name_existing_sections() -> None:
    problems = []
    for path in tracked_files():
        full = ROOT / path
        if not full.is_file() or full.suffix not in {".py", ".md", ".toml", ".sql", ".yaml"}:
            continue
        for m in _SECTION_CITATION.finditer(full.read_text(errors="replace")):
            target = REFERENCE / m.group(1)
            if not target.is_file():
                problems.append(f"{path}: {m.group(0)}: no such file")
            elif m.group(2) not in section_numbers(target):
                problems.append(f"{path}: {m.group(0)}: no such section")
    assert problems == [], "\n".join(problems)


def test_links_to_and_from_the_reference_pages_resolve() -> None:
    pages = [ROOT / p for p in tracked_files() if p.endswith(".md")]
    checked = 0
    problems = []
    for page in pages:
        inside = REFERENCE in page.parents
        for m in _LINK.finditer(page.read_text()):
            target, _, fragment = m.group(1).partition("#")
            if "://" in target or target.startswith("mailto:"):
                continue
            resolved = (page.parent / target).resolve() if target else page
            if not (inside or REFERENCE in resolved.parents):
                continue
            checked += 1
            where = f"{page.relative_to(ROOT)}: ({m.group(1)})"
            if not resolved.exists():
                problems.append(f"{where}: no such file")
            elif fragment and fragment not in anchors(resolved):
                problems.append(f"{where}: no heading with that anchor")
    assert checked > 10  # the reference pages are linked from the docs
    assert problems == [], "\n".join(problems)
