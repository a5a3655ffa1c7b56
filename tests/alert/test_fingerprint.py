"""Unhandled-event fingerprints.

v2.5 counted exact texts, which never aggregated (docs/reference/mutt-v25.md §3, item 10).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.alert.rules import fingerprint, mask_message


@pytest.mark.parametrize(
    ("message", "masked"),
    [
        ("port 1 down", "port <n> down"),
        (
            "Interface GigabitEthernet0/0/1, changed state to down",
            "Interface <iface>, changed state to down",
        ),
        ("Gi1/0/24 up", "<iface> up"),
        ("xe-0/0/1.100 and ae1 flapped", "<iface> and <iface> flapped"),
        ("%LINK-3-UPDOWN: Interface Vlan100", "%LINK-<n>-UPDOWN: Interface <iface>"),
        ("login from 10.1.2.3 to 192.168.0.1/24.", "login from <ip> to <ip>."),
        ("peer fe80::1%eth0 and 2001:db8::1/64", "peer <ip> and <ip>"),
        ("mapped ::ffff:10.0.0.1 seen", "mapped <ip> seen"),
        ("at 12:03:44 seq=1234", "at <n>:<n>:<n> seq=<n>"),
        ("mac 00:1a:2b:3c:4d:5e or 001a.2b3c.4d5e", "mac <mac> or <mac>"),
        ("session 3fa9c2d1 id 0xDEADbeef", "session <hex> id <hex>"),
        ("uuid 123e4567-e89b-12d3-a456-426614174000", "uuid <id>"),
        ("took 1234ms", "took <n>ms"),
        ("ERR42 on router12 stays", "ERR42 on router12 stays"),  # names keep their digits
        ("cafe dead beef", "cafe dead beef"),  # words that happen to be hex stay
        ("std::string is not an address", "std::string is not an address"),
    ],
)
def test_mask_message(message: str, masked: str) -> None:
    assert mask_message(message) == masked


# Each whitespace-separated token that holds a digit (any Unicode digit), masked on its own.
_DIGIT_TOKEN = re.compile(r"(?<!\S)(?=\S*\d)\S+")
_TOKENS = st.text(alphabet="ab:./-_%0123456789x\u0663\u00e9", min_size=1, max_size=12)


@given(st.lists(st.tuples(_TOKENS, st.sampled_from([" ", "  ", "\t", "\n"])), max_size=12))
def test_masking_only_touches_tokens_with_a_digit(parts: list[tuple[str, str]]) -> None:
    message = "".join(token + space for token, space in parts)
    expected = _DIGIT_TOKEN.sub(lambda t: mask_message(t.group()), message)
    assert mask_message(message) == expected
    if not any(ch.isdigit() for ch in message):
        assert mask_message(message) == message


def test_masked_groups_variants_exact_does_not() -> None:
    a = fingerprint("r1", "port 1 down on 10.0.0.1")
    b = fingerprint("r1", "port 2 down on 10.0.0.2")
    assert a == b
    assert fingerprint("r1", "port 1 down", "exact") != fingerprint("r1", "port 2 down", "exact")


def test_fingerprint_is_per_host_and_mode() -> None:
    assert fingerprint("r1", "port 1 down") != fingerprint("r2", "port 1 down")
    assert fingerprint("R1 ", "x") == fingerprint("r1", "x")
    assert fingerprint("r1", "x", "exact") != fingerprint("r1", "x", "masked")
    assert len(fingerprint("r1", "x")) == 40
    with pytest.raises(ValueError, match="unknown fingerprint mode"):
        fingerprint("r1", "x", "fuzzy")  # type: ignore[arg-type]


# Inputs that would make a backtracking pattern run for ages: a catastrophic case never
# finishes, so the timeout only stops a hung test; the answers are what is checked.
@pytest.mark.timeout(60)
def test_lone_surrogate_and_huge_messages_are_safe() -> None:
    assert len(fingerprint("r1", "bad \ud800 text")) == 40
    assert mask_message("a1" * 32768) == "<hex>"  # one 64 KiB token, past the token cache
    assert mask_message("a" * 65536) == "a" * 65536  # no digit: left alone
    assert mask_message(":" * 65536 + "1") == ":" * 65536 + "<n>"  # not an IPv6 address
