"""The failed-authentication limiter and the client address it counts by."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from functions.ingest.auth_throttle import FailureLimiter
from functions.ingest.client_address import client_address, client_at_connect


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_window_opens_at_the_first_failure_and_ends_on_time() -> None:
    clock = Clock()
    limiter = FailureLimiter(limit=2, window_seconds=60, clock=clock)
    assert limiter.retry_after("a") is None
    limiter.failed("a")
    clock.now += 10
    limiter.failed("a")
    assert limiter.retry_after("a") == 50  # the window began at the first failure
    assert limiter.retry_after("b") is None
    clock.now += 49.5
    assert limiter.retry_after("a") == 1  # never 0: Retry-After 0 invites a busy loop
    clock.now += 0.6
    assert limiter.retry_after("a") is None  # a new window
    limiter.failed("a")
    assert limiter.retry_after("a") is None


def test_memory_is_bounded_whatever_the_number_of_addresses() -> None:
    clock = Clock()
    limiter = FailureLimiter(limit=1, window_seconds=60, max_clients=100, clock=clock)
    for i in range(5000):
        limiter.failed(f"198.51.{i // 256}.{i % 256}")
    assert len(limiter) == 100
    assert limiter.retry_after("198.51.19.135") == 60  # the most recent ones are kept
    clock.now += 61
    assert len(limiter) == 0  # and everything goes with its window


ADDRESSES = st.ip_addresses().map(str)
TRUSTED = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("10.0.0.0/8")]


@given(
    client=st.ip_addresses(v=4).filter(lambda ip: not ip.is_private).map(str),
    forged=st.lists(ADDRESSES, max_size=5),
    hops=st.lists(st.sampled_from(["10.1.2.3", "127.0.0.1", "10.200.0.9"]), max_size=4),
)
def test_the_client_is_the_last_address_before_the_trusted_proxies(
    client: str, forged: list[str], hops: list[str]
) -> None:
    header = ", ".join([*forged, client, *hops])
    assert client_address("127.0.0.1", header, TRUSTED) == client


@given(peer=ADDRESSES, header=st.text(max_size=200))
def test_without_trusted_proxies_the_header_is_ignored(peer: str, header: str) -> None:
    assert client_address(peer, header, []) == peer


@given(header=st.text(max_size=300))
def test_any_header_gives_a_short_address(header: str) -> None:
    address = client_address("127.0.0.1", header, TRUSTED)
    assert 0 < len(address) <= 64


def test_an_untrusted_peer_is_the_client_whatever_it_forwards() -> None:
    assert client_address("203.0.113.5", "198.51.100.1", TRUSTED) == "203.0.113.5"
    assert client_address(None, None, TRUSTED) == "unknown"
    assert client_address("127.0.0.1", "10.0.0.1, 10.0.0.2", TRUSTED) == "10.0.0.1"


@given(
    peer=st.one_of(ADDRESSES, st.sampled_from(["127.0.0.1", "10.9.8.7"])),
    header=st.one_of(st.none(), st.text(max_size=100)),
    trusted=st.sampled_from([[], TRUSTED]),
)
def test_a_connection_is_judged_at_accept_only_when_its_peer_is_the_client(
    peer: str, header: str | None, trusted: list[ipaddress.IPv4Network]
) -> None:
    """At accept there is no header yet: a connection is judged by its peer only
    where every request on it would be counted under that same peer."""
    judged = client_at_connect(peer, trusted)
    if judged is None:
        assert any(ipaddress.ip_address(peer) in net for net in trusted)  # a proxy of ours
    else:
        assert judged == client_address(peer, header, trusted)
