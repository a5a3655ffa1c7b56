"""Per-field rules shared by every inbound format: hostname, message, text, identity.

Each function takes a decoded JSON value and the field name to blame, returns
the normalized value, and raises ``InputError`` for anything else. Strings are
also checked for what breaks later hops: NUL (PostgreSQL text and jsonb refuse
it) and unpaired surrogates (UTF-8 encoders, orjson included, refuse them).
"""

from __future__ import annotations

from functools import lru_cache

from functions.ingest.errors import InputError, json_type, preview
from functions.ingest.limits import (
    MAX_HOSTNAME_CHARS,
    MAX_ID_CHARS,
    MAX_MESSAGE_BYTES,
    MAX_SOURCE_CHARS,
)


def normalize_hostname(value: object, field: str = "hostname") -> str:
    """Trimmed, lower-cased, without a trailing root dot; 1-255 printable chars."""
    if not isinstance(value, str):
        raise InputError(field, f"must be a string, not {json_type(value)}")
    if len(value) > _MAX_CACHED_HOSTNAME:
        return _hostname(value, field)
    return _cached_hostname(value, field)


_MAX_CACHED_HOSTNAME = MAX_HOSTNAME_CHARS + 16  # longer ones fail (or are rare): not cached


def _hostname(value: str, field: str) -> str:
    host = value.strip()
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise InputError(field, "must not be empty")
    if len(host) <= MAX_HOSTNAME_CHARS:
        host = host.lower()  # lower() may lengthen some non-ASCII letters: re-checked
    if len(host) > MAX_HOSTNAME_CHARS:
        raise InputError(field, f"is longer than {MAX_HOSTNAME_CHARS} characters")
    # isprintable() is False for control chars, surrogates and all whitespace but ' '.
    if not host.isprintable() or " " in host:
        raise InputError(
            field, f"must not contain whitespace or control characters: {preview(host)}"
        )
    return host


# Hosts repeat: the same few thousand send most events. Errors are not cached.
_cached_hostname = lru_cache(maxsize=8192)(_hostname)


def check_message(value: object, field: str = "message", *, required: bool = True) -> str:
    """The message unchanged; required ones must have a non-blank character."""
    if value is None:
        if required:
            raise InputError(field, "is required")
        return ""
    if not isinstance(value, str):
        raise InputError(field, f"must be a string, not {json_type(value)}")
    if required and (not value or value.isspace()):
        raise InputError(field, "must not be empty")
    size = len(value) if value.isascii() else _utf8_size(value, field)
    if size > MAX_MESSAGE_BYTES:
        raise InputError(field, f"is {size} bytes, the limit is {MAX_MESSAGE_BYTES}")
    if "\x00" in value:
        raise InputError(field, "must not contain NUL characters")
    return value


def check_text(value: object, field: str, max_chars: int) -> str | None:
    """An optional short string (``source_type``, ``correlation_id``...); "" → ``None``."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InputError(field, f"must be a string, not {json_type(value)}")
    return check_string(value, field, max_chars)


def check_string(value: str, field: str, max_chars: int) -> str:
    """A string that must fit ``max_chars`` and be storable (no NUL, valid Unicode)."""
    if len(value) > max_chars:
        raise InputError(field, f"is longer than {max_chars} characters")
    if "\x00" in value:
        raise InputError(field, "must not contain NUL characters")
    if not value.isascii():
        _utf8_size(value, field)
    return value


def check_identity(source: object, event_id: object) -> tuple[str, str]:
    """The inbound ``source`` and ``id``: non-empty strings of at most 1024 chars."""
    return (
        _required_string(source, "source", MAX_SOURCE_CHARS),
        _required_string(event_id, "id", MAX_ID_CHARS),
    )


def _required_string(value: object, field: str, max_chars: int) -> str:
    if not isinstance(value, str):
        raise InputError(field, f"must be a string, not {json_type(value)}")
    if not value:
        raise InputError(field, "must not be empty")
    return check_string(value, field, max_chars)


def _utf8_size(value: str, field: str) -> int:
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InputError(field, "is not valid Unicode (unpaired surrogate)") from None
