"""Binary-mode CloudEvents without the SDK: ``ce-*`` headers + body -> (attributes, data).

Why: binary mode is how nearly every single event arrives (Knative brokers and
most senders use it), and the cloudevents SDK's ``from_http`` spent ~40 us on
each, mostly building throw-away marshaller and event objects. This does the
same in about a quarter of that, and hands over exactly what
``dict(from_http(headers, body).get_attributes())`` and ``.data`` would
(cloudevents 1.12; ``tests/ingest/test_binary_mode.py`` checks it
property-based). Validation stays where it was: the caller checks the
envelope and the data, as it does for the SDK's result.

Where the SDK does something unusual, ``parse_binary`` returns ``None`` and
the caller asks the SDK: the request is not binary mode to the SDK (one of
the four required ``ce-*`` headers missing, or a structured content type),
``ce-specversion: 0.3``, a ``ce-extensions`` header, or a body with more than
``_MAX_BRACKETS`` brackets (nesting near the recursion limit).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

SPECVERSION = "1.0"

# The SDK's CloudEvents 1.0 context attributes, in the order from_http returns them;
# any other ce-* header is an extension, returned after these in header order.
_CONTEXT = (
    "specversion",
    "id",
    "source",
    "type",
    "datacontenttype",
    "dataschema",
    "subject",
    "time",
)
# Without all four the SDK reads the request as structured mode.
_REQUIRED = frozenset({"ce-specversion", "ce-id", "ce-source", "ce-type"})
_STRUCTURED = "application/cloudevents+json"
# json.loads recurses once per nesting level and shares Python's recursion limit
# (1000): the SDK, a few frames deeper, may then fail where this would not. A body
# with at most this many '[' and '{' is far from that limit.
_MAX_BRACKETS = 500


class BinaryModeError(ValueError):
    """A binary-mode CloudEvent the SDK would refuse too (the caller answers 400)."""


def parse_binary(headers: dict[str, str], body: bytes) -> tuple[dict[str, object], object] | None:
    """The attributes and data of a binary-mode CloudEvent, or ``None``: ask the SDK.

    ``headers`` must have lower-cased names (as the SDK lower-cases them).
    Header values are taken as they are: the SDK does not percent-decode them.
    ``content-type`` becomes ``datacontenttype``; ``time`` gets the SDK's
    default (now, UTC) when absent. The data is the body parsed as JSON when it
    parses, else the body's bytes; an empty body (or the JSON ``""``) is ``None``.
    """
    if not headers.keys() >= _REQUIRED:
        return None
    if headers.get("content-type", "").startswith(_STRUCTURED):
        return None
    version = headers["ce-specversion"]
    if version != SPECVERSION:
        if version == "0.3":
            return None
        raise BinaryModeError(f"unsupported ce-specversion {version[:20]!r}: use {SPECVERSION}")
    if body.count(b"[") + body.count(b"{") > _MAX_BRACKETS:
        return None
    context: dict[str, str] = {}
    extensions: dict[str, object] = {}
    for name, value in headers.items():
        if name == "content-type":
            context["datacontenttype"] = value  # a later ce-datacontenttype wins, and vice versa
        elif name.startswith("ce-"):
            key = name[3:]
            if key in _CONTEXT:
                context[key] = value
            elif key == "extensions":  # the SDK overwrites its own extension map with it
                return None
            elif key != "data":  # ce-data is overwritten by the body
                extensions[key] = value
    attributes: dict[str, object] = {key: context[key] for key in _CONTEXT if key in context}
    attributes.update(extensions)
    if "time" not in attributes:
        attributes["time"] = datetime.now(UTC).isoformat()
    return attributes, _data(body)


def _data(body: bytes) -> object:
    # json.loads, not orjson: on the same bytes it is the SDK's parser, so the data
    # is the same (orjson turns integers beyond 64 bits into floats, refuses NaN,
    # a UTF-8 BOM, UTF-16 and lone surrogates, all of which json.loads accepts).
    if not body:
        return None
    try:
        data: object = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return body
    except (ValueError, RecursionError) as exc:  # e.g. an integer of over 4300 digits
        raise BinaryModeError(f"the body cannot be decoded: {exc}") from None
    return None if data == "" else data
