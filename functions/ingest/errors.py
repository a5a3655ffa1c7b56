"""The one exception the ingest parsers raise.

Callers (the HTTP layer) catch only ``InputError`` and answer ``400`` with
``to_dict()``: any other exception escaping a parser is a bug, because a bad
body must never turn into a ``500`` that a sender would retry forever.
"""

from __future__ import annotations

_PREVIEW_CHARS = 64


class InputError(Exception):
    """Invalid input: which field, what is wrong, and which batch item.

    ``index`` is the position of the offending item in a batch (legacy array,
    Alertmanager ``alerts``); ``None`` for a single event or a body-level error.
    """

    def __init__(self, field: str, problem: str, index: int | None = None) -> None:
        super().__init__(field, problem, index)
        self.field = field
        self.problem = problem
        self.index = index

    def __str__(self) -> str:
        where = "" if self.index is None else f" (item {self.index})"
        return f"{self.field}: {self.problem}{where}"

    def to_dict(self) -> dict[str, str | int | None]:
        """The JSON body of the ``400`` answer."""
        return {"field": self.field, "error": self.problem, "index": self.index}


def preview(value: object) -> str:
    """A short, escaped rendering of a bad value, safe to echo in an error."""
    if isinstance(value, str):
        text = value if len(value) <= _PREVIEW_CHARS else value[:_PREVIEW_CHARS] + "..."
        return repr(text)
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return "a number too large to show"  # repr() of a huge int can itself raise
    if isinstance(value, bool | int | float) or value is None:
        text = repr(value)
        return text if len(text) <= _PREVIEW_CHARS else text[:_PREVIEW_CHARS] + "..."
    return f"a JSON {json_type(value)}"


def field_path(parent: str, key: str) -> str:
    """``parent.key`` for an error's field, with a sender's odd key escaped.

    The path is echoed in a JSON answer, so a key with control characters or
    surrogates (which would make that answer unencodable) is shown as a repr.
    """
    if len(key) <= _PREVIEW_CHARS and key.isprintable():
        return f"{parent}.{key}"
    return f"{parent}.{preview(key)}"


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
