"""The sinks' urllib3 transport keeps requests' environment behaviour: proxies, CA bundle."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.forward.sinks import http
from functions.forward.sinks.http import HttpSession, post
from tests.support.vendor import VendorServer


def test_proxy_from_the_environment_and_no_proxy(
    vendor: VendorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", vendor.url)  # the stand-in plays the proxy
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with HttpSession() as session:
        result = post(session, "http://vendor.invalid/hook?t=1", b"{}", headers={}, timeout=2)
        assert result.outcome == "delivered"
        assert vendor.requests[-1].path == "http://vendor.invalid/hook?t=1"  # via the proxy
        assert post(session, vendor.url + "/direct", b"{}", headers={}, timeout=2).outcome == (
            "delivered"
        )
        assert vendor.requests[-1].path == "/direct"  # NO_PROXY: straight to the host


def test_tls_verification_uses_requests_ca_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    settings = http._tls_settings()
    assert settings["cert_reqs"] == "CERT_REQUIRED"
    assert settings["ca_certs"] == http.requests.utils.DEFAULT_CA_BUNDLE_PATH
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/pki/corp.pem")
    assert http._tls_settings()["ca_certs"] == "/etc/pki/corp.pem"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path))
    assert http._tls_settings()["ca_cert_dir"] == str(tmp_path)
