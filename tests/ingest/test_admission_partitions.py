"""Ingest with stream partitions: each event in its device's partition, in order, admitted
whole or refused whole, deduplicated, with the backlog of all partitions counted."""

from __future__ import annotations

import time

import orjson
import pytest
import redis
from flask.testing import FlaskClient

from functions.ingest import app as ingest_app
from functions.ingest.admission import Admitter
from shared.broker import streams
from shared.broker.keys import Keys
from shared.broker.partitions import partition_of
from shared.config import Settings
from shared.context import set_context
from shared.dynconfig import DynamicConfig
from shared.envelope import FIELD, decode
from tests.ingest.conftest import make_client
from tests.support.factories import event

PARTITIONS = 6
SOURCE = "/rtr"


@pytest.fixture
def pkeys(keys: Keys) -> Keys:
    return Keys(keys.namespace, partitions=PARTITIONS)


def post(client: FlaskClient, docs: list[dict[str, object]]) -> int:
    """A CloudEvents batch of syslog events from ``SOURCE``."""
    body = [
        {
            "specversion": "1.0",
            "id": str(doc.pop("id")),
            "source": SOURCE,
            "type": "io.mutt.syslog.v1",
            "datacontenttype": "application/json",
            "data": doc,
        }
        for doc in docs
    ]
    resp = client.post(
        "/", data=orjson.dumps(body), headers={"content-type": "application/cloudevents-batch+json"}
    )
    return resp.status_code


def stream_events(r: redis.Redis, stream: str) -> list[tuple[str, str]]:
    """(hostname, inbound id) of every event in ``stream``, in stream order."""
    return [
        (decode(f[FIELD]).data["hostname"], decode(f[FIELD]).data["id"])
        for _, f in r.xrange(stream)
    ]


def test_each_device_lands_in_its_partition_in_order(
    r: redis.Redis, pkeys: Keys, settings: Settings
) -> None:
    settings = settings.model_copy(
        update={"partitions": PARTITIONS, "ingest_cloudevents_batch": True}
    )
    client = make_client(settings)
    try:
        hosts = [f"rtr-{n}" for n in range(24)]
        for round_ in range(3):
            docs: list[dict[str, object]] = [
                {"id": f"{h}-{round_}", "hostname": h, "message": f"m {round_}"} for h in hosts
            ]
            assert post(client, docs) == 202
        assert post(client, [{"id": "rtr-3-1", "hostname": "rtr-3", "message": "again"}]) == 202
    finally:
        set_context(None)
        ingest_app._ingest = None
    seen: dict[str, list[str]] = {}
    for part in pkeys.all_partitions():
        for host, ce_id in stream_events(r, part.events):
            assert partition_of(SOURCE, host, PARTITIONS) == part.index, host
            seen.setdefault(host, []).append(ce_id)
    assert seen == {h: [f"{h}-0", f"{h}-1", f"{h}-2"] for h in hosts}  # in order, no duplicate
    assert sum(1 for p in pkeys.all_partitions() if r.xlen(p.events)) >= 4  # spread out


def test_a_request_over_several_partitions_is_admitted_whole_or_refused_whole(
    r: redis.Redis, pkeys: Keys
) -> None:
    dyn = DynamicConfig(r, pkeys.config)
    dyn.set("ingest_rate_limit", "30")
    dyn.set("ingest_rate_window_ms", "60000")
    adm = Admitter(r, pkeys, dyn)
    first = [event(n, hostname=f"h{n}") for n in range(20)]
    admitted = adm.admit(first)
    assert not admitted.refused and admitted.published == 20
    refused = adm.admit([event(n, hostname=f"h{n}") for n in range(100, 120)])  # 10 would fit
    assert refused.refused and refused.retry_after_ms > 0
    total = sum(int(r.xlen(p.events)) for p in pkeys.all_partitions())
    assert total == 20
    again = adm.admit([*first[:5], event(200, hostname="h200")])
    assert again.published == 1
    assert again.duplicates == (True, True, True, True, True, False)


def test_the_backlog_counts_every_partition(r: redis.Redis, pkeys: Keys) -> None:
    dyn = DynamicConfig(r, pkeys.config)
    dyn.set("ingest_max_pending", "1000")
    for n in (1, 4):
        part = pkeys.partition(n)
        streams.ensure_group(r, part.events, "alert")
        streams.publish(r, part.events, [{FIELD: b"{}"}] * 600)
    adm = Admitter(r, pkeys, dyn)
    assert adm.overloaded() == 1200


def test_without_the_replicas_asked_for_ingest_answers_503(
    r: redis.Redis, settings: Settings
) -> None:
    """The suite's Redis has no replica: waiting for one refuses, never acknowledges."""
    settings = settings.model_copy(update={"ingest_cloudevents_batch": True})
    dyn = DynamicConfig(r, Keys(settings.namespace).config)
    dyn.set("ingest_wait_replicas", "1")
    dyn.set("ingest_wait_timeout_ms", "20")
    client = make_client(settings)
    try:
        assert post(client, [{"id": "w-1", "hostname": "rtr-1", "message": "m"}]) == 503
        dyn.set("ingest_wait_replicas", "0")
        time.sleep(1.1)  # the instance re-reads dynamic settings within a second
        assert post(client, [{"id": "w-2", "hostname": "rtr-1", "message": "m"}]) == 202
    finally:
        set_context(None)
        ingest_app._ingest = None
