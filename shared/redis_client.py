"""One way to open Redis: clear errors, and passwords that rotate without a restart.

A password may come from the URL or from the secrets ``redis_password`` /
``redis_password_next`` (the CURRENT/NEXT pair of a rotation). New
connections authenticate with the current one; when Redis refuses it, the
client swaps to the other and drops its pooled connections, so a rotation
(set NEXT, change Redis, promote NEXT) never needs a restart.
"""

from __future__ import annotations

import threading
from urllib.parse import unquote, urlsplit

import redis
from redis.cluster import RedisCluster
from redis.credentials import CredentialProvider

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


def connect_redis(
    url: str, *, check: bool = True, timeout: float = 5.0, passwords: list[str] | None = None
) -> redis.Redis:
    """A client for ``url`` (bytes in, bytes out); ``check`` pings it once.

    Raises ``UnreachableError`` naming the URL (password redacted) instead of
    letting a connection traceback reach the operator.
    """
    options: dict[str, object] = {"socket_connect_timeout": timeout, "health_check_interval": 30}
    if not url.startswith("unix://"):
        options["socket_keepalive"] = True
    if passwords:
        parts = urlsplit(url)
        user = unquote(parts.username) if parts.username else None
        from_url = [unquote(parts.password)] if parts.password else []
        options["credential_provider"] = RotatingPassword(user, [*from_url, *passwords])
    client = redis.Redis.from_url(url, **options)
    if check:
        ping(client, url)
    return client


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
    """After an authentication error: swap passwords and rebuild the pool; True if swapped."""
    provider = client.connection_pool.connection_kwargs.get("credential_provider")
    if isinstance(provider, RotatingPassword) and provider.swap():
        client.connection_pool.disconnect()
        return True
    return False
