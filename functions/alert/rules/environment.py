"""Prod or dev: which handling column of a rule applies to a host.

v2.5 compared hostnames exactly and case-sensitively (docs/reference/mutt-v25.md §3,
item 8), so ``router1`` in the list did not make
``Router1.dc.example.com`` a dev host. Here names are compared lower-cased,
without a trailing dot, and a short name (first label) matches an FQDN in
either direction. Two different FQDNs never match each other, and IP
addresses only match exactly (their first "label" is not a name).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Literal

from shared.models import Handling

from .model import Rule

Environment = Literal["prod", "dev"]


def _normalize(hostname: str) -> str:
    return hostname.strip().lower().rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _short(name: str) -> str | None:
    """The first label of an FQDN; ``None`` for short names and IP addresses."""
    if "." not in name or _is_ip(name):
        return None
    return name.split(".", 1)[0]


class DevHosts:
    """The ``development_hosts`` list with the matching rules above; O(1) per lookup."""

    def __init__(self, hosts: Iterable[str] = ()) -> None:
        names = {_normalize(h) for h in hosts}
        names.discard("")
        self._names = frozenset(names)
        # Short entries match the first label of an event FQDN ...
        self._bare = frozenset(n for n in names if "." not in n)
        # ... and FQDN entries match an event's short name.
        self._firsts = frozenset(s for n in names if (s := _short(n)) is not None)

    def __len__(self) -> int:
        return len(self._names)

    def is_dev(self, hostname: str) -> bool:
        """True when ``hostname`` is listed, as itself or by short name/FQDN."""
        name = _normalize(hostname)
        if not name:
            return False
        if name in self._names:
            return True
        short = _short(name)
        if short is not None:
            return short in self._bare
        return "." not in name and name in self._firsts

    def environment(self, hostname: str) -> Environment:
        """``"dev"`` for listed hosts, ``"prod"`` for everything else."""
        return "dev" if self.is_dev(hostname) else "prod"

    def decide(self, rule: Rule, hostname: str) -> tuple[Environment, Handling]:
        """The environment and the rule's handling for it (team and matching do not change)."""
        environment = self.environment(hostname)
        handling = rule.dev_handling if environment == "dev" else rule.prod_handling
        return environment, handling
