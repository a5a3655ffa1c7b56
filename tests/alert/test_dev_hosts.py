"""Dev/prod decision: case-insensitive, short name <-> FQDN.

v2.5 compared host names exactly (docs/reference/mutt-v25.md §3, item 8).
"""

from __future__ import annotations

import pytest

from functions.alert.rules import DevHosts
from shared.models import Handling
from tests.support.rules import rule

HOSTS = DevHosts(["router1", "Switch9.Lab.Example.com.", "10.0.0.5", "", "  "])


@pytest.mark.parametrize(
    ("hostname", "dev"),
    [
        ("router1", True),
        ("ROUTER1", True),
        ("router1.dc.example.com", True),  # short entry matches the FQDN's first label
        ("Router1.DC.example.com.", True),
        ("router10.dc.example.com", False),
        ("xrouter1", False),
        ("switch9.lab.example.com", True),  # exact FQDN, case and trailing dot ignored
        ("switch9", True),  # FQDN entry matches the short name
        ("switch9.other.example.com", False),  # two different FQDNs never match
        ("10.0.0.5", True),
        ("10", False),  # an IP address has no "short name"
        ("10.0.0.50", False),
        ("", False),
    ],
)
def test_is_dev(hostname: str, dev: bool) -> None:
    assert HOSTS.is_dev(hostname) is dev
    assert HOSTS.environment(hostname) == ("dev" if dev else "prod")


def test_blank_entries_are_dropped() -> None:
    assert len(HOSTS) == 3


def test_decide_picks_the_handling_column() -> None:
    r = rule(1, prod_handling="Page_and_ticket", dev_handling="Ticket_only")
    assert HOSTS.decide(r, "router1.dc.example.com") == ("dev", Handling.TICKET_ONLY)
    assert HOSTS.decide(r, "core7") == ("prod", Handling.PAGE_AND_TICKET)
    assert DevHosts().decide(r, "router1") == ("prod", Handling.PAGE_AND_TICKET)
