"""End to end with the real programs operators run, on 127.0.0.1:

- util-linux ``logger`` (UDP / TCP, RFC 5424 / 3164, octet counting) → ``mutt syslog``
- ``rsyslogd`` (imudp in, omfwd TCP octet-counted out) → ``mutt syslog``
- ``snmptrap`` → ``snmptrapd`` → ``mutt trap-handle`` (its traphandle)
- ``prometheus-alertmanager`` webhook → ingest's /api/v2/alertmanager

then ingest → alert → forward → the file sink, every process real and every
one stopped at the end. One pipeline serves the module (processes are slow
to start); ingest requires an API key, so each source shows it presents one.
``.ci/install-system-packages.sh`` installs the binaries; a test whose binary
is missing is skipped with that instruction.
"""

from __future__ import annotations

import re
import shlex
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
import requests
import yaml

from functions.alert.catalog import insert_catalog, parse_catalog
from shared.broker.keys import Keys
from shared.config import Settings, load_settings
from shared.db.connection import connect_pg
from tests.support.processes import free_port, mutt, settings_env, stop, wait_http
from tests.support.sources import (
    API_KEY,
    published,
    source_command,
    wait_for,
    wait_udp_bound,
)

pytestmark = pytest.mark.slow

LOGGER = "/usr/bin/logger"
RSYSLOGD = "/usr/sbin/rsyslogd"
SNMPTRAPD = "/usr/sbin/snmptrapd"
SNMPTRAP = "/usr/bin/snmptrap"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
TRAP_OID = "1.3.6.1.4.1.9.9.41.2.0.1"  # ciscoSyslogMessageGenerated
CLOG_MESSAGE = "1.3.6.1.4.1.9.9.41.1.2.3.1.5.1"


def need(binary: str) -> None:
    if not Path(binary).exists():
        pytest.skip(f"{binary} is absent: run .ci/install-system-packages.sh")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Pipeline:
    """ingest + alert + forward workers + ``mutt syslog``, as separate processes."""

    settings: Settings
    env: dict[str, str]
    tmp: Path
    r: redis.Redis
    keys: Keys
    ingest: str = ""
    syslog_udp: int = 0
    syslog_tcp: int = 0
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, env=self.env, **kwargs)
        self.procs[name] = proc
        return proc

    def alerts(self) -> list[dict[str, Any]]:
        path = self.settings.sink_path
        if not path.exists():
            return []
        data = path.read_bytes()
        lines = data[: data.rfind(b"\n") + 1].splitlines()  # skip a line being written
        return [orjson.loads(line)["alert"] for line in lines if line.strip()]

    def events(self) -> list[dict[str, Any]]:
        return published(self.r, self.keys)

    def alert_for(self, token: str, timeout: float = 20.0) -> dict[str, Any]:
        (alert,) = wait_for(self.alerts, lambda a: token in a["event"]["message"], timeout)
        return alert


@pytest.fixture(scope="module")
def pipeline(
    servers: tuple[str, str], db_schema: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    tmp = tmp_path_factory.mktemp("sources")
    secrets = tmp / "secrets"
    secrets.mkdir()
    (secrets / "ingest_api_keys").write_text(f"{API_KEY}\nanother-key\n")
    settings = load_settings(
        {},
        redis_url=servers[0],
        database_url=servers[1],
        database_schema=db_schema,
        namespace=f"t{uuid.uuid4().hex[:10]}",
        data_dir=tmp,
        secrets_dir=secrets,
        heartbeat_interval_seconds=0.2,
        heartbeat_ttl_seconds=1.0,
        claim_min_idle_seconds=0.5,
        retry_delay_seconds=0.5,
        worker_block_ms=100,
    )
    r = redis.Redis.from_url(servers[0])
    pg = connect_pg(servers[1], db_schema)
    rules = (Path(__file__).parents[3] / "mutt" / "demo_data" / "rules.yaml").read_text()
    insert_catalog(pg, r, settings.namespace, parse_catalog(yaml.safe_load(rules)))
    p = Pipeline(settings, settings_env(settings), tmp, r, Keys(settings.namespace))
    try:
        port = free_port()
        ingest = p.start("ingest", mutt("serve", "ingest", "--port", str(port)))
        p.ingest = f"http://127.0.0.1:{port}"
        p.start("alert", mutt("worker", "alert"))
        p.start("forward", mutt("worker", "forward"))
        p.syslog_udp, p.syslog_tcp, health = free_udp_port(), free_port(), free_port()
        syslog = p.start(
            "syslog",
            source_command(
                "syslog",
                "--udp-port",
                str(p.syslog_udp),
                "--tcp-port",
                str(p.syslog_tcp),
                "--ingest-url",
                p.ingest + "/",
                "--flush-interval",
                "0.1",
                "--health-port",
                str(health),
            ),
        )
        wait_http(p.ingest + "/healthz", ingest)
        wait_http(f"http://127.0.0.1:{health}/healthz", syslog)
        yield p
    finally:
        codes = {name: stop(proc) for name, proc in reversed(p.procs.items())}
        pg.run("DELETE FROM alert_rules; DELETE FROM development_hosts; DELETE FROM device_teams")
        pg.close()
        leftovers = list(r.scan_iter(match=f"{settings.namespace}:*", count=1000))
        if leftovers:
            r.delete(*leftovers)
        r.close()
    assert codes == dict.fromkeys(codes, 0), f"a process did not stop cleanly: {codes}"


# ---------------------------------------------------------------- logger → mutt syslog

LOGGER_VARIANTS = {
    "udp-rfc5424": ["--udp", "--rfc5424"],
    "udp-rfc3164": ["--udp", "--rfc3164"],
    "udp-rfc5424-nohost": ["--udp", "--rfc5424=nohost"],
    "tcp-rfc5424": ["--tcp", "--rfc5424"],
    "tcp-rfc3164": ["--tcp", "--rfc3164"],
    "tcp-octet-count-rfc5424": ["--tcp", "--octet-count", "--rfc5424"],
}


@pytest.mark.parametrize("variant", sorted(LOGGER_VARIANTS))
def test_logger_lines_become_alerts(pipeline: Pipeline, variant: str) -> None:
    need(LOGGER)
    options = LOGGER_VARIANTS[variant]
    port = pipeline.syslog_tcp if "--tcp" in options else pipeline.syslog_udp
    token = uuid.uuid4().hex
    subprocess.run(
        [
            *(LOGGER, "--server", "127.0.0.1", "--port", str(port), *options),
            *("-p", "local7.err", "-t", "mutt-e2e"),
            f"Interface Gi0/1, changed state to down {token}",
        ],
        check=True,
        timeout=10,
    )
    alert = pipeline.alert_for(token)
    assert alert["handling"] == "Page_and_ticket" and alert["team"] == "NetOps"
    event = alert["event"]
    assert event["severity_name"] == "error"  # from the PRI: local7.err
    assert event["attributes"]["facility"] == "local7"
    assert event["attributes"]["app_name"] == "mutt-e2e"
    assert event["attributes"]["syslog_protocol"] == (
        "rfc3164" if "--rfc3164" in options else "rfc5424"
    )
    me = socket.gethostname().lower()
    expected = {"127.0.0.1"} if variant.endswith("nohost") else {me, me.split(".")[0]}
    assert event["hostname"] in expected


def test_a_cisco_line_keeps_its_mnemonic_to_the_sink(pipeline: Pipeline) -> None:
    token = uuid.uuid4().hex
    line = (
        f"<187>000042: core-router-01.dc1.example.com: *Mar  1 18:46:11.123 UTC: "
        f"%LINK-3-UPDOWN: Interface Gi0/2, changed state to down {token}"
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(line.encode(), ("127.0.0.1", pipeline.syslog_udp))
    alert = pipeline.alert_for(token)
    event = alert["event"]
    assert event["hostname"] == "core-router-01.dc1.example.com"
    assert event["source_type"] == "cisco-ios"
    assert event["message"].startswith("%LINK-3-UPDOWN: Interface Gi0/2")
    attributes = event["attributes"]
    assert (attributes["cisco_facility"], attributes["cisco_mnemonic"]) == ("LINK", "UPDOWN")
    assert attributes["sequence"] == 42
    assert alert["team"] == "NetOps"  # device_teams of the demo catalog


# ---------------------------------------------------------------- rsyslog → mutt syslog

RSYSLOG_CONF = """\
global(workDirectory="{work}")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{port}")
action(type="omfwd" target="127.0.0.1" port="{mutt_tcp}" protocol="tcp"
       TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
"""


def test_rsyslog_forwards_octet_counted_tcp_to_mutt_syslog(pipeline: Pipeline) -> None:
    need(RSYSLOGD)
    need(LOGGER)
    work = pipeline.tmp / "rsyslog"
    work.mkdir(exist_ok=True)
    port = free_udp_port()
    conf = work / "rsyslog.conf"
    conf.write_text(RSYSLOG_CONF.format(work=work, port=port, mutt_tcp=pipeline.syslog_tcp))
    log = (work / "rsyslogd.log").open("wb")
    proc = subprocess.Popen(
        [RSYSLOGD, "-n", "-f", str(conf), "-i", str(work / "rsyslogd.pid")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_udp_bound(port, lambda: proc.poll() is None)
        token = uuid.uuid4().hex
        subprocess.run(
            [
                *(LOGGER, "--server", "127.0.0.1", "--port", str(port), "--udp", "--rfc3164"),
                *("-p", "local7.crit", "-t", "via-rsyslog"),
                f"Gi0/3 changed state to down {token}",
            ],
            check=True,
            timeout=10,
        )
        alert = pipeline.alert_for(token)
    finally:
        assert stop(proc, timeout=10) == 0, (work / "rsyslogd.log").read_text()[-2000:]
        log.close()
    event = alert["event"]
    assert event["attributes"]["syslog_protocol"] == "rfc5424"  # rsyslog re-framed it
    assert event["attributes"]["app_name"] == "via-rsyslog"
    assert event["severity_name"] == "critical"
    assert event["message"] == f"Gi0/3 changed state to down {token}"


def test_the_documented_omhttp_template_makes_what_the_legacy_endpoint_takes(
    pipeline: Pipeline,
) -> None:
    """Debian's rsyslog has no omhttp; the template of docs/sources.md is rendered by
    omfile instead, and the lines batched as omhttp's batch.format="jsonarray" would."""
    need(RSYSLOGD)
    need(LOGGER)
    docs = (Path(__file__).parents[3] / "docs" / "sources.md").read_text()
    found = re.search(r'template\(name="mutt_legacy".*?\n\}', docs, re.DOTALL)
    assert found, "docs/sources.md lost its mutt_legacy template"
    work = pipeline.tmp / "rsyslog-omhttp"
    work.mkdir(exist_ok=True)
    port, out = free_udp_port(), work / "out.json"
    conf = work / "rsyslog.conf"
    conf.write_text(
        f'global(workDirectory="{work}")\n'
        f'module(load="imudp")\ninput(type="imudp" address="127.0.0.1" port="{port}")\n'
        f"{found.group()}\n"
        f'action(type="omfile" file="{out}" template="mutt_legacy")\n'
    )
    proc = subprocess.Popen(
        [RSYSLOGD, "-n", "-f", str(conf), "-i", str(work / "rsyslogd.pid")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    token = uuid.uuid4().hex
    try:
        wait_udp_bound(port, lambda: proc.poll() is None)
        for text in (f'quote " and \\ backslash {token}', f"Gi0/6 changed state to down {token}"):
            subprocess.run(
                [
                    *(LOGGER, "--server", "127.0.0.1", "--port", str(port), "--udp"),
                    *("--rfc3164", "-p", "local7.warning", "-t", "omhttp-e2e", text),
                ],
                check=True,
                timeout=10,
            )
        wait_for(
            lambda: [{}] * (len(out.read_bytes().splitlines()) if out.exists() else 0),
            lambda d: True,
            count=2,
            timeout=10,
        )
    finally:
        assert stop(proc, timeout=10) == 0
    body = b"[" + b",".join(out.read_bytes().splitlines()) + b"]"
    headers = {"Content-Type": "application/json", "X-API-KEY": API_KEY}
    url = pipeline.ingest + "/api/v2/ingest"
    first = requests.post(url, data=body, headers=headers, timeout=10)
    assert first.status_code == 202, first.text
    assert first.json()["accepted"] == 2
    again = requests.post(url, data=body, headers=headers, timeout=10)  # omhttp's retry
    assert (again.status_code, again.json()["duplicates"]) == (202, 2)
    events = wait_for(pipeline.events, lambda e: token in e["message"], count=2)
    for event in events:
        assert event["severity_name"] == "warning"
        assert event["attributes"]["app_name"] == "omhttp-e2e"
        assert event["attributes"]["facility"] == "local7"
        assert event["attributes"]["source_ip"] == "127.0.0.1"
    assert any('quote " and \\ backslash' in e["message"] for e in events)


# ---------------------------------------------------------------- snmptrapd → mutt trap-handle


def test_snmptrapd_hands_each_trap_to_mutt_trap_handle(pipeline: Pipeline) -> None:
    need(SNMPTRAPD)
    need(SNMPTRAP)
    work = pipeline.tmp / "snmptrapd"
    work.mkdir(exist_ok=True)
    port = free_udp_port()
    handler = source_command("trap-handle", "--ingest-url", pipeline.ingest + "/")
    conf = work / "snmptrapd.conf"
    conf.write_text(f"disableAuthorization yes\ntraphandle default {shlex.join(handler)}\n")
    env = {**pipeline.env, "SNMP_PERSISTENT_DIR": str(work), "MIBS": ""}
    log = work / "snmptrapd.log"
    proc = subprocess.Popen(
        [
            *(SNMPTRAPD, "-f", "-Lf", str(log), "-On", "-n", "-C", "-c", str(conf)),
            *("-p", str(work / "snmptrapd.pid"), f"udp:127.0.0.1:{port}"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_udp_bound(port, lambda: proc.poll() is None)
        anonymous, named = uuid.uuid4().hex, uuid.uuid4().hex
        for token, extra in ((anonymous, []), (named, ["1.3.6.1.2.1.1.5.0", "s", "sw-e2e-07"])):
            subprocess.run(
                [
                    *(SNMPTRAP, "-v", "2c", "-c", "public", f"127.0.0.1:{port}", "", TRAP_OID),
                    *(CLOG_MESSAGE, "s", f"Interface Gi0/4, changed state to down {token}"),
                    *extra,
                ],
                env=env,
                check=True,
                timeout=10,
                capture_output=True,
            )
        events = wait_for(
            pipeline.events, lambda e: e.get("trap_oid") == TRAP_OID, count=2, timeout=30
        )
    finally:
        assert stop(proc, timeout=10) == 0, log.read_text()[-2000:] if log.exists() else ""
    by_token = {
        token: e
        for e in events
        for token in (anonymous, named)
        if token in orjson.dumps(e).decode()
    }
    first, second = by_token[anonymous], by_token[named]
    # no sysName varbind (and -n: no reverse DNS): the agent's address is the hostname
    assert first["hostname"] == "127.0.0.1"
    assert first["attributes"]["agent_address"] == "127.0.0.1"
    assert second["hostname"] == "sw-e2e-07"
    varbinds = {v["oid"]: v["value"] for v in first["varbinds"]}
    assert varbinds["1.3.6.1.6.3.1.1.4.1.0"] == TRAP_OID
    assert varbinds[CLOG_MESSAGE] == f"Interface Gi0/4, changed state to down {anonymous}"
    assert first["source_type"] == "snmptrap"


# ---------------------------------------------------------------- Alertmanager → ingest

ALERTMANAGER_CONF = """\
route:
  receiver: mutt
  group_by: [alertname, instance]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: mutt
    webhook_configs:
      - url: {ingest}/api/v2/alertmanager
        send_resolved: true
        http_config:
          authorization:
            credentials: {key}
"""


def test_alertmanager_webhook_reaches_the_stream(pipeline: Pipeline) -> None:
    need(ALERTMANAGER)
    work = pipeline.tmp / "alertmanager"
    work.mkdir(exist_ok=True)
    (work / "alertmanager.yml").write_text(
        ALERTMANAGER_CONF.format(ingest=pipeline.ingest, key=API_KEY)
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={work / 'alertmanager.yml'}",
            f"--storage.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    token = uuid.uuid4().hex
    try:
        wait_http(url + "/-/ready", proc, timeout=15)
        alert = {
            "labels": {
                "alertname": "MuttSourcesE2E",
                "instance": "core-router-01.dc1.example.com:9100",
                "severity": "critical",
                "token": token,
            },
            "annotations": {"summary": f"Interface Gi0/5 changed state to down {token}"},
        }
        requests.post(url + "/api/v2/alerts", json=[alert], timeout=5).raise_for_status()
        (event,) = wait_for(
            pipeline.events, lambda e: e["attributes"].get("labels", {}).get("token") == token
        )
    finally:
        stop(proc, timeout=5)
    assert event["hostname"] == "core-router-01.dc1.example.com"
    assert event["message"] == f"Interface Gi0/5 changed state to down {token}"
    assert event["severity_name"] == "critical"
    assert event["source_type"] == "alertmanager"
    pipeline.alert_for(token)  # and the rule engine routes it like any event


# ---------------------------------------------------------------- mutt syslog, the process


def test_sigterm_flushes_the_buffer_then_exits_0(pipeline: Pipeline) -> None:
    udp, health = free_udp_port(), free_port()
    log = pipeline.tmp / "syslog-flush.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            source_command(
                "syslog",
                "--no-tcp",
                "--udp-port",
                str(udp),
                "--ingest-url",
                pipeline.ingest + "/",
                "--flush-interval",
                "60",  # nothing leaves before the SIGTERM
                "--health-port",
                str(health),
            ),
            env=pipeline.env,
            stderr=err,
        )
        try:
            wait_http(f"http://127.0.0.1:{health}/healthz", proc)
            tokens = [uuid.uuid4().hex for _ in range(3)]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for token in tokens:
                    sock.sendto(f"<13>flush {token}".encode(), ("127.0.0.1", udp))
            buffered = 'mutt_source_buffered_events{source="syslog"} 3.0'
            wait_for(
                lambda: (
                    [{}]
                    if buffered
                    in requests.get(f"http://127.0.0.1:{health}/metrics", timeout=2).text
                    else []
                ),
                lambda d: True,
                timeout=10,
            )
            assert not any(t in str(e) for e in pipeline.events() for t in tokens)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
        finally:
            stop(proc)
    messages = {e["message"] for e in pipeline.events()}
    assert {f"flush {t}" for t in tokens} <= messages
    assert "3 accepted" in log.read_text()


def test_an_unreachable_ingest_loses_only_after_the_grace_period(pipeline: Pipeline) -> None:
    udp, health = free_udp_port(), free_port()
    proc = subprocess.Popen(
        source_command(
            "syslog",
            "--no-tcp",
            "--udp-port",
            str(udp),
            "--ingest-url",
            "http://127.0.0.1:9/",
            "--grace",
            "1",
            "--timeout",
            "1",
            "--health-port",
            str(health),
        ),
        env=pipeline.env,
        stderr=subprocess.PIPE,
    )
    try:
        wait_http(f"http://127.0.0.1:{health}/healthz", proc)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for i in range(3):
                sock.sendto(b"<13>nobody listens %d" % i, ("127.0.0.1", udp))
        ready = f"http://127.0.0.1:{health}/readyz"
        wait_for(
            lambda: [{}] if requests.get(ready, timeout=2).status_code == 503 else [],
            lambda d: True,
            timeout=10,
        )
        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        # It must end by itself once the grace period is over (the timeout only stops a
        # hung test), saying what it gave up.
        _, err = proc.communicate(timeout=60)
        ended = time.monotonic()
    finally:
        stop(proc)
    assert proc.returncode == 0
    assert ended - signalled >= 1.0  # it kept trying for the whole grace period first
    text = err.decode()
    assert "Connection refused" in text
    assert "3 events were still waiting for ingest after the 1s grace period: lost" in text


def test_a_taken_port_is_one_clear_line_and_exit_4(pipeline: Pipeline) -> None:
    result = subprocess.run(
        source_command("syslog", "--no-udp", "--tcp-port", str(pipeline.syslog_tcp)),
        env=pipeline.env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 4
    last = result.stderr.decode().strip().splitlines()[-1]
    assert last.startswith("mutt: cannot listen on 127.0.0.1"), result.stderr


def test_the_sources_are_documented_commands() -> None:
    for command in ("syslog", "trap-handle"):
        shown = subprocess.run(
            source_command(command, "--help"), capture_output=True, timeout=30, check=True
        )
        assert b"docs/sources.md" in shown.stdout or b"snmptrapd" in shown.stdout
