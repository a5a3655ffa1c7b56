"""/metrics under several gunicorn workers sums what every worker counted."""

from __future__ import annotations

import re
import subprocess

import pytest
import requests

from shared.config import Settings
from tests.support.processes import free_port, mutt, settings_env, stop, wait_http

pytestmark = pytest.mark.slow


def test_metrics_are_aggregated_across_gunicorn_workers(settings: Settings) -> None:
    env = {**settings_env(settings), "WORKERS": "2", "THREADS": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # mutt serve sets one up itself
    port = free_port()
    proc = subprocess.Popen(
        mutt("serve", "ingest", "--port", str(port)), env=env, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/healthz", proc)
        with requests.Session() as http:  # new connections: both workers get some
            for i in range(20):
                resp = requests.post(
                    f"{url}/api/v2/ingest",
                    json={"hostname": "h", "message": f"m{i}"},
                    headers={"Connection": "close"},
                    timeout=10,
                )
                assert resp.status_code == 202
            body = http.get(url + "/metrics", timeout=10).text
    finally:
        stop(proc)
    (total,) = re.findall(
        r'^mutt_ingest_requests_total\{code="202",route="legacy"\} (\S+)$', body, re.M
    )
    assert float(total) == 20.0
    assert re.search(r'^mutt_stream_length\{stream="events"\} 20\.0$', body, re.M)
