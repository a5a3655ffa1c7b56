"""Random JSON at every parser: an ``Event`` or an ``InputError``, never anything else.

Every event produced must also survive what later hops do with it: pydantic
re-validation of its dump and orjson encoding. Every error must be encodable
as the JSON body of a 400.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.ingest.alertmanager import parse_alertmanager
from functions.ingest.attributes import check_attributes
from functions.ingest.cloudevent_data import parse_cloudevent_data
from functions.ingest.errors import InputError
from functions.ingest.legacy import legacy_items, parse_legacy, parse_legacy_partial
from functions.ingest.normalize import check_message, normalize_hostname
from functions.ingest.oids import normalize_oid
from functions.ingest.severity import read_severity
from functions.ingest.timeparse import parse_time
from functions.ingest.varbinds import parse_varbinds
from shared.models import TYPE_GENERIC, TYPE_SYSLOG, TYPE_TRAP, Event

RECEIVED = datetime(2025, 1, 20, 12, 0, 0, tzinfo=UTC)
# MUTT_FUZZ_EXAMPLES=5000 for a deeper run; the default keeps the suite fast.
FUZZ = settings(
    max_examples=int(os.environ.get("MUTT_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Text with everything json.loads can produce: control characters, NUL, lone surrogates.
text = st.text(st.characters(exclude_categories=()), max_size=30)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | text
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)

# Values that are nearly right, so the fuzzing also reaches the deeper rules.
hostnames = st.sampled_from(["host-1", " Host.Example.COM. ", "", "a b", "h" * 256, "\x00"])
times = (
    st.sampled_from(
        [
            "2025-01-15T14:30:22Z",
            "2025-11-11T10:00:00.1234567Z",
            "Jan 15 14:30:22",
            "bad",
            "",
            "0001-01-01T00:00:00+01:00",
        ]
    )
    | st.integers()
    | st.floats()
)
severities = st.sampled_from(["Warning", "err", "8", 3, 9, "", None, True])
oids = st.sampled_from(
    [".1.3.6.1.4.1.9", "1.3.06", "IF-MIB::linkDown", "x::y", "1..2", "", "iso.3.6"]
)
varbind = st.fixed_dictionaries(
    {"oid": oids | json_values}, optional={"type": json_values, "value": json_values}
)
legacy_object = st.fixed_dictionaries(
    {},
    optional={
        "hostname": hostnames | json_values,
        "timestamp": times | json_values,
        "time": times,
        "message": st.sampled_from(["link down", "", " "]) | json_values,
        "syslog_severity": severities | json_values,
        "severity": severities,
        "trap_oid": oids | json_values,
        "varbinds": st.lists(varbind, max_size=3) | json_values,
        "source_type": st.sampled_from(["cisco-ios", ""]) | json_values,
        "_correlation_id": text,
        "facility": json_values,
        "source_ip": st.sampled_from(["10.0.0.1", ""]) | json_values,
    },
)
string_maps = st.dictionaries(
    text | st.sampled_from(["instance", "host", "severity"]), text | json_values, max_size=4
)
alert = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(["firing", "resolved", "pending"]) | json_values,
        "labels": string_maps
        | st.fixed_dictionaries(
            {
                "instance": st.sampled_from(
                    ["h:9100", "[::1]:1", "http://x:1/p", "http://[::1", "a b"]
                )
            }
        )
        | json_values,
        "annotations": string_maps | json_values,
        "startsAt": times | json_values,
        "endsAt": times | json_values,
        "fingerprint": text | json_values,
        "generatorURL": text,
    },
)
alertmanager_body = st.fixed_dictionaries(
    {"alerts": st.lists(alert, max_size=3) | json_values},
    optional={
        "version": st.sampled_from(["4", "3"]) | json_values,
        "status": st.sampled_from(["firing", "resolved"]) | json_values,
        "externalURL": text | json_values,
        "receiver": json_values,
        "groupKey": json_values,
    },
)


def check_outcome(run: Callable[[], object]) -> None:
    """``run`` returns Events (or a value) or raises InputError; both must be usable."""
    try:
        result = run()
    except InputError as exc:
        orjson.dumps(exc.to_dict())
        assert exc.field
        return
    events = result[0] if isinstance(result, tuple) else result
    for event in events if isinstance(events, list) else [events]:
        if isinstance(event, Event):
            dumped = event.model_dump()
            assert Event.model_validate(dumped) == event
            orjson.dumps(event.model_dump(mode="json"))
            assert event.time.tzinfo is not None
    if isinstance(result, tuple):
        for error in result[1]:
            orjson.dumps(error.to_dict())


@FUZZ
@given(json_values | legacy_object | st.lists(legacy_object, max_size=3))
def test_legacy(body: object) -> None:
    check_outcome(
        lambda: parse_legacy(body, source="/api/v2/ingest", request_id="r", received_at=RECEIVED)
    )
    check_outcome(lambda: parse_legacy_partial(body, source="/api/v2/ingest", request_id="r"))
    check_outcome(lambda: legacy_items(body, max_items=2))


@FUZZ
@given(
    st.sampled_from([TYPE_SYSLOG, TYPE_TRAP, TYPE_GENERIC]) | json_values,
    json_values | legacy_object,
    st.sampled_from(["/src", ""]) | json_values,
    st.sampled_from(["id-1"]) | json_values,
    times | json_values,
    st.none() | text,
)
def test_cloudevent_data(
    ce_type: object, data: object, source: object, event_id: object, time: object, corr: Any
) -> None:
    check_outcome(
        lambda: parse_cloudevent_data(
            ce_type, data, source=source, event_id=event_id, time=time, correlation_id=corr
        )
    )


@FUZZ
@given(json_values | alertmanager_body)
def test_alertmanager(body: object) -> None:
    check_outcome(lambda: parse_alertmanager(body, received_at=RECEIVED))


@FUZZ
@given(json_values | times | text)
def test_field_rules(value: object) -> None:
    parsed = parse_time(value, RECEIVED)
    assert parsed is None or parsed.tzinfo is not None
    for rule in (
        normalize_hostname,
        read_severity,
        normalize_oid,
        check_message,
        parse_varbinds,
    ):
        try:
            rule(value)
        except InputError as exc:
            orjson.dumps(exc.to_dict())
    if isinstance(value, dict):
        try:
            check_attributes(value)
        except InputError as exc:
            orjson.dumps(exc.to_dict())
        else:
            orjson.dumps(value)
