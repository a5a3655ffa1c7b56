"""One way to open Redis, with an operator-readable error when it is not there."""

from __future__ import annotations

import redis

from shared.errors import UnreachableError


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user + ':***' if ':' in creds else user}@{host}"


def connect_redis(url: str, *, check: bool = True, timeout: float = 5.0) -> redis.Redis:
    """A client for ``url`` (bytes in, bytes out); ``check`` pings it once.

    Raises ``UnreachableError`` naming the URL (password redacted) instead of
    letting a connection traceback reach the operator.
    """
    options: dict[str, object] = {"socket_connect_timeout": timeout, "health_check_interval": 30}
    if not url.startswith("unix://"):
        options["socket_keepalive"] = True
    client = redis.Redis.from_url(url, **options)
    if check:
        try:
            client.ping()
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise UnreachableError(f"cannot reach Redis at {redact(url)}: {exc}") from None
        except redis.AuthenticationError as exc:
            raise UnreachableError(
                f"Redis at {redact(url)} refused the credentials: {exc}"
            ) from None
    return client
