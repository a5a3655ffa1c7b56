"""One way to open Redis: clear errors, and passwords that rotate without a restart.

A password may come from the URL or from the secrets ``redis_password`` /
``redis_password_next`` (the CURRENT/NEXT pair of a rotation). New
connections authenticate with the current one; when Redis refuses it, the
client swaps to the other and drops its pooled connections, so a rotation
(set NEXT, change Redis, promote NEXT) never needs a restart.

``redis+cluster://host:port`` (``rediss+cluster://`` with TLS) names any node
of a Redis Cluster and gets redis-py's cluster client, which learns the
slot map, sends each command to the primary of its keys' slot and follows
``MOVED`` after a failover. It has the same command methods as a
``redis.Redis``, so the rest of MUTT is typed against that; what differs is
that a command, script or ``MULTI`` must keep its keys in one slot, which
``shared/broker/keys.py`` guarantees with hash tags. During a failover the
cluster client may give up with its own exceptions (a slot no primary
covers yet, no node reachable), which are not ``RedisError``s; MUTT's client
raises them as ``redis.ConnectionError``, so every caller's "Redis is down,
back off and retry" handling covers a failover too.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import redis
from redis.cluster import ClusterPipeline, RedisCluster
from redis.credentials import CredentialProvider
from redis.exceptions import CrossSlotTransactionError, InvalidPipelineStack, RedisClusterException

from shared.errors import UnreachableError


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user + ':***' if ':' in creds else user}@{host}"


class RotatingPassword(CredentialProvider):
    """Hands out the current password; ``swap()`` makes the other one current."""

    def __init__(self, username: str | None, passwords: list[str]) -> None:
        self.username = username
        self._passwords = [p for p in passwords if p]
        self._lock = threading.Lock()

    def get_credentials(self) -> tuple[str] | tuple[str, str]:
        with self._lock:
            password = self._passwords[0]
        return (self.username, password) if self.username else (password,)

    def swap(self) -> bool:
        """Try the next password; False when there is no other to try."""
        with self._lock:
            if len(self._passwords) < 2:
                return False
            self._passwords.append(self._passwords.pop(0))
            return True


CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


@contextlib.contextmanager
def _outage_as_connection_error() -> Iterator[None]:
    """The cluster client's "no node / no primary for the slot" as a ``ConnectionError``.

    A cross-slot transaction or a malformed pipeline is a bug, not an outage:
    those stay what they are.
    """
    try:
        yield
    except (CrossSlotTransactionError, InvalidPipelineStack):
        raise
    except RedisClusterException as exc:
        raise redis.ConnectionError(f"Redis Cluster: {exc}") from exc


class _Pipeline(ClusterPipeline):
    def execute(self, raise_on_error: bool = True) -> list[Any]:
        with _outage_as_connection_error():
            return list(super().execute(raise_on_error))


class _Cluster(RedisCluster):
    """redis-py's cluster client whose outage errors are ``redis.ConnectionError``s."""

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        with _outage_as_connection_error():
            return super().execute_command(*args, **kwargs)  # type: ignore[no-untyped-call]

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> ClusterPipeline:
        pipe: ClusterPipeline = super().pipeline(transaction, shard_hint)  # type: ignore[no-untyped-call]
        pipe.__class__ = _Pipeline  # the same object; only ``execute`` is wrapped
        return pipe


def cluster_url(url: str) -> str | None:
    """The plain ``redis://`` / ``rediss://`` URL of a ``redis+cluster://`` one, else None."""
    scheme, sep, rest = url.partition("://")
    plain = CLUSTER_SCHEMES.get(scheme.lower())
    return f"{plain}://{rest}" if sep and plain else None


def connect_redis(
    url: str, *, check: bool = True, timeout: float = 5.0, passwords: list[str] | None = None
) -> redis.Redis:
    """A client for ``url`` (bytes in, bytes out); ``check`` pings it once.

    Raises ``UnreachableError`` naming the URL (password redacted) instead of
    letting a connection traceback reach the operator.
    """
    options: dict[str, object] = {"socket_connect_timeout": timeout}
    if not url.startswith("unix://"):
        options["socket_keepalive"] = True
    if url.startswith("rediss://"):
        # Verify the certificate and the host name whatever redis-py's default
        # (False before 6.0); ?ssl_check_hostname=false in the URL still wins.
        options["ssl_cert_reqs"] = "required"
        options["ssl_check_hostname"] = True
    if passwords:
        parts = urlsplit(url)
        user = unquote(parts.username) if parts.username else None
        from_url = [unquote(parts.password)] if parts.password else []
        options["credential_provider"] = RotatingPassword(user, [*from_url, *passwords])
    plain = cluster_url(url)
    if plain is not None:
        return _connect_cluster(url, plain, options)
    client = redis.Redis.from_url(url, health_check_interval=30, **options)
    if check:
        ping(client, url)
    return client


def _connect_cluster(url: str, plain: str, options: dict[str, object]) -> redis.Redis:
    """The cluster client; it reads the slot map at once, so it is checked by then."""
    try:
        client = _Cluster.from_url(plain, **options)
    except redis.AuthenticationError as exc:
        raise UnreachableError(f"Redis at {redact(url)} refused the credentials: {exc}") from None
    except (RedisClusterException, redis.RedisError, OSError) as exc:
        raise UnreachableError(f"cannot reach a Redis Cluster at {redact(url)}: {exc}") from None
    # Same command methods as redis.Redis (see the module docstring).
    return cast(redis.Redis, client)


def is_cluster(client: object) -> bool:
    """Is ``client`` a Redis Cluster client (every key of one command in one slot)?"""
    return isinstance(client, RedisCluster)


def ping(client: redis.Redis, url: str) -> None:
    """PING, swapping to the other rotation password once if the first is refused."""
    for attempt in range(2):
        try:
            client.ping()
            return
        except redis.AuthenticationError as exc:
            if attempt == 0 and recover_auth(client):
                continue
            raise UnreachableError(
                f"Redis at {redact(url)} refused the credentials: {exc}"
            ) from None
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise UnreachableError(f"cannot reach Redis at {redact(url)}: {exc}") from None


def recover_auth(client: redis.Redis) -> bool:
    """After an authentication error: swap passwords and rebuild the pool(s); True if swapped."""
    if isinstance(client, RedisCluster):
        provider = client.nodes_manager.connection_kwargs.get("credential_provider")
        pools = [
            n.redis_connection.connection_pool for n in client.get_nodes() if n.redis_connection
        ]
    else:
        provider = client.connection_pool.connection_kwargs.get("credential_provider")
        pools = [client.connection_pool]
    if isinstance(provider, RotatingPassword) and provider.swap():
        for pool in pools:
            pool.disconnect()
        return True
    return False
