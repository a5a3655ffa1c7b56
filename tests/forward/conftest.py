"""Fixtures for sink tests: a stand-in vendor server and a shared session.

One server serves the whole session (starting and stopping one per test
would cost more than the tests); each test gets it reset.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.forward.vendor import VendorServer


@pytest.fixture(scope="session")
def vendor_server() -> Iterator[VendorServer]:
    server = VendorServer().start()
    yield server
    server.stop()


@pytest.fixture
def vendor(vendor_server: VendorServer) -> Iterator[VendorServer]:
    vendor_server.reset()
    yield vendor_server
    vendor_server.reset()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s
