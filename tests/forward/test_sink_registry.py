"""Routing config builds sinks; credentials are secret names resolved at build time."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from functions.forward.sinks.alertmanager import AlertmanagerSink
from functions.forward.sinks.http import HttpSession
from functions.forward.sinks.moogsoft import MoogsoftSink
from functions.forward.sinks.pagerduty import PagerDutySink
from functions.forward.sinks.registry import (
    SinkConfigError,
    build_sink,
    build_sinks,
    parse_sink_config,
)
from functions.forward.sinks.servicenow import ServiceNowSink
from functions.forward.sinks.stdout import StdoutSink
from functions.forward.sinks.webhook import WebhookSink
from tests.support.vendor import VendorServer, make_alert

SECRETS = {
    "pd_netops_key": "R0UT1NGKEY0000000000000000000001",
    "moog_key": "moog-api-key-1",
    "snow_pass": "snow-password-1",
    "am_token": "am-token-1",
    "hook_key": "hook-signing-key-1",
}
CONFIGS: list[dict[str, Any]] = [
    {"type": "pagerduty", "name": "pd-netops", "routing_key_secret": "pd_netops_key"},
    {"type": "moogsoft", "name": "moog", "api_key_secret": "moog_key", "auth": "bearer"},
    {
        "type": "servicenow",
        "name": "snow",
        "url": "https://acme.service-now.com",
        "username": "mutt",
        "password_secret": "snow_pass",
    },
    {
        "type": "alertmanager",
        "name": "am",
        "url": "http://alertmanager:9093",
        "resolve_after_seconds": 600,
        "bearer_token_secret": "am_token",
    },
    {
        "type": "webhook",
        "name": "hook",
        "url": "https://h.example/x",
        "signing_key_secret": "hook_key",
    },
    {"type": "stdout", "name": "local"},
]


def test_builds_every_type_resolving_secret_names() -> None:
    asked: list[str] = []

    def resolve(name: str) -> str:
        asked.append(name)
        return SECRETS[name]

    with HttpSession() as session:
        sinks = build_sinks(CONFIGS, session=session, resolve_secret=resolve)
    assert {n: type(s) for n, s in sinks.items()} == {
        "pd-netops": PagerDutySink,
        "moog": MoogsoftSink,
        "snow": ServiceNowSink,
        "am": AlertmanagerSink,
        "hook": WebhookSink,
        "local": StdoutSink,
    }
    assert sorted(asked) == sorted(SECRETS)
    assert all(s.name == n for n, s in sinks.items())
    pd = sinks["pd-netops"]
    assert isinstance(pd, PagerDutySink) and pd.url == "https://events.pagerduty.com/v2/enqueue"
    am = sinks["am"]
    assert isinstance(am, AlertmanagerSink) and am.resolve_after.total_seconds() == 600


def test_configs_hold_names_never_values() -> None:
    for raw in CONFIGS:
        dumped = repr(parse_sink_config(raw)) + parse_sink_config(raw).model_dump_json()
        assert not any(value in dumped for value in SECRETS.values())


def test_a_built_sink_sends_with_the_resolved_credential(vendor: VendorServer) -> None:
    config = parse_sink_config(
        {
            "type": "pagerduty",
            "name": "pd-netops",
            "url": vendor.url + "/v2/enqueue",
            "routing_key_secret": "pd_netops_key",
            "timeout_seconds": 2,
        }
    )
    with HttpSession() as session:
        sink = build_sink(config, session=session, resolve_secret=SECRETS.__getitem__)
        assert sink.send(make_alert()).outcome == "delivered"
    assert vendor.requests[0].json()["routing_key"] == SECRETS["pd_netops_key"]


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        ({"type": "pagerduty", "name": "pd"}, "routing_key_secret"),
        ({"type": "pagerduty", "name": "pd", "routing_key": "abc"}, "routing_key"),
        ({"type": "splunk", "name": "x"}, "does not match any of the expected tags"),
        ({"name": "x"}, "Unable to extract tag using discriminator 'type'"),
        ({"type": "stdout", "name": "Bad Name"}, "name"),
        ({"type": "stdout", "name": "x", "timeout_seconds": 0}, "timeout_seconds"),
        ({"type": "webhook", "name": "h", "url": "ftp://h/x"}, "http"),
        ({"type": "webhook", "name": "h", "url": "https://u:p@h/x"}, "must not embed credentials"),
        (
            {
                "type": "webhook",
                "name": "h",
                "url": "https://h/",
                "headers": {"authorization": "x"},
            },
            "authorization",
        ),
        ({"type": "moogsoft", "name": "m", "api_key_secret": "k", "auth": "basic"}, "auth"),
        ({"type": "servicenow", "name": "s", "username": "u", "password_secret": "p"}, "url"),
    ],
)
def test_invalid_configs_are_refused(raw: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        parse_sink_config(raw)


def test_unresolvable_or_empty_secrets_fail_the_build_without_leaking() -> None:
    config = parse_sink_config(CONFIGS[0])
    with HttpSession() as session:
        with pytest.raises(SinkConfigError, match=r"'pd_netops_key' cannot be resolved \(KeyError"):
            build_sink(config, session=session, resolve_secret=dict[str, str]().__getitem__)
        with pytest.raises(SinkConfigError, match="'pd_netops_key' is empty"):
            build_sink(config, session=session, resolve_secret=lambda name: "")


def test_duplicate_names_are_refused() -> None:
    with HttpSession() as session, pytest.raises(SinkConfigError, match="'local'"):
        build_sinks([CONFIGS[-1], CONFIGS[-1]], session=session, resolve_secret=SECRETS.__getitem__)
