"""Stream partitions: tags spread over the cluster's slots, and a stable placement of events."""

from __future__ import annotations

import itertools
import string
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from shared.broker.partitions import MAX_PARTITIONS, SLOTS, TAGS, partition_of

# The slot ranges `redis-cli --cluster create` gives three primaries.
THREE_PRIMARIES = ((0, 5460), (5461, 10922), (10923, 16383))


def _offsets(n: int) -> list[Fraction]:
    """0, 1/3, 2/3, then every gap halved in the order the points came."""
    seq = [Fraction(0), Fraction(1, 3), Fraction(2, 3)]
    step = Fraction(1, 3)
    while len(seq) < n:
        step /= 2
        seq += [x + step for x in list(seq)]
    return seq[:n]


def _search(k: int, target: int) -> str:
    """``p<k>.<suffix>`` with the shortest base-36 suffix whose slot is ``target``."""
    alphabet = string.digits + string.ascii_lowercase
    for length in itertools.count(1):
        for chars in itertools.product(alphabet, repeat=length):
            tag = f"p{k}.{''.join(chars)}"
            if key_slot(tag.encode()) == target:
                return tag
    raise AssertionError("unreachable")


def _slots(n: int) -> list[int]:
    return [key_slot(tag.encode()) for tag in TAGS[:n]]


def test_the_tags_are_what_the_search_finds() -> None:
    """The table in code is reproducible: each tag is the search's answer for its target."""
    start = key_slot(b"p")
    assert TAGS[0] == "p"
    assert len(set(TAGS)) == MAX_PARTITIONS == 96
    for k, offset in enumerate(_offsets(MAX_PARTITIONS)):
        target = (start + round(offset * SLOTS)) % SLOTS
        assert key_slot(TAGS[k].encode()) == target, k
        if k:
            assert TAGS[k] == _search(k, target), k


def test_three_times_a_power_of_two_partitions_are_evenly_spaced() -> None:
    for n in (3, 6, 12, 24, 48, 96):
        slots = sorted(_slots(n))
        gaps = [(b - a) % SLOTS for a, b in zip(slots, slots[1:] + slots[:1], strict=True)]
        assert max(gaps) - min(gaps) <= 1, (n, gaps)


def test_any_count_is_within_twice_the_even_gap() -> None:
    for n in range(2, MAX_PARTITIONS + 1):
        slots = sorted(_slots(n))
        gaps = [(b - a) % SLOTS for a, b in zip(slots, slots[1:] + slots[:1], strict=True)]
        assert max(gaps) <= 2 * SLOTS / n, (n, max(gaps))


def test_three_primaries_hold_partition_counts_within_one_of_each_other() -> None:
    for n in range(1, MAX_PARTITIONS + 1):
        held = [sum(lo <= s <= hi for s in _slots(n)) for lo, hi in THREE_PRIMARIES]
        assert max(held) - min(held) <= 1, (n, held)


def test_placement_is_stable_across_processes_and_versions() -> None:
    """CRC-32 of source and host: fixed values, not Python's per-process hash."""
    assert partition_of("/my/router", "core-rtr-01", 6) == 2
    assert partition_of("/my/router", "core-rtr-02", 6) == 0
    assert partition_of("/my/router", "core-rtr-01", 1) == 0


@given(st.text(max_size=64), st.text(max_size=64), st.integers(1, MAX_PARTITIONS))
def test_placement_is_in_range_and_deterministic(source: str, host: str, n: int) -> None:
    found = partition_of(source, host, n)
    assert 0 <= found < n
    assert partition_of(source, host, n) == found


def test_placement_spreads_many_hosts_evenly() -> None:
    counts = [0] * 6
    for n in range(6000):
        counts[partition_of("/syslog", f"host-{n}", 6)] += 1
    assert min(counts) > 800 and max(counts) < 1200, counts
