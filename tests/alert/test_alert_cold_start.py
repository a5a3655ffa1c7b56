"""A just-started ``mutt serve alert`` answers its first requests, arriving together, right.

Scaled from zero, the function gets the relay's whole window of requests at
once. Each must get the right answer, and the rules must be loaded once for
all of them, not once per request thread.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pg8000.native
import pytest
import requests
from cloudevents.conversion import to_binary

from shared.config import Settings
from tests.support.factories import accepted_event
from tests.support.processes import free_port, mutt, settings_env, stop, wait_http

CONCURRENT = 8


@pytest.fixture
def one_rule(pg: pg8000.native.Connection) -> Iterator[None]:
    pg.run(
        "INSERT INTO alert_rules (match_type, match_string, prod_handling, dev_handling,"
        " team_assignment) VALUES ('contains', 'jammed', 'Page_only', 'Ticket_only', 'Floor')"
    )
    yield
    pg.run("DELETE FROM alert_rules")


@pytest.mark.usefixtures("one_rule")
def test_the_first_requests_together_get_their_answers_from_one_rule_load(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    env = {**settings_env(settings), "WORKERS": "1", "THREADS": str(CONCURRENT)}
    env.update(MUTT_LOG_LEVEL="INFO", MUTT_LOG_FORMAT="text")
    log = tmp_path / "alert.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            mutt("serve", "alert", "--port", str(port)), env=env, stdout=out, stderr=out
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/healthz", proc)  # answers without loading the rules
        start = threading.Barrier(CONCURRENT)
        answers: list[requests.Response] = []

        def post(i: int) -> None:
            headers, body = to_binary(accepted_event(i, f"belt {i} jammed"))
            start.wait()
            answers.append(requests.post(url + "/", data=body, headers=headers, timeout=60))

        threads = [threading.Thread(target=post, args=(i,)) for i in range(CONCURRENT)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [a.status_code for a in answers] == [200] * CONCURRENT
        assert {a.headers["ce-type"] for a in answers} == {"io.mutt.alert.raised.v1"}
        assert {a.json()["team"] for a in answers} == {"Floor"}
    finally:
        stop(proc)
    assert log.read_text().count("rules loaded") == 1
