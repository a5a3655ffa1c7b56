"""Binary-mode CloudEvents without the SDK: the same attributes and data as ``from_http``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import redis
from cloudevents.http import from_http
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.ingest import app as ingest_app
from functions.ingest.binary_mode import BinaryModeError, parse_binary
from shared.broker.keys import Keys
from shared.envelope import FIELD, decode

SDK_ERRORS = ingest_app.SDK_ERRORS  # what ingest answers 400 to when from_http raises it

Result = tuple[dict[str, object], object]
STARTED = datetime.now(UTC)  # every time defaulted to "now" in these tests is after this


def sdk(headers: dict[str, str], body: bytes) -> Result | None:
    """What the SDK hands over, or None when it refuses the request."""
    try:
        ce = from_http(headers, body)
    except SDK_ERRORS:
        return None
    return dict(ce.get_attributes()), ce.data


def fast(headers: dict[str, str], body: bytes) -> Result | None:
    """parse_binary's result, None when it refuses; it must not delegate here."""
    try:
        result = parse_binary(headers, body)
    except BinaryModeError:
        return None
    assert result is not None, "delegated to the SDK"
    return result


def assert_same(headers: dict[str, str], got: Result | None, want: Result | None) -> None:
    if want is None or got is None:
        assert got is want, (got, want)
        return
    (attrs, data), (sdk_attrs, sdk_data) = got, want
    assert list(attrs) == list(sdk_attrs)  # same attributes, in the same order
    if "ce-time" not in headers:  # both default it to "now": compare the form, not the instant
        defaulted = [attrs.pop("time"), sdk_attrs.pop("time")]
        for value in defaulted:
            assert isinstance(value, str)
            assert datetime.fromisoformat(value).tzinfo == UTC
        stamps = [datetime.fromisoformat(str(v)) for v in defaulted]
        assert all(STARTED <= stamp <= datetime.now(UTC) for stamp in stamps)
    assert attrs == sdk_attrs
    # repr: also tells 1 from 1.0 and True, -0.0 from 0.0, bytes from str, and compares NaN
    assert repr(data) == repr(sdk_data)


# -- generated inputs ----------------------------------------------------------

header_text = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"),
    max_size=24,
)
ce_values = st.one_of(
    header_text, st.sampled_from(["", "%20a%2Fb", "/router", "2025-01-01T00:00:00Z"])
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "text/plain",
        "text/plain; charset=latin-1",
        "application/octet-stream",
        "application/xml",
        "",
    ]
)
extension_names = st.one_of(
    st.sampled_from(["ce-traceparent", "ce-partitionkey", "ce-", "ce-ce-x", "ce-data"]),
    st.from_regex(r"ce-[a-z0-9][a-z0-9-]{0,12}", fullmatch=True).filter(
        lambda name: name != "ce-extensions"
    ),
)
optional_context = st.sampled_from(
    ["ce-datacontenttype", "ce-dataschema", "ce-subject", "ce-time", "ce-schemaurl"]
)
other_headers = st.sampled_from(
    ["host", "user-agent", "content-length", "traceparent", "x-api-key", "x-correlation-id"]
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: beyond 64 bits too
    | st.floats()  # NaN and infinities: json.dumps writes them, json.loads reads them
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=15,
)
odd_bodies = st.sampled_from(
    [
        b"",
        b'""',
        b"   ",
        b"null",
        b"NaN",
        b'"\\ud800"',  # a lone surrogate, escaped
        b'"\xed\xa0\x80"',  # ... and UTF-8-encoded (json.loads decodes with surrogatepass)
        b'\xef\xbb\xbf{"a": 1}',  # a UTF-8 BOM
        '{"a": 1}'.encode("utf-16"),
        '{"a": 1}'.encode("utf-32-le"),
        b"1" * 5000,  # over Python's 4300-digit int limit: the SDK refuses it
        b"[" * 400 + b"]" * 400,
        b"[" * 1100 + b"]" * 1100,  # deeper than json.loads can go
        b"Hello, World!\n",
        b"<msg>Hello</msg>",
        b'{"a": 1} trailing',
        b"\xff\xfe\x00",
    ]
)
bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    json_values.map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
    st.dictionaries(st.text(max_size=8), json_values, max_size=6).map(
        lambda v: json.dumps(v).encode()
    ),
    st.text(max_size=60).map(str.encode),
    st.binary(max_size=80),
    odd_bodies,
)


@st.composite
def binary_headers(draw: st.DrawFn, *, anything: bool = False) -> dict[str, str]:
    """A binary-mode request's headers (lower-cased names, as _serve passes them), shuffled.

    With ``anything``, also what makes parse_binary leave the request to the SDK:
    a missing required header, another specversion, a structured content type,
    a ``ce-extensions`` header.
    """
    required = ["ce-specversion", "ce-id", "ce-source", "ce-type"]
    if anything:
        required = [name for name in required if draw(st.integers(0, 9))]
    pairs: dict[str, str] = {name: draw(ce_values) for name in required}
    if "ce-specversion" in pairs:
        versions = st.just("1.0")
        if anything:
            versions |= st.sampled_from(["0.3", "1.1", " 1.0", ""])
        pairs["ce-specversion"] = draw(versions)
    if draw(st.booleans()):
        types = content_types
        if anything:
            structured = ["application/cloudevents+json", "application/cloudevents+json; x=y"]
            types |= st.sampled_from(structured) | header_text
        pairs["content-type"] = draw(types)
    extra = st.one_of(optional_context, extension_names, other_headers)
    if anything:
        extra = st.one_of(extra, st.just("ce-extensions"))
    for name in draw(st.lists(extra, max_size=6, unique=True)):
        pairs.setdefault(name, draw(ce_values))
    if anything and "ce-extensions" in pairs and draw(st.booleans()):
        pairs["ce-extensions"] = ""
    order = draw(st.permutations(list(pairs)))
    return {name: pairs[name] for name in order}


PROPERTY = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(headers=binary_headers(), body=bodies)
def test_the_fast_path_gives_what_from_http_gives(headers: dict[str, str], body: bytes) -> None:
    """Every binary-mode 1.0 request with a body of under 500 brackets takes the fast path."""
    if body.count(b"[") + body.count(b"{") > 500:
        assert parse_binary(headers, body) is None
        return
    assert_same(headers, fast(headers, body), sdk(headers, body))


@PROPERTY
@given(headers=binary_headers(anything=True), body=bodies)
def test_what_the_fast_path_takes_it_reads_as_from_http_does(
    headers: dict[str, str], body: bytes
) -> None:
    """Any request: either left to the SDK, or the SDK's result; refused iff the SDK refuses."""
    try:
        result = parse_binary(headers, body)
    except BinaryModeError:
        assert sdk(headers, body) is None
        return
    if result is not None:
        assert_same(headers, result, sdk(headers, body))


# -- the cases, one by one -------------------------------------------------------

HEADERS = {
    "host": "ingest",
    "content-type": "application/json",
    "ce-specversion": "1.0",
    "ce-source": "/router",
    "ce-id": "42",
    "ce-type": "io.mutt.syslog.v1",
}


def test_attributes_in_the_sdks_order_with_extensions_last() -> None:
    headers = {"ce-zone": "b%20c", **HEADERS, "ce-time": "2025-01-01T00:00:00Z", "ce-data": "x"}
    attrs, data = fast(headers, b'{"hostname": "h"}') or ({}, None)
    assert list(attrs.items()) == [
        ("specversion", "1.0"),
        ("id", "42"),
        ("source", "/router"),
        ("type", "io.mutt.syslog.v1"),
        ("datacontenttype", "application/json"),
        ("time", "2025-01-01T00:00:00Z"),
        ("zone", "b%20c"),  # not percent-decoded, as the SDK does not decode it
    ]
    assert data == {"hostname": "h"}
    assert_same(headers, fast(headers, b'{"hostname": "h"}'), sdk(headers, b'{"hostname": "h"}'))


@pytest.mark.parametrize("last", ["content-type", "ce-datacontenttype"])
def test_the_later_of_content_type_and_ce_datacontenttype_wins(last: str) -> None:
    first = "ce-datacontenttype" if last == "content-type" else "content-type"
    headers = {k: v for k, v in HEADERS.items() if k != "content-type"}
    headers |= {first: "text/plain", last: "application/json"}
    attrs, _ = fast(headers, b"{}") or ({}, None)
    assert attrs["datacontenttype"] == "application/json"
    assert_same(headers, fast(headers, b"{}"), sdk(headers, b"{}"))


@pytest.mark.parametrize(
    ("body", "data"),
    [
        (b"", None),
        (b'""', None),  # the SDK turns an empty-string data into None too
        (b'"text"', "text"),
        (b"hello", b"hello"),  # not JSON: the bytes as they came
        (b"\xff\xfe\xfd", b"\xff\xfe\xfd"),
        (b"18446744073709551617", 18446744073709551617),  # exact, as json.loads gives it
        ('{"a": 1}'.encode("utf-16"), {"a": 1}),  # json.loads detects UTF-16
    ],
)
def test_data(body: bytes, data: object) -> None:
    assert (fast(HEADERS, body) or ({}, ...))[1] == data
    assert_same(HEADERS, fast(HEADERS, body), sdk(HEADERS, body))


def test_time_defaults_to_now_like_the_sdk() -> None:
    before = datetime.now(UTC)
    attrs, _ = fast(HEADERS, b"{}") or ({}, None)
    after = datetime.now(UTC)
    stamp = datetime.fromisoformat(str(attrs["time"]))
    assert before <= stamp <= after


@pytest.mark.parametrize(
    "change",
    [
        {"ce-id": None},  # not binary mode to the SDK: it reads the body as structured mode
        {"ce-type": None},
        {"content-type": "application/cloudevents+json"},  # the SDK reads the body then
        {"ce-specversion": "0.3"},
        {"ce-extensions": ""},  # the SDK replaces its extension map with it
    ],
)
def test_unusual_requests_are_left_to_the_sdk(change: dict[str, str | None]) -> None:
    headers = {**HEADERS, **change}
    headers = {k: v for k, v in headers.items() if v is not None}
    assert parse_binary(headers, b'{"a": 1}') is None


def test_deep_bodies_are_left_to_the_sdk() -> None:
    assert parse_binary(HEADERS, b"[" * 501 + b"]" * 501) is None
    assert parse_binary(HEADERS, b"[" * 500 + b"]" * 500) is not None


@pytest.mark.parametrize(
    ("change", "body", "message"),
    [
        ({"ce-specversion": "2.0"}, b"{}", "unsupported ce-specversion '2.0': use 1.0"),
        ({"ce-specversion": " 1.0"}, b"{}", "unsupported ce-specversion ' 1.0': use 1.0"),
        ({}, b"7" * 5000, "the body cannot be decoded: Exceeds the limit (4300 digits)"),
    ],
)
def test_refused_like_the_sdk_with_a_specific_error(
    change: dict[str, str], body: bytes, message: str
) -> None:
    headers = {**HEADERS, **change}
    with pytest.raises(BinaryModeError) as caught:
        parse_binary(headers, body)
    assert str(caught.value).startswith(message)
    assert sdk(headers, body) is None


# -- through HTTP ----------------------------------------------------------------


def stream(r: redis.Redis, keys: Keys) -> list[dict[str, Any]]:
    return [decode(f[FIELD]).data for _, f in r.xrange(keys.events)]


def post(client: FlaskClient, ce_id: str, ce_type: str, body: bytes, **extra: str) -> Any:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": ce_id,
        "ce-source": "//switch-07/port",
        "ce-type": ce_type,
        "content-type": "application/json",
        "x-correlation-id": "corr-1",
        **extra,
    }
    return client.post("/", data=body, headers=headers)


@pytest.mark.parametrize(
    ("ce_type", "body", "extra"),
    [
        (
            "io.mutt.syslog.v1",
            orjson.dumps({"hostname": "Core-01", "message": "LINK down", "severity": "err"}),
            {},
        ),
        (
            "com.example.port.flap",
            orjson.dumps({"host": "sw-7", "msg": "flap", "severity": 4, "n": [1.5, None]}),
            {"ce-subject": "Gi0/1", "ce-zone": "b", "ce-partitionkey": "p%20q"},
        ),
        ("com.example.text", b"plain text, not JSON", {"content-type": "text/plain"}),
    ],
)
def test_binary_mode_is_stored_as_the_sdk_path_stored_it(
    client: FlaskClient,
    r: redis.Redis,
    keys: Keys,
    monkeypatch: pytest.MonkeyPatch,
    ce_type: str,
    body: bytes,
    extra: dict[str, str],
) -> None:
    extra = {"ce-time": "2025-11-11T10:00:00Z", **extra}
    with monkeypatch.context() as m:
        m.setattr(ingest_app, "parse_binary", lambda headers, body: None)  # the SDK, as before
        assert post(client, "before", ce_type, body, **extra).status_code == 202

    def sdk_unused(*args: object) -> None:
        raise AssertionError("binary mode went through the SDK")

    monkeypatch.setattr(ingest_app, "from_http", sdk_unused)
    resp = post(client, "after", ce_type, body, **extra)
    assert resp.status_code == 202, resp.json
    before, after = stream(r, keys)
    for event in (before, after):
        assert event.pop("id") in ("before", "after")
        for name in ("event_id", "received_at"):  # the id's hash, and the clock
            event.pop(name)
    assert after == before


@pytest.mark.parametrize(
    ("headers", "body", "field", "error"),
    [
        (
            {"ce-specversion": "2.0"},
            b"{}",
            None,
            "not a valid CloudEvent: unsupported ce-specversion '2.0': use 1.0",
        ),
        (
            {},
            b'{"hostname": "h", "message": ' + b"9" * 5000 + b"}",
            None,
            "not a valid CloudEvent: the body cannot be decoded: Exceeds the limit",
        ),
        ({"ce-id": ""}, b'{"hostname": "h", "message": "m"}', "id", "is required"),
        ({"ce-source": ""}, b'{"hostname": "h", "message": "m"}', "source", "is required"),
        (
            {"content-type": "text/plain"},
            b"hostname=h message=m",
            "data",
            "must be a JSON object (datacontenttype",
        ),
        ({}, b"", "data", "must be a JSON object"),
    ],
)
def test_malformed_binary_mode_gets_a_specific_400(
    client: FlaskClient,
    r: redis.Redis,
    keys: Keys,
    headers: dict[str, str],
    body: bytes,
    field: str | None,
    error: str,
) -> None:
    resp = post(client, "bad", "io.mutt.syslog.v1", body, **headers)
    assert resp.status_code == 400, resp.json
    assert resp.json["error"].startswith(error)
    assert resp.json.get("field") == field
    assert stream(r, keys) == []
