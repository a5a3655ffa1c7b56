"""The severity reader: syslog levels and names, X.733 words, and what it cannot read."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.ingest.severity import X733, Reading, raw_value, read_severity
from shared.models import SEVERITY_ALIASES, Severity


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        (0, Severity.EMERGENCY),
        (7, Severity.DEBUG),
        ("3", Severity.ERROR),
        ("Warning", Severity.WARNING),
        ("WARN", Severity.WARNING),
        (" err ", Severity.ERROR),
        ("Critical", Severity.CRITICAL),
        ("crit", Severity.CRITICAL),
        ("emerg", Severity.EMERGENCY),
        ("panic", Severity.EMERGENCY),
        ("Notice", Severity.NOTICE),
        ("informational", Severity.INFO),
        ("Alert", Severity.ALERT),
        ("debug", Severity.DEBUG),
    ],
)
def test_syslog_levels_and_names(value: object, expected: Severity | None) -> None:
    assert read_severity(value) == Reading(expected)
    assert read_severity(value, trap=True).severity == expected


# The documented table (docs/sources.md): X.733 word → syslog level.
X733_TABLE = {
    "critical": Severity.CRITICAL,
    "major": Severity.ERROR,
    "minor": Severity.WARNING,
    "warning": Severity.WARNING,
    "indeterminate": None,
    "cleared": Severity.INFO,
    "clear": Severity.INFO,
}


@pytest.mark.parametrize("word", sorted(X733_TABLE))
@pytest.mark.parametrize("spelling", [str.lower, str.upper, str.title, lambda w: f"  {w}\t"])
def test_x733_words_on_a_trap(word: str, spelling: object) -> None:
    assert callable(spelling)
    reading = read_severity(spelling(word), trap=True)
    assert reading.severity == X733_TABLE[word]
    assert reading.perceived == ("cleared" if word == "clear" else word)
    assert not reading.unknown


@pytest.mark.parametrize(
    ("word", "perceived"),
    [
        ("Major", "major"),
        ("MINOR", "minor"),
        ("indeterminate", "indeterminate"),
        ("Cleared", "cleared"),
        ("clear", "cleared"),
        ("critical", None),  # a syslog word too: plain syslog outside traps
        ("Warning", None),
    ],
)
def test_x733_words_outside_traps(word: str, perceived: str | None) -> None:
    reading = read_severity(word)
    assert reading.severity == X733_TABLE[word.lower()]
    assert reading.perceived == perceived


def test_words_of_both_vocabularies_keep_one_level() -> None:
    for word, (level, _) in X733.items():
        if word in SEVERITY_ALIASES:
            assert SEVERITY_ALIASES[word] == level


@pytest.mark.parametrize(
    "value", [8, -1, True, False, 3.0, "8", "sev3", "loud", "Major!", [3], {"s": 3}, "x" * 40]
)
def test_what_cannot_be_read_is_unknown_not_an_error(value: object) -> None:
    assert read_severity(value) == Reading(None, None, True)
    assert read_severity(value, trap=True).unknown


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("Bogus", "Bogus"),
        ("a\x00b", "a\ufffdb"),
        ("\ud800x", "?x"),
        ("y" * 500, "y" * 128),
        (9, 9),
        (True, True),
        (2**70, "a number out of the 64-bit range"),
        (float("nan"), "nan"),
        (2.5, 2.5),
        ([1, 2], "a JSON array"),
        ({"a": 1}, "a JSON object"),
    ],
)
def test_the_raw_value_is_kept_storable(value: object, kept: object) -> None:
    assert raw_value(value) == kept


# --- properties -----------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(st.characters(exclude_categories=()), max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children),
    max_leaves=6,
)


@given(json_values, st.booleans())
def test_any_value_reads_without_raising_and_is_kept_storable(value: object, trap: bool) -> None:
    reading = read_severity(value, trap=trap)
    assert reading.severity is None or isinstance(reading.severity, Severity)
    if reading.unknown:
        assert reading.severity is None and reading.perceived is None
        kept = raw_value(value)
        if isinstance(kept, str):
            kept.encode("utf-8")  # no unpaired surrogate left
            assert "\x00" not in kept and len(kept) <= 128


known_words = st.sampled_from(sorted(set(SEVERITY_ALIASES) | set(X733)))


@given(
    known_words,
    st.lists(st.booleans(), min_size=1),
    st.sampled_from(["", " ", "\t"]),
    st.booleans(),
)
def test_known_words_read_in_any_case_and_padding(
    word: str, upper: list[bool], pad: str, trap: bool
) -> None:
    spelled = "".join(c.upper() if upper[i % len(upper)] else c for i, c in enumerate(word))
    assert read_severity(f"{pad}{spelled}{pad}", trap=trap) == read_severity(word, trap=trap)
    assert not read_severity(word, trap=trap).unknown


@given(st.integers(min_value=0, max_value=7), st.booleans())
def test_numbers_and_digit_strings_are_syslog_levels(level: int, trap: bool) -> None:
    assert read_severity(level, trap=trap) == Reading(Severity(level))
    assert read_severity(str(level), trap=trap) == Reading(Severity(level))


@given(st.text(max_size=32), st.booleans())
def test_a_word_is_known_exactly_when_it_is_in_a_vocabulary(text: str, trap: bool) -> None:
    word = text.strip().lower()
    known = word in SEVERITY_ALIASES or word in X733 or (len(word) == 1 and "0" <= word <= "7")
    assert read_severity(text, trap=trap).unknown is (not known and text != "")
