"""Writes confirmed on replicas before they are acknowledged: ``WAIT`` after the scripts.

Redis replicates asynchronously: a primary answers a write before its
replicas have it. If the primary dies then (a machine crash, or a replica
that had fallen behind), the replica promoted in its place never saw the
write: an event ingest acknowledged is gone. ``WAIT n timeout`` blocks the
client until ``n`` replicas have every write it made on that connection,
so sending the scripts and ``WAIT`` down one connection, and acknowledging
only when ``WAIT`` counts enough replicas, closes that window (for the
primary's own replicas, which are the ones a failover promotes).

``WAIT`` covers the writes of its own connection, so on a Redis Cluster the
calls are grouped by the node of their keys' slot and each group goes down
one connection of that node's client. ``EVAL`` (the script's text) is sent
instead of ``EVALSHA``: a ``NOSCRIPT`` retry would use another connection.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import redis
from redis.cluster import RedisCluster

from shared.lua import Call, run_all


class NotReplicated(redis.ConnectionError):
    """Fewer replicas than asked for confirmed the writes in time: do not acknowledge them."""


def run_replicated(
    r: redis.Redis, calls: Sequence[Call], replicas: int, timeout_ms: int
) -> list[Any]:
    """``run_all``, then ``WAIT replicas timeout_ms`` on each connection that wrote.

    ``replicas`` 0 is plain ``run_all``. Raises ``NotReplicated`` (a
    ``redis.ConnectionError``: callers treat it as Redis being unavailable)
    when a node's ``WAIT`` counts fewer; the writes are then on the primary
    only, and a retry finds them (ingest: dedup marks, not published twice).
    """
    if replicas <= 0:
        return run_all(r, calls)
    replies: list[Any] = [None] * len(calls)
    for client, members in _by_node(r, calls):
        pipe = client.pipeline(transaction=False)
        for n in members:
            script, keys, args = calls[n]
            pipe.eval(script.source, len(keys), *keys, *args)
        pipe.wait(replicas, timeout_ms)
        try:
            out = pipe.execute()
        except redis.ResponseError as exc:  # MOVED, CLUSTERDOWN: a failover under way
            _refresh(r)
            raise redis.ConnectionError(f"not written: {exc}") from exc
        except redis.ConnectionError:
            _refresh(r)
            raise
        acked = int(out[-1])
        if acked < replicas:
            raise NotReplicated(
                f"{acked} of {replicas} replicas confirmed the write within {timeout_ms} ms"
            )
        for n, reply in zip(members, out[:-1], strict=True):
            replies[n] = reply
    return replies


def _by_node(r: redis.Redis, calls: Sequence[Call]) -> list[tuple[redis.Redis, list[int]]]:
    """The calls of each node, with a client of that node (one Redis: all of them, ``r``)."""
    if not isinstance(r, RedisCluster):
        return [(r, list(range(len(calls))))]
    groups: dict[str, tuple[redis.Redis, list[int]]] = {}
    for n, call in enumerate(calls):
        node = r.get_node_from_key(call.keys[0])
        client = r.get_redis_connection(node)
        groups.setdefault(node.name, (client, []))[1].append(n)
    return list(groups.values())


def _refresh(r: redis.Redis) -> None:
    """After a failover the slot map is stale: read it again (best effort)."""
    if isinstance(r, RedisCluster):
        with contextlib.suppress(Exception):
            r.nodes_manager.initialize()
