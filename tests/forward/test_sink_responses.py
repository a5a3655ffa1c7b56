"""Every HTTP sink classifies every kind of answer the same way.

2xx delivered; 408/425/429/5xx, timeouts and refused connections retry
(with ``Retry-After`` read); other 4xx and redirects are permanent, with a
short detail that never holds a credential or the URL's path.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from functions.forward.sinks.alertmanager import AlertmanagerSink
from functions.forward.sinks.base import Sink
from functions.forward.sinks.http import HttpSession
from functions.forward.sinks.moogsoft import MoogsoftSink
from functions.forward.sinks.pagerduty import PagerDutySink
from functions.forward.sinks.servicenow import ServiceNowSink
from functions.forward.sinks.webhook import WebhookSink
from tests.support.processes import free_port
from tests.support.vendor import VendorServer, make_alert

SECRET = "Zq9-very-secret-credential-42"
Factory = Callable[[str, HttpSession, float], Sink]

SINKS: dict[str, Factory] = {
    "moogsoft": lambda url, s, t: MoogsoftSink(
        "moog", SECRET, session=s, url=url + "/v1/integrations/events", timeout=t
    ),
    "pagerduty": lambda url, s, t: PagerDutySink(
        "pd", SECRET, session=s, url=url + "/v2/enqueue", timeout=t
    ),
    "servicenow": lambda url, s, t: ServiceNowSink(
        "snow", url, "mutt", SECRET, session=s, timeout=t
    ),
    "alertmanager": lambda url, s, t: AlertmanagerSink(
        "am", url, session=s, timeout=t, bearer_token=SECRET
    ),
    "webhook": lambda url, s, t: WebhookSink(
        "hook", url + "/hooks/T0KEN-IN-PATH", session=s, timeout=t, signing_secret=SECRET
    ),
}
each_sink = pytest.mark.parametrize("kind", sorted(SINKS))


def sink_for(kind: str, vendor_url: str, session: HttpSession, timeout: float = 2.0) -> Sink:
    return SINKS[kind](vendor_url, session, timeout)


@each_sink
@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_2xx_is_delivered(
    kind: str, status: int, vendor: VendorServer, session: HttpSession
) -> None:
    vendor.reply(status)
    result = sink_for(kind, vendor.url, session).send(make_alert())
    assert (result.outcome, result.status, result.detail) == ("delivered", status, "")


@each_sink
@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_other_4xx_is_permanent_with_a_short_detail(
    kind: str, status: int, vendor: VendorServer, session: HttpSession
) -> None:
    vendor.reply(status, '{"status":"invalid event","errors":["bad"]}' + "x" * 1000)
    result = sink_for(kind, vendor.url, session).send(make_alert())
    assert (result.outcome, result.status) == ("permanent", status)
    assert result.detail.startswith(f'HTTP {status}: {{"status":"invalid event"')
    assert len(result.detail) <= len(f"HTTP {status}: ") + 300
    assert result.retry_after_seconds is None


@each_sink
def test_429_retries_after_the_delay_in_seconds(
    kind: str, vendor: VendorServer, session: HttpSession
) -> None:
    vendor.reply(429, "slow down", headers={"Retry-After": "7"})
    result = sink_for(kind, vendor.url, session).send(make_alert())
    assert (result.outcome, result.status, result.retry_after_seconds) == ("retry", 429, 7.0)
    assert result.detail == "HTTP 429: slow down"


@each_sink
def test_503_retries_after_an_http_date(
    kind: str, vendor: VendorServer, session: HttpSession
) -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    vendor.reply(503, headers={"Retry-After": format_datetime(when, usegmt=True)})
    before = datetime.now(UTC)
    result = sink_for(kind, vendor.url, session).send(make_alert())
    after = datetime.now(UTC)
    assert (result.outcome, result.status) == ("retry", 503)
    assert result.retry_after_seconds is not None
    # The date has whole seconds; it was read at some instant between before and after.
    date = when.replace(microsecond=0)
    earliest, latest = (date - after).total_seconds(), (date - before).total_seconds()
    assert earliest <= result.retry_after_seconds <= latest


@each_sink
@pytest.mark.parametrize("status", [408, 425, 500, 502, 504])
def test_transient_statuses_retry(
    kind: str, status: int, vendor: VendorServer, session: HttpSession
) -> None:
    vendor.reply(status, "<html>oops</html>")
    result = sink_for(kind, vendor.url, session).send(make_alert())
    assert (result.outcome, result.status, result.retry_after_seconds) == ("retry", status, None)


@each_sink
def test_timeout_retries(kind: str, vendor: VendorServer, session: HttpSession) -> None:
    vendor.reply(202, delay=5.0)  # released when the server stops
    result = sink_for(kind, vendor.url, session, timeout=0.2).send(make_alert())
    assert (result.outcome, result.status) == ("retry", None)
    assert result.detail == "timeout after 0.2s talking to 127.0.0.1"


@each_sink
def test_refused_connection_retries(kind: str, session: HttpSession) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = sink_for(kind, url, session).send(make_alert())
    assert (result.outcome, result.status) == ("retry", None)
    assert result.detail.startswith("cannot reach 127.0.0.1: [Errno 111] Connection refused")
    assert "T0KEN" not in result.detail


@each_sink
def test_redirects_are_not_followed(kind: str, vendor: VendorServer, session: HttpSession) -> None:
    vendor.reply(302, headers={"Location": vendor.url + "/elsewhere"})
    result = sink_for(kind, vendor.url, session).send(make_alert())
    assert (result.outcome, result.status) == ("permanent", 302)
    assert [r.method for r in vendor.requests] == ["POST"]


@each_sink
def test_credentials_echoed_by_the_vendor_are_masked(
    kind: str, vendor: VendorServer, session: HttpSession
) -> None:
    vendor.reply(400, f"invalid key {SECRET} for this integration")
    result = sink_for(kind, vendor.url, session).send(make_alert())
    assert SECRET not in result.detail
    assert result.detail == "HTTP 400: invalid key *** for this integration"


@each_sink
def test_health(kind: str, vendor: VendorServer, session: HttpSession) -> None:
    sink = sink_for(kind, vendor.url, session)
    assert sink.health()
    assert all(r.method in {"GET", "HEAD"} for r in vendor.requests)  # no event created
    assert all(SECRET not in str(r.headers) for r in vendor.requests if kind != "alertmanager")
    vendor.default.status = 503
    assert not sink.health()
    dead = sink_for(kind, f"http://127.0.0.1:{free_port()}", session)
    assert not dead.health()
