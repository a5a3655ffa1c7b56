"""Fault 6: hostile input against the real processes.

Every hostile request gets a clear 4xx (from MUTT, or from gunicorn for
what is not HTTP), never a 5xx, a crash or a stall; afterwards the event
stream holds only valid envelopes (the legitimate events and nothing else).
SQL metacharacters in every field are stored verbatim and harm no table,
and a catastrophic-backtracking regex applied with ``mutt rules apply`` is
accepted by RE2 and matches in linear time.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pg8000.native
import pytest
import redis
import requests
import yaml

from functions.alert.rules import RuleSet
from mutt.commands.rules import read_state
from shared.broker import streams
from shared.broker.keys import Keys
from shared.config import Settings
from shared.envelope import FIELD, decode
from shared.models import TYPE_ACCEPTED, Event
from tests.support.factories import event as factory_event
from tests.support.processes import mutt, settings_env
from tests.support.resilience import (
    Pipeline,
    consumer_of,
    ingest_pid,
    report,
    rss_kb,
    wait_until,
)

pytestmark = pytest.mark.slow

SQL = "'; DROP TABLE alert_rules; --"
SQL_HOST = "r1';drop/**/table/**/alert_rules;--"  # host names have no spaces (and are lower-cased)
BOMB = "(a+)+$"
DEEP = 100_000
MIB = 1024 * 1024


def binary_headers(**ce: str) -> dict[str, str]:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": uuid.uuid4().hex,
        "ce-source": "/hostile",
        "ce-type": "io.mutt.syslog.v1",
        "content-type": "application/json",
    }
    headers.update({k.replace("_", "-"): v for k, v in ce.items()})
    return headers


def structured(specversion: object = "1.0", data: object = None, raw_data: bytes = b"") -> bytes:
    doc = {
        "specversion": specversion,
        "id": uuid.uuid4().hex,
        "source": "/hostile",
        "type": "io.mutt.syslog.v1",
        "data": data if data is not None else {"hostname": "h", "message": "m"},
    }
    body = orjson.dumps(doc)
    if raw_data:  # splice bytes orjson would refuse to produce
        body = body.replace(b'{"hostname":"h","message":"m"}', raw_data)
    return body


CE_JSON = {"content-type": "application/cloudevents+json"}
JSON = {"content-type": "application/json"}
ARRAYS = b"[" * DEEP + b"]" * DEEP
OBJECTS = b'{"a":' * DEEP + b"1" + b"}" * DEEP
BAD_UTF8 = b'{"hostname":"h\xff\xfe","message":"m"}'


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    body: bytes | Callable[[], Any]
    headers: dict[str, str]
    expect: frozenset[int]
    method: str = "POST"


def cases() -> list[Case]:
    big = b"[" + b'"x",' * (MIB // 2) + b'"x"]'  # 2 MiB of valid JSON; the limit is 1 MiB
    c = Case
    return [
        c("2 MiB body (Content-Length)", "/api/v2/ingest", big, JSON, frozenset({413})),
        c(
            "2 MiB body (chunked, no Content-Length)",
            "/api/v2/ingest",
            lambda: iter([big[i : i + 65536] for i in range(0, len(big), 65536)]),
            JSON,
            frozenset({413}),
        ),
        c("2 MiB CloudEvent", "/", big, binary_headers(), frozenset({413})),
        c("100k nested arrays, legacy", "/api/v2/ingest", ARRAYS, JSON, frozenset({400})),
        c("100k nested arrays, Alertmanager", "/alertmanager", ARRAYS, JSON, frozenset({400})),
        c("100k nested arrays, CE binary", "/", ARRAYS, binary_headers(), frozenset({400})),
        c("100k nested objects, CE binary", "/", OBJECTS, binary_headers(), frozenset({400})),
        c("100k nested arrays, CE structured", "/", ARRAYS, CE_JSON, frozenset({400})),
        c("100k nested objects, CE structured", "/", OBJECTS, CE_JSON, frozenset({400})),
        c(
            "100k nested arrays as CE data",
            "/",
            structured(raw_data=ARRAYS),
            CE_JSON,
            frozenset({400}),
        ),
        c(
            "attributes 500 deep (limit 8)",
            "/api/v2/ingest",
            b'{"hostname":"h","message":"m","x":' + b"[" * 500 + b"]" * 500 + b"}",
            JSON,
            frozenset({400}),
        ),
        c("invalid UTF-8, legacy", "/api/v2/ingest", BAD_UTF8, JSON, frozenset({400})),
        c(
            "invalid UTF-8, ndjson",
            "/api/v2/ingest",
            b'{"hostname":"h","message":"m"}\n\xff\n',
            {"content-type": "application/x-ndjson"},
            frozenset({400}),
        ),
        c("invalid UTF-8, CE binary", "/", BAD_UTF8, binary_headers(), frozenset({400})),
        c(
            "invalid UTF-8, CE structured",
            "/",
            structured(raw_data=BAD_UTF8),
            CE_JSON,
            frozenset({400}),
        ),
        c(
            "unpaired surrogate (escaped)",
            "/",
            b'{"hostname":"h","message":"m\\ud800"}',
            binary_headers(),
            frozenset({400}),
        ),
        c(
            "NUL in message",
            "/api/v2/ingest",
            b'{"hostname":"h","message":"a\\u0000b"}',
            JSON,
            frozenset({400}),
        ),
        c(
            "specversion 0.3, binary",
            "/",
            b'{"hostname":"h","message":"m"}',
            binary_headers(ce_specversion="0.3"),
            frozenset({400}),
        ),
        c(
            "specversion 2.0, binary",
            "/",
            b'{"hostname":"h","message":"m"}',
            binary_headers(ce_specversion="2.0"),
            frozenset({400}),
        ),
        c("specversion 0.3, structured", "/", structured("0.3"), CE_JSON, frozenset({400})),
        c("specversion 2.0, structured", "/", structured("2.0"), CE_JSON, frozenset({400})),
        c("specversion 2.0 (a number)", "/", structured(2.0), CE_JSON, frozenset({400})),
        c(
            "an empty CloudEvents batch",  # batches are on by default; empty is refused
            "/",
            b"[]",
            {"content-type": "application/cloudevents-batch+json"},
            frozenset({400}),
        ),
        c(
            "wrong content type",
            "/api/v2/ingest",
            b"<xml/>",
            {"content-type": "application/xml"},
            frozenset({415}),
        ),
        c(
            "overlong X-Correlation-ID is not echoed",
            "/api/v2/ingest",
            b"{}",
            {**JSON, "X-Correlation-ID": "c" * 4000},
            frozenset({400}),
        ),
        c("GET on the intake", "/api/v2/ingest", b"", {}, frozenset({405}), method="GET"),
        c("unknown route", "/../../etc/passwd", b"{}", JSON, frozenset({404})),
    ]


def raw_request(port: int, payload: bytes | Callable[[socket.socket], None]) -> bytes:
    """Send bytes as they are (requests refuses to send most of these); the answer's head."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            if callable(payload):
                payload(sock)
            else:
                sock.sendall(payload)
        except OSError:
            pass  # the server may close on us mid-send: that is a refusal too
        answer = b""
        try:
            for _ in range(64):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
                if b"\r\n\r\n" in answer:
                    break
        except OSError:
            pass
    return answer


def head(port: int, extra: bytes, body: bytes = b'{"hostname":"h","message":"m"}') -> bytes:
    return (
        b"POST /api/v2/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + b"Content-Length: %d\r\n" % len(body)
        + b"Connection: close\r\n"
        + extra
        + b"\r\n"
        + body
    )


def huge_request_line(sock: socket.socket) -> None:
    sock.sendall(b"GET /")
    chunk = b"a" * MIB
    for _ in range(8):  # 8 MiB of request line
        sock.sendall(chunk)
    sock.sendall(b" HTTP/1.1\r\nHost: x\r\n\r\n")


RAW = [
    ("header injection: obs-fold", b"X-Correlation-ID: abc\r\n Injected: yes\r\n"),
    ("header injection: bare LF", b"X-Correlation-ID: abc\nInjected: yes\r\n"),
    ("header injection: bare CR", b"X-Correlation-ID: abc\rInjected: yes\r\n"),
    ("header injection: NUL", b"X-Correlation-ID: abc\x00Injected: yes\r\n"),
    ("100 KB header", b"X-Big: " + b"a" * 100_000 + b"\r\n"),
    ("500 headers", b"".join(b"X-H%d: v\r\n" % i for i in range(500))),
    ("Content-Length twice", b"Content-Length: 5\r\n"),
    ("Content-Length and chunked", b"Transfer-Encoding: chunked\r\n"),
]


def status_of(answer: bytes) -> int:
    parts = answer.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[0].startswith(b"HTTP/") else 0


def response_header_names(answer: bytes) -> set[str]:
    lines = answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
    return {line.split(b":", 1)[0].strip().lower().decode(errors="replace") for line in lines}


def test_hostile_requests_get_a_4xx_and_nothing_invalid_is_stored(
    settings: Settings, r: redis.Redis, keys: Keys, tmp_path: Path
) -> None:
    pipeline = Pipeline(settings, tmp_path / "logs")
    try:
        url = pipeline.ingest()
        port = int(url.rsplit(":", 1)[1])
        pids = ingest_pid(pipeline.procs["ingest"])
        before = rss_kb(pids)
        seen: dict[str, int] = {}
        with requests.Session() as session:
            for case in cases():
                body = case.body() if callable(case.body) else case.body
                resp = session.request(
                    case.method, url + case.path, data=body, headers=case.headers, timeout=60
                )
                seen[case.name] = resp.status_code
                assert resp.status_code in case.expect, (case.name, resp.status_code, resp.text)
                if case.method == "POST" and resp.status_code != 404:
                    assert resp.headers["content-type"] == "application/json", case.name
                    assert resp.json()["error"], case.name  # a clear reason
                cid = resp.headers.get("X-Correlation-ID", "")
                assert len(cid) <= 128 and cid.isprintable(), case.name
            for name, extra in RAW:
                answer = raw_request(port, head(port, extra))
                seen[name] = status_of(answer)
                assert 400 <= seen[name] < 500, (name, answer[:300])
                assert "injected" not in response_header_names(answer), name
            answer = raw_request(port, huge_request_line)
            seen["8 MiB request line"] = status_of(answer)  # 0: closed on us, also a refusal
            assert seen["8 MiB request line"] in (0, 400, 414), answer[:300]  # refused as such
            after = rss_kb(pids)
            assert session.get(url + "/healthz", timeout=10).status_code == 200
            good = session.post(
                url + "/",
                data=b'{"hostname":"r1","message":"Gi0/1 changed state to down"}',
                headers=binary_headers(),
                timeout=10,
            )
        assert good.status_code == 202, good.text
        assert pipeline.running("ingest")
        entries = r.xrange(keys.events)
        for _, fields in entries:  # only valid envelopes of valid events
            ce = decode(fields[FIELD])
            assert ce["type"] == TYPE_ACCEPTED
            Event.model_validate(ce.data)
        report(
            "hostile HTTP input (ingest)",
            requests=len(seen),
            answers=dict(sorted(seen.items())),
            stored_entries=len(entries),
            rss_kb_before=before,
            rss_kb_after=after,
        )
        assert len(entries) == 1  # the one legitimate event, nothing else
        assert after - before < 64 * 1024  # the 8 MiB line was refused, not buffered
    finally:
        pipeline.stop_all()


def run_cli(
    settings: Settings, *argv: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        mutt(*argv),
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def table_counts(pg: pg8000.native.Connection) -> dict[str, int]:
    return {
        "alert_rules": int(pg.run("SELECT count(*) FROM alert_rules")[0][0]),
        "development_hosts": int(pg.run("SELECT count(*) FROM development_hosts")[0][0]),
        "device_teams": int(pg.run("SELECT count(*) FROM device_teams")[0][0]),
    }


@pytest.mark.usefixtures("demo_rules")
def test_sql_metacharacters_are_data_and_a_regex_bomb_rule_is_linear(
    settings: Settings, r: redis.Redis, keys: Keys, pg: pg8000.native.Connection, tmp_path: Path
) -> None:
    tables_before = table_counts(pg)
    rules_file = tmp_path / "hostile-rules.yaml"
    rules_file.write_text(
        yaml.safe_dump(
            {
                "rules": [
                    {
                        "match_type": "regex",
                        "match_string": BOMB,
                        "priority": 1,
                        "prod_handling": "Ticket_only",
                        "dev_handling": "Ticket_only",
                        "team_assignment": "Bomb",
                    },
                    {
                        "match_type": "contains",
                        "match_string": SQL,
                        "priority": 2,
                        "prod_handling": "Ticket_only",
                        "dev_handling": "Ticket_only",
                        "team_assignment": SQL,
                    },
                ],
                "device_teams": {SQL_HOST: SQL},
            }
        )
    )
    applied = run_cli(
        settings,
        "rules",
        "apply",
        str(rules_file),
        "--reason",
        SQL,
        "--by",
        SQL,
        "--no-prune",
        "--yes",
    )
    assert applied.returncode == 0, applied.stderr
    stored = pg.run("SELECT match_string, team_assignment FROM alert_rules WHERE priority <= 2")
    assert sorted(map(tuple, stored)) == sorted([(BOMB, "Bomb"), (SQL, SQL)])
    assert pg.run("SELECT team_assignment FROM device_teams WHERE hostname = :h", h=SQL_HOST) == [
        [SQL]
    ]

    # The bomb: RE2 matches "a" * n + "!" in linear time. Bounded loops, generous timeouts.
    rules = RuleSet.from_rows([{"id": i, **v} for i, v in read_state(pg).rules.items()])
    assert not rules.rejected
    # 100k characters: above the Event model's own limit (64 KiB), so built unvalidated.
    victim = factory_event(0, "x", hostname="bomb-host").model_copy(
        update={"message": "a" * 100_000 + "!"}
    )
    matched: list[object] = []
    loop = threading.Thread(
        target=lambda: matched.extend(rules.match(victim) for _ in range(50)), daemon=True
    )
    loop.start()
    loop.join(timeout=120)
    assert not loop.is_alive(), "50 matches of a 100k message did not finish in 120 s"
    assert len(matched) == 50
    tested = run_cli(settings, "rules", "test", "--message", "a" * 65_000 + "!")
    assert tested.returncode == 0, tested.stderr
    assert "decision" in tested.stdout
    too_long = run_cli(settings, "rules", "test", "--message", "a" * 100_000 + "!")
    assert too_long.returncode != 0, too_long.stderr  # a clear refusal, not a traceback
    assert too_long.stderr.startswith("mutt: --message: ") and "Traceback" not in too_long.stderr

    pipeline = Pipeline(settings, tmp_path / "logs")
    try:
        url = pipeline.ingest()
        pipeline.workers("alert", "audit")
        for stage in ("alert", "audit"):
            consumer_of(r, keys, stage, pipeline.procs[stage].pid)
        legacy = {
            "hostname": SQL_HOST,
            "message": f"Gi0/1 changed state to down {SQL}",
            "source_type": SQL,
            "syslog_severity": "error",
            SQL: SQL,
            "nested": {"k": [SQL, {"v": SQL}]},
        }
        resp = requests.post(
            url + "/api/v2/ingest",
            data=orjson.dumps(legacy),
            headers={**JSON, "Idempotency-Key": SQL, "X-Correlation-ID": "sql-'--"},
            timeout=10,
        )
        assert resp.status_code == 202, resp.text
        (legacy_id,) = resp.json()["event_ids"]
        resp = requests.post(
            url + "/",
            data=orjson.dumps({"hostname": SQL_HOST, "message": f"{SQL} changed state to down"}),
            headers=binary_headers(ce_id=SQL, ce_source=f"/{SQL}"),
            timeout=10,
        )
        assert resp.status_code == 202, resp.text
        (ce_id,) = resp.json()["event_ids"]
        resp = requests.post(
            url + "/api/v2/ingest",
            data=orjson.dumps({"hostname": "bomb-host", "message": "a" * 65_000 + "!"}),
            headers=JSON,
            timeout=30,
        )
        assert resp.status_code == 202, resp.text
        assert streams.wait_drained(r, [(keys.events, "alert"), (keys.audit, "audit")], 60), (
            pipeline.tail()
        )
        assert pipeline.running("alert") and pipeline.running("audit")

        def audit_rows() -> list[list[Any]]:
            return pg.run(
                "SELECT event_id::text, hostname, team, event FROM event_audit_log"
                " WHERE event_id = ANY(CAST(:ids AS uuid[]))",
                ids=[legacy_id, ce_id],
            )

        assert wait_until(lambda: len(audit_rows()) == 2, 30)
        rows = {row[0]: row for row in audit_rows()}
        _, host, team, event = rows[legacy_id]
        assert host == SQL_HOST
        assert team == SQL  # the SQL rule (priority 2) matched the SQL message
        assert event["message"] == legacy["message"]
        assert event["source_type"] == SQL
        assert event["attributes"] == {SQL: SQL, "nested": {"k": [SQL, {"v": SQL}]}}
        _, host, _, event = rows[ce_id]
        assert (host, event["id"], event["source"]) == (SQL_HOST, SQL, f"/{SQL}")

        found = run_cli(settings, "audit", "events", "--host", SQL_HOST, "--json")
        assert found.returncode == 0, found.stderr
        assert {orjson.loads(line)["event_id"] for line in found.stdout.splitlines()} >= {
            legacy_id,
            ce_id,
        }
        listed = run_cli(settings, "rules", "list", "--json")
        assert SQL in listed.stdout
        tables_after = table_counts(pg)
        report(
            "SQL metacharacters in every field; (a+)+$ rule",
            events=3,
            stored_verbatim=2,
            tables_before=tables_before,
            tables_after=tables_after,
            bomb_matches_of_100k_chars=len(matched),
        )
        assert tables_after == {
            "alert_rules": tables_before["alert_rules"] + 2,
            "development_hosts": tables_before["development_hosts"],
            "device_teams": tables_before["device_teams"] + 1,
        }
    finally:
        pipeline.stop_all()
        pg.run("DELETE FROM device_teams WHERE hostname = :h", h=SQL_HOST)
        pg.run("DELETE FROM config_audit_log WHERE changed_by = :by", by=SQL)
