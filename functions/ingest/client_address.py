"""The address a request came from, through the proxies an operator trusts.

On Knative every request reaches the function from the queue-proxy on
127.0.0.1, so the TCP peer says nothing about the client. Proxies append the
address they received a request from to ``X-Forwarded-For``; anything left
of those entries was written by the client and may be forged. So: when the
peer is a trusted proxy, walk the header from the right, past the trusted
networks, and take the first address outside them. With no trusted networks
(the default) the TCP peer is the client, and the header is ignored.

A connection can be judged before a byte of it is read only when its peer is
the client: ``client_at_connect`` says who that is, or that only the request's
header will tell (the peer is a trusted proxy).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False  # not an address: never a proxy of ours
    return any(ip in net for net in networks)


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The client's address for per-client limits (a string, at most 64 characters)."""
    address = peer or "unknown"
    if not trusted or not forwarded_for or not _trusted(address, trusted):
        return address[:64]
    for raw in reversed(forwarded_for.split(",")):
        hop = raw.strip()
        if not hop:
            continue
        address = hop
        if not _trusted(hop, trusted):
            break
    return address[:64]


def client_at_connect(peer: str, trusted: Sequence[Network]) -> str | None:
    """The client of a connection from ``peer``, or ``None`` when the peer is a
    trusted proxy (the client is then in each request's X-Forwarded-For)."""
    if trusted and _trusted(peer, trusted):
        return None
    return peer[:64]
