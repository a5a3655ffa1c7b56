"""Fixtures for sink tests: a stand-in vendor server and a shared session.

One server serves the whole session (starting and stopping one per test
would cost more than the tests); each test gets it reset.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from functions.forward.sinks.http import HttpSession


@pytest.fixture
def session() -> Iterator[HttpSession]:
    with HttpSession() as s:
        yield s
