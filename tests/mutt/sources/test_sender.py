"""The sources' sender against the real ingest (in this process) and real Redis:
batches, dedup of a resent batch, 429 / 415 / 413 / 400 / 401, a full buffer, the grace period."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import redis

from mutt.sources.events import ReceiveClock, syslog_event
from mutt.sources.sender import (
    BatchSender,
    IngestClient,
    SenderConfig,
    retry_after,
)
from mutt.sources.syslog_parse import parse_syslog
from shared.broker.keys import Keys
from shared.config import Settings
from shared.dynconfig import DynamicConfig
from shared.secrets import Secrets
from tests.support.sources import API_KEY, ingest_server, published, wait_for

CLOCK = ReceiveClock()


def event(text: str, source: str = "/mutt/syslog/test") -> bytes:
    raw = f"<187>Jan 20 12:00:00 core-rtr-01 %LINK-3-UPDOWN: {text}".encode()
    parsed = parse_syslog(raw)
    assert parsed is not None
    doc = syslog_event(parsed, raw, peer="10.0.0.1", source=source, received_ns=CLOCK.now_ns())
    return orjson.dumps(doc)


@pytest.fixture
def batch_settings(settings: Settings) -> Settings:
    return settings  # ingest takes CloudEvents batches by default


@pytest.fixture
def ingest(batch_settings: Settings) -> Iterator[str]:
    with ingest_server(batch_settings) as url:
        yield url


def messages(r: redis.Redis, keys: Keys) -> list[str]:
    return [str(d["message"]) for d in published(r, keys)]


def test_a_batch_is_accepted_and_sending_it_again_is_deduplicated(
    ingest: str, r: redis.Redis, keys: Keys
) -> None:
    client = IngestClient(ingest, None)
    bodies = [event(f"batch {i}") for i in range(3)]
    first = client.post(bodies, "batch")
    assert (first.kind, first.accepted, first.duplicates) == ("done", 3, 0)
    again = client.post(bodies, "batch")  # the answer was lost: the sender tries again
    assert (again.kind, again.accepted, again.duplicates) == ("done", 0, 3)
    assert len(published(r, keys)) == 3
    data = published(r, keys)[0]
    assert data["hostname"] == "core-rtr-01"
    assert data["attributes"]["cisco_mnemonic"] == "UPDOWN"


def test_the_sender_batches_by_size_and_by_flush_interval(
    ingest: str, r: redis.Redis, keys: Keys
) -> None:
    sender = BatchSender(IngestClient(ingest, None), SenderConfig(batch_size=5, flush_interval=0.3))
    sender.start()
    for i in range(7):
        assert sender.offer(event(f"flush {i}"))
    wait_for(lambda: published(r, keys), lambda d: "flush" in str(d["message"]), count=7)
    stats = sender.close(2.0)
    assert (stats.accepted, stats.dropped, stats.lost) == (7, 0, 0)
    assert messages(r, keys) == [f"%LINK-3-UPDOWN: flush {i}" for i in range(7)]  # in order


def test_429_waits_for_retry_after_and_loses_nothing(
    ingest: str, r: redis.Redis, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    dyn = DynamicConfig(r, keys.config)
    dyn.set("ingest_rate_limit", "2")
    dyn.set("ingest_rate_window_ms", "1000")
    sender = BatchSender(
        IngestClient(ingest, None), SenderConfig(batch_size=2, flush_interval=0.05)
    )
    sender.start()
    started = time.monotonic()
    for i in range(3):
        sender.offer(event(f"limited {i}"))
    with caplog.at_level(logging.WARNING):
        wait_for(lambda: published(r, keys), lambda d: True, count=3, timeout=15)
    assert time.monotonic() - started >= 1.0  # Retry-After: 1 was honoured, not hammered
    stats = sender.close(1.0)
    assert stats.retries >= 1 and stats.accepted == 3 and stats.dropped == 0
    assert "HTTP 429" in caplog.text


def test_when_ingest_refuses_batches_it_falls_back_to_one_event_per_request(
    settings: Settings, r: redis.Redis, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    refusing = settings.model_copy(update={"ingest_cloudevents_batch": False})
    with ingest_server(refusing) as url, caplog.at_level(logging.WARNING):
        sender = BatchSender(IngestClient(url, None), SenderConfig(flush_interval=0.05))
        sender.start()
        for i in range(3):
            sender.offer(event(f"single {i}"))
        wait_for(lambda: published(r, keys), lambda d: True, count=3)
        assert sender.mode == "single"
        sender.close(1.0)
    assert "MUTT_INGEST_CLOUDEVENTS_BATCH=false" in caplog.text


def test_413_halves_the_batch(batch_settings: Settings, r: redis.Redis, keys: Keys) -> None:
    small = batch_settings.model_copy(update={"ingest_max_body_bytes": 2048})
    with ingest_server(small) as url:
        sender = BatchSender(IngestClient(url, None), SenderConfig(batch_size=8, flush_interval=9))
        sender.start()
        for i in range(8):
            sender.offer(event(f"big {i}"))
        stats = sender.close(10.0)  # close sends at once, whatever the flush interval
    assert (stats.accepted, stats.lost) == (8, 0)
    assert len(published(r, keys)) == 8


def test_refused_events_are_counted_and_the_rest_accepted(
    ingest: str, r: redis.Redis, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    bad = orjson.dumps(
        {"specversion": "1.0", "id": "x", "source": "/s", "type": "io.mutt.syslog.v1", "data": 5}
    )
    sender = BatchSender(IngestClient(ingest, None), SenderConfig(flush_interval=0.05))
    sender.start()
    sender.offer(event("good 1"))
    sender.offer(bad)
    sender.offer(event("good 2"))
    with caplog.at_level(logging.ERROR):
        stats = sender.close(5.0)
    assert (stats.accepted, stats.rejected, stats.lost) == (2, 1, 0)
    assert "refused 1 of 3 events" in caplog.text and "[1] data" in caplog.text
    assert len(published(r, keys)) == 2


def test_the_first_key_of_ingest_api_keys_is_presented(
    batch_settings: Settings, tmp_path: Path, r: redis.Redis, keys: Keys
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "ingest_api_keys").write_text(f"{API_KEY}\nolder-key\n")
    with ingest_server(batch_settings.model_copy(update={"secrets_dir": secrets})) as url:
        assert IngestClient(url, Secrets(secrets)).post([event("key")], "batch").kind == "done"
        anonymous = IngestClient(url, None).post([event("no key")], "batch")
        assert anonymous.kind == "retry" and "HTTP 401" in anonymous.detail
    assert messages(r, keys) == ["%LINK-3-UPDOWN: key"]


def test_a_full_buffer_drops_counts_and_logs_and_close_counts_the_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # After its first failure the sender backs off for an hour: only the end of close's
    # grace period can wake it. (Refused connections fail at once whatever the timeout;
    # the long one only gives close a long wait for the thread, see below.)
    client = IngestClient("http://127.0.0.1:9/", None, timeout=30)
    config = SenderConfig(
        batch_size=2, buffer_size=3, flush_interval=0.05, min_backoff=3600, max_backoff=3600
    )
    sender = BatchSender(client, config)
    sender.start()
    with caplog.at_level(logging.WARNING):
        accepted = [sender.offer(event(f"drop {i}")) for i in range(5)]
        assert accepted == [True, True, True, False, False]
        assert not sender.has_room()
        wait_for(lambda: [{}] if sender.stats.retries else [], lambda d: True, timeout=30)
        assert sender.readiness()["ingest"].startswith("failing since")
        stats = sender.close(0.5)
    # The thread ended during close's wait for it: the grace period cut the hour short.
    assert not sender.alive()
    assert sender.stats.retries == 1  # and it did not try again meanwhile
    assert (stats.dropped, stats.lost, stats.accepted) == (2, 3, 0)
    assert "buffer full" in caplog.text
    assert "Connection refused" in caplog.text
    assert "3 events were still waiting" in caplog.text


def test_retry_after_takes_seconds_or_an_http_date() -> None:
    now = datetime(2025, 1, 20, 12, 0, 0, tzinfo=UTC)
    assert retry_after("5") == 5.0
    assert retry_after("Mon, 20 Jan 2025 12:00:30 GMT", now) == 30.0
    assert retry_after("Mon, 20 Jan 2025 11:00:00 GMT", now) == 0.0
    assert retry_after("soon") is None
    assert retry_after(None) is None


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="positive"):
        SenderConfig(batch_size=0)
    with pytest.raises(ValueError, match="flush_interval"):
        SenderConfig(flush_interval=0)
