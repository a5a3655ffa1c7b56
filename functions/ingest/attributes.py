"""The sender's extra fields: kept, but as bounded, re-encodable JSON.

Attributes travel in every stream entry and audit row, so their depth, node
count and encoded size are capped, and every value must survive orjson and
PostgreSQL jsonb (64-bit integers, finite floats, no NUL, valid Unicode).
"""

from __future__ import annotations

import math

import orjson

from functions.ingest.errors import InputError, field_path, json_type
from functions.ingest.limits import (
    MAX_ATTRIBUTE_KEY_CHARS,
    MAX_ATTRIBUTES_BYTES,
    MAX_ATTRIBUTES_DEPTH,
    MAX_ATTRIBUTES_NODES,
)
from functions.ingest.normalize import check_string

_MIN_INT = -(2**63)
_MAX_INT = 2**64 - 1  # orjson's range


def check_attributes(attributes: dict[str, object], field: str = "attributes") -> dict[str, object]:
    """``attributes`` unchanged when within limits; ``InputError`` naming the bad path."""
    if not attributes:
        return attributes
    _Walker().mapping(attributes, field, 1)
    try:
        size = len(orjson.dumps(attributes))
    except orjson.JSONEncodeError as exc:  # unreachable after the walk; kept as a guard
        raise InputError(field, f"is not encodable as JSON: {exc}") from None
    if size > MAX_ATTRIBUTES_BYTES:
        raise InputError(
            field, f"encode to {size} bytes of JSON, the limit is {MAX_ATTRIBUTES_BYTES}"
        )
    return attributes


class _Walker:
    """One walk over a value tree, counting nodes against the budget."""

    __slots__ = ("nodes",)

    def __init__(self) -> None:
        self.nodes = 0

    def mapping(self, value: dict[str, object], path: str, depth: int) -> None:
        if depth > MAX_ATTRIBUTES_DEPTH:
            raise InputError(path, f"nests deeper than {MAX_ATTRIBUTES_DEPTH} levels")
        for key, item in value.items():
            if not isinstance(key, str):
                raise InputError(path, f"has a non-string key ({json_type(key)})")
            check_string(key, f"{path} key", MAX_ATTRIBUTE_KEY_CHARS)
            self.item(item, path, key, depth)

    def sequence(self, value: list[object], path: str, depth: int) -> None:
        if depth > MAX_ATTRIBUTES_DEPTH:
            raise InputError(path, f"nests deeper than {MAX_ATTRIBUTES_DEPTH} levels")
        for position, item in enumerate(value):
            self.item(item, path, position, depth)

    def item(self, value: object, parent: str, key: str | int, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_ATTRIBUTES_NODES:
            raise InputError(parent, f"hold more than {MAX_ATTRIBUTES_NODES} values")
        if value is None or isinstance(value, bool):
            return
        if isinstance(value, str):
            if "\x00" in value or not value.isascii():
                check_string(value, _path(parent, key), len(value))
        elif isinstance(value, int):
            if not _MIN_INT <= value <= _MAX_INT:
                raise InputError(_path(parent, key), "number is out of the 64-bit range")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise InputError(_path(parent, key), "number must be finite")
        elif isinstance(value, dict):
            self.mapping(value, _path(parent, key), depth + 1)
        elif isinstance(value, list):
            self.sequence(value, _path(parent, key), depth + 1)
        else:
            raise InputError(_path(parent, key), f"is not a JSON value ({json_type(value)})")


def _path(parent: str, key: str | int) -> str:
    return f"{parent}[{key}]" if isinstance(key, int) else field_path(parent, key)
