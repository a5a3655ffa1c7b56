"""The generic webhook: the alert's JSON, an idempotency key, an HMAC signature."""

from __future__ import annotations

import hashlib
import hmac
import re

from functions.forward.sinks.http import HttpSession
from functions.forward.sinks.webhook import WebhookSink, sign, verify_signature
from shared.models import Alert
from tests.support.vendor import VendorServer, make_alert

SECRET = "whsec-4f1b2c9e8d7a"
NOW = 1_736_951_500


def test_body_headers_and_signature(vendor: VendorServer, session: HttpSession) -> None:
    alert = make_alert()
    sink = WebhookSink(
        "hook",
        vendor.url + "/in/mutt",
        session=session,
        signing_secret=SECRET,
        headers={"X-Team": "netops"},
        clock=lambda: NOW + 0.9,
    )
    assert sink.send(alert).outcome == "delivered"

    (req,) = vendor.requests
    assert (req.method, req.path) == ("POST", "/in/mutt")
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["Idempotency-Key"] == str(alert.alert_id)
    assert req.headers["X-Team"] == "netops"
    assert "Authorization" not in req.headers
    assert Alert.model_validate_json(req.body) == alert

    header = req.headers["X-MUTT-Signature"]
    match = re.fullmatch(r"t=(\d+),v1=([0-9a-f]{64})", header)
    assert match is not None
    assert int(match[1]) == NOW
    # An independent computation over the exact bytes received.
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + req.body, hashlib.sha256)
    assert hmac.compare_digest(match[2], expected.hexdigest())
    assert verify_signature(SECRET, req.body, header, now=NOW + 10)


def test_verify_refuses_tampering_replays_and_wrong_keys() -> None:
    body = b'{"alert_id":"x"}'
    header = sign(SECRET, body, NOW)
    assert verify_signature(SECRET, body, header, now=NOW)
    assert not verify_signature(SECRET, body + b" ", header, now=NOW)  # body changed
    assert not verify_signature("other-secret", body, header, now=NOW)
    assert not verify_signature(SECRET, body, header, now=NOW + 301)  # replayed later
    assert not verify_signature(SECRET, body, header, now=NOW - 301)  # from the future
    assert verify_signature(SECRET, body, header, now=NOW + 30, tolerance=60)
    forged_time = header.replace(f"t={NOW}", f"t={NOW + 200}")
    assert not verify_signature(SECRET, body, forged_time, now=NOW + 200)
    assert not verify_signature(SECRET, body, "v1=" + header.split("v1=")[1], now=NOW)
    assert not verify_signature(SECRET, body, "garbage", now=NOW)


def test_verify_accepts_any_of_several_signatures_during_rotation() -> None:
    body = b"{}"
    old = sign("old-secret", body, NOW).split(",")[1]
    both = sign(SECRET, body, NOW) + "," + old
    assert verify_signature(SECRET, body, both, now=NOW)
    assert verify_signature("old-secret", body, both, now=NOW)


def test_unsigned_with_bearer_token(vendor: VendorServer, session: HttpSession) -> None:
    sink = WebhookSink("hook", vendor.url, session=session, bearer_token="tok-123456")
    assert sink.send(make_alert()).outcome == "delivered"
    (req,) = vendor.requests
    assert req.headers["Authorization"] == "Bearer tok-123456"
    assert "X-MUTT-Signature" not in req.headers
