"""Properties of the varbind parser: three forms, one meaning; anything else, a clear error."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from functions.ingest.errors import InputError
from functions.ingest.varbinds import parse_varbinds, trap_message
from shared.models import Varbind

arcs = st.integers(min_value=0, max_value=2**32)
numeric_oids = st.lists(arcs, min_size=2, max_size=14).map(lambda a: ".".join(map(str, a)))
oids = (
    numeric_oids
    | numeric_oids.map(lambda oid: "." + oid)
    | st.sampled_from(["IF-MIB::ifDescr.2", "SNMPv2-SMI::enterprises.9.1", "iso.3.6.1.2.1.1.5.0"])
)
values = (
    st.none()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=40)
)
varbind_lists = st.lists(st.tuples(oids, values), max_size=12, unique_by=lambda p: p[0])


@given(varbind_lists)
def test_objects_pairs_and_a_map_are_the_same_varbinds(varbinds: list[tuple[str, Any]]) -> None:
    objects = parse_varbinds([{"oid": oid, "value": value} for oid, value in varbinds])
    pairs = parse_varbinds([[oid, value] for oid, value in varbinds])
    mapped = parse_varbinds(orjson.loads(orjson.dumps(dict(varbinds))))  # as a body decodes
    assert objects == pairs == mapped
    assert len(objects) == len(varbinds)
    for parsed in objects:
        Varbind.model_validate(parsed)  # what the event model takes
        assert not parsed["oid"].startswith(".")


@given(varbind_lists)
def test_the_message_never_shows_uptime_or_the_trap_oid(varbinds: list[tuple[str, Any]]) -> None:
    parsed = parse_varbinds(
        [["1.3.6.1.2.1.1.3.0", 5], ["1.3.6.1.6.3.1.1.4.1.0", "1.3.6.1.4.1.9"]]
        + [[oid, value] for oid, value in varbinds]
    )
    text = trap_message("1.3.6.1.4.1.9", parsed)
    for housekeeping in ("1.3.6.1.2.1.1.3.0=", "1.3.6.1.6.3.1.1.4.1.0="):
        assert f": {housekeeping}" not in text and f", {housekeeping}" not in text
    assert text.startswith("SNMP trap 1.3.6.1.4.1.9")
    assert len(text) <= 1024


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=12,
)


@given(json_values)
def test_anything_else_parses_or_is_an_error_naming_where(value: object) -> None:
    try:
        parsed = parse_varbinds(value)
    except InputError as exc:
        assert exc.field.startswith("varbinds")
        orjson.dumps(exc.to_dict())  # a 400 body
    else:
        for item in parsed:
            Varbind.model_validate(item)
