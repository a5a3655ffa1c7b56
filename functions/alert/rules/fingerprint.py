"""Fingerprints that group unhandled events for the unhandled counter.

v2.5 counted per (host, exact message), so ``port 1 down`` and
``port 2 down`` never added up (docs/reference/mutt-v25.md §3, item 10). The
``masked`` mode replaces the variable parts (numbers, IPv4/IPv6 and MAC
addresses, UUIDs, hex ids, interface names) by placeholders first, so one
noisy message template counts as one. ``exact`` keeps the v2.5 behaviour.
Pure functions only; the Redis counting lives elsewhere.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from functools import lru_cache
from typing import Literal

FingerprintMode = Literal["exact", "masked"]

_HEX = r"[0-9a-f]"
_IFACE_NAMES = (
    r"(?:hundred|forty|twentyfive|ten|two|five)?gig(?:abit)?e(?:thernet)?"
    r"|fastethernet|ethernet|port-channel|vlan|loopback|tunnel|serial|management|mgmt"
    r"|bundle-ether|gi|te|fa|fo|hu|eth|et|po|lo|tu|se|vl|ge-|xe-|et-|ae|irb|em|fxp"
    r"|bond|ens|eno|enp|eth"
)
_MASK = re.compile(
    rf"""
    (?P<id>(?<![\w-]){_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}(?![\w-]))
    |(?P<mac>(?<![\w:.-])(?:{_HEX}{{2}}(?:[:-]{_HEX}{{2}}){{5}}|{_HEX}{{4}}\.{_HEX}{{4}}\.{_HEX}{{4}})
        (?![\w:.-]))
    |(?P<ip6>(?<![\w:.])(?:{_HEX}{{0,4}}:){{2,7}}(?:\d{{1,3}}(?:\.\d{{1,3}}){{3}}|{_HEX}{{1,4}})?
        (?:%[\w.]+)?(?:/\d{{1,3}})?(?![\w:]|\.\d))
    |(?P<ip4>(?<![\w.])\d{{1,3}}(?:\.\d{{1,3}}){{3}}(?:/\d{{1,2}})?(?!\w|\.\d))
    |(?P<iface>(?<![\w-])(?:(?:{_IFACE_NAMES})\d+(?:[/:.]\d+)*
        |[a-z][\w-]*?\d+(?:/\d+)+(?:[.:]\d+)?)(?![\w/]))
    |(?P<hex>(?<![\w-])(?:0x{_HEX}+|(?=[a-f]*\d)(?={_HEX}*[a-f]){_HEX}{{6,}})(?![\w-]))
    |(?P<n>(?<!\w)\d+)
    """,
    re.IGNORECASE | re.VERBOSE,
)
_NUMBER = re.compile(r"(?<!\w)\d+")
# Only whitespace-separated tokens with a digit can hold a variable part; skipping
# the others in C keeps masking near 10 µs for a 240-byte line. Possessive, so a
# token is read once (a lookahead for the digit read each token twice: -30%).
_TOKEN_WITH_DIGIT = re.compile(r"(?<!\S)[^\s\d]*+\d\S*")
_ASCII_DIGITS = "0123456789"


def _placeholder(match: re.Match[str]) -> str:
    kind = match.lastgroup or "n"
    if kind == "ip6":
        text = match.group()
        address = text.split("/", 1)[0].split("%", 1)[0]
        try:
            ipaddress.IPv6Address(address)
        except ValueError:  # a time like 12:03:44, not an address
            return _NUMBER.sub("<n>", text)
        return "<ip>"
    if kind == "ip4":
        return "<ip>"
    return f"<{kind}>"


@lru_cache(maxsize=8192)
def _mask_text(token: str) -> str:
    """Tokens repeat a lot in device logs (interface names, ports): cache them."""
    return _MASK.sub(_placeholder, token)


def _mask_token(match: re.Match[str]) -> str:
    token = match.group()
    if token.isdigit():
        return "<n>"
    return _mask_text(token) if len(token) <= 64 else _MASK.sub(_placeholder, token)


def mask_message(message: str) -> str:
    """The message with its variable parts replaced (``port <n> down``)."""
    if message.isascii() and not any(d in message for d in _ASCII_DIGITS):
        return message  # no digit, nothing variable: ten memchr scans, not a regex pass
    return _TOKEN_WITH_DIGIT.sub(_mask_token, message)


_IDENTIFIER_KINDS = frozenset({"id", "mac", "ip4", "iface"})


def identifiers(message: str) -> list[str]:
    """The stable identifiers masking hides (interfaces, addresses, UUIDs), lower-cased, in order.

    Numbers and hex ids are left out: they are usually counters or times that
    differ between a problem message and its clear (the pairing key of
    ``functions.alert.correlation`` is built from what is left).
    """
    found: list[str] = []
    for token in _TOKEN_WITH_DIGIT.finditer(message):
        for match in _MASK.finditer(token.group()):
            kind = match.lastgroup
            if kind in _IDENTIFIER_KINDS or (kind == "ip6" and _placeholder(match) == "<ip>"):
                found.append(match.group().lower())
    return found


def fingerprint(hostname: str, message: str, mode: FingerprintMode = "masked") -> str:
    """sha1 hex of (mode, host, message or masked message): one counter per template."""
    if mode == "exact":
        text = message
    elif mode == "masked":
        text = mask_message(message)
    else:
        raise ValueError(f"unknown fingerprint mode {mode!r}: use 'exact' or 'masked'")
    host = hostname.strip().lower()
    payload = f"{mode}\n{host}\n{text}".encode("utf-8", "surrogatepass")
    return hashlib.sha1(payload, usedforsecurity=False).hexdigest()
