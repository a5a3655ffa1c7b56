"""The console over plain HTTP: login, session cookie, CSRF, every page renders."""

from __future__ import annotations

import re

import pytest
import requests

from tests.admin.conftest import KEYS, Admin

pytestmark = pytest.mark.slow

PAGES = ("/", "/rules", "/rules/new", "/hosts", "/silences", "/audit", "/status", "/api/docs")


def insecure(s: requests.Session) -> None:
    """requests sends Secure cookies over https only; a browser also does to localhost."""
    for c in s.cookies:
        c.secure = False


def login(admin: Admin, role: str = "admin") -> tuple[requests.Session, str]:
    """A logged-in browser-like session and its CSRF token."""
    s = requests.Session()
    form = s.get(admin.url + "/login", timeout=10)
    insecure(s)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, form.text
    got = s.post(
        admin.url + "/login",
        data={"csrf_token": token[1], "api_key": KEYS[role], "next": "/rules"},
        allow_redirects=False,
        timeout=10,
    )
    assert got.status_code == 303 and got.headers["Location"] == "/rules"
    cookie = got.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Strict" in cookie
    insecure(s)
    page = s.get(admin.url + "/rules", timeout=10)
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert csrf, page.text
    return s, csrf[1]


def test_every_page_renders_for_a_logged_in_operator(admin: Admin) -> None:
    s, _ = login(admin)
    for path in PAGES:
        got = s.get(admin.url + path, timeout=10)
        assert got.status_code == 200, (path, got.text[:500])
        assert "text/html" in got.headers["Content-Type"]


def test_pages_without_a_session_redirect_to_login(admin: Admin) -> None:
    got = requests.get(admin.url + "/rules?q=x", allow_redirects=False, timeout=10)
    assert got.status_code == 303
    assert got.headers["Location"].startswith("/login?next=/rules")


def test_forms_need_the_csrf_token(admin: Admin) -> None:
    s, csrf = login(admin)
    body = {"hostname": "csrf-host", "reason": "test"}
    refused = s.post(admin.url + "/hosts/dev", data=body, allow_redirects=False, timeout=10)
    assert refused.status_code == 403
    wrong = s.post(
        admin.url + "/hosts/dev",
        data={**body, "csrf_token": "0" * 64},
        allow_redirects=False,
        timeout=10,
    )
    assert wrong.status_code == 403
    done = s.post(
        admin.url + "/hosts/dev",
        data={**body, "csrf_token": csrf},
        allow_redirects=False,
        timeout=10,
    )
    assert done.status_code == 303, done.text
    assert "csrf-host" in s.get(admin.url + "/hosts", timeout=10).text
    xhr = s.post(
        admin.url + "/api/v2/dev-hosts", json={"hostname": "x-host", "reason": "r"}, timeout=10
    )
    assert xhr.status_code == 403  # a session-authenticated XHR without X-CSRF-Token
    xhr = s.post(
        admin.url + "/api/v2/dev-hosts",
        json={"hostname": "x-host", "reason": "r"},
        headers={"X-CSRF-Token": csrf},
        timeout=10,
    )
    assert xhr.status_code == 201


def test_a_viewer_session_sees_but_cannot_change(admin: Admin) -> None:
    s, csrf = login(admin, "viewer")
    assert s.get(admin.url + "/rules/new", timeout=10).status_code == 403
    got = s.post(
        admin.url + "/silences",
        data={"host": "h*", "reason": "r", "minutes": "5", "csrf_token": csrf},
        timeout=10,
    )
    assert got.status_code == 403


def test_a_reason_is_required_to_save_a_rule(admin: Admin) -> None:
    s, csrf = login(admin)
    form = {
        "csrf_token": csrf,
        "match_type": "contains",
        "match_string": "REASONLESS",
        "priority": "50",
        "prod_handling": "Ticket_only",
        "dev_handling": "Ignore",
        "team_assignment": "Ops",
        "is_active": "true",
    }
    review = s.post(admin.url + "/rules/review", data=form, timeout=10)
    assert review.status_code == 200 and "+ new rule" in review.text
    refused = s.post(admin.url + "/rules/save", data=form, timeout=10)
    assert refused.status_code == 400 and "reason" in refused.text
    bad = s.post(
        admin.url + "/rules/review",
        data={**form, "match_type": "regex", "match_string": "(?<=x)"},
        timeout=10,
    )
    assert bad.status_code == 400 and "match_string" in bad.text


def test_silence_from_the_console(admin: Admin) -> None:
    s, csrf = login(admin, "operator")
    got = s.post(
        admin.url + "/silences",
        data={"host": "db-*", "minutes": "30", "reason": "patching", "csrf_token": csrf},
        allow_redirects=False,
        timeout=10,
    )
    assert got.status_code == 303, got.text
    assert "db-*" in s.get(admin.url + "/silences", timeout=10).text


def test_login_redirects_only_within_the_site(admin: Admin) -> None:
    s = requests.Session()
    form = s.get(admin.url + "/login?next=//evil.example/x", timeout=10)
    assert "//evil.example" not in form.text
