"""Dead letters: reading them, and the one race-free replay and purge.

A dead letter is the original stream entry (its ``ce`` field) plus why it
failed (``dlq_*`` fields, see ``shared.broker.streams.dead_letter_fields``).
Replay puts only the original CloudEvent back into the stage's input stream,
so it is processed as if new: for forward the attempt counter
(``muttattempt``) is dropped so retries start over, while ``muttsinks`` is
kept so only the sink that failed is tried again (sinks that succeeded have
delivered markers anyway).

Each entry moves with one server-side script (``dlq_replay.lua``) that
deletes it from the DLQ and, only if it was still there, appends it to the
input stream. That is as atomic as ``MULTI`` (a crash leaves the entry in
exactly one place) and, unlike ``MULTI``, two replays at once (an operator,
the janitor, the operator API) cannot both publish it. This module is the
only implementation: ``mutt dlq``, the janitor's ``replay`` task and the
operator API all use it.

With stream partitions each partition has its own DLQs, next to its input
streams (a replay moves an entry within one hash tag). Ids are per stream,
so with several partitions an entry is named ``<id>@<k>`` (its ``ref``); a
bare id is looked up in every partition.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from shared.broker.keys import Keys
from shared.broker.stages import CONSUMING_STAGES, input_stream
from shared.envelope import FIELD, EnvelopeError, decode
from shared.lua import LuaScript, run_all

STAGES = ("forward", "alert", "audit")
assert set(STAGES) == set(CONSUMING_STAGES)
EXT_ATTEMPT = "muttattempt"  # forward's attempt counter (functions.forward.delivery)
PAGE = 500
PROGRESS_EVERY = 1000

_REPLAY = LuaScript.from_files("shared/broker/dlq_replay.lua")
# A dead letter's reference: its entry id, and ``@<partition>`` when there are several.
ENTRY_ID = re.compile(r"^(\d+(?:-\d+)?)(?:@(\d+))?$")


class DlqInputError(ValueError):
    """A selection that cannot be applied (an id that is not an entry id, an ambiguous id)."""


class AmbiguousEntry(DlqInputError):
    """An id found in more than one stage's DLQ: the caller must name the stage."""

    def __init__(self, entry_id: str, stages: Sequence[str]) -> None:
        super().__init__(f"entry {entry_id} is in more than one DLQ ({', '.join(stages)})")
        self.entry_id = entry_id
        self.stages = tuple(stages)


def stream_id_ms(entry_id: str) -> int:
    """The millisecond timestamp inside a stream entry id (``1700000000000-3``)."""
    return int(entry_id.split("-", 1)[0])


def _id_order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def text_of(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class DeadLetter:
    """One DLQ entry with its fields decoded for display."""

    stage: str
    id: str
    fields: dict[bytes, bytes]
    partition: int = 0
    partitions: int = 1

    @property
    def ref(self) -> str:
        """The id people use: ``<id>``, or ``<id>@<k>`` when there are several partitions."""
        return self.id if self.partitions == 1 else f"{self.id}@{self.partition}"

    def get(self, name: str) -> str:
        return text_of(self.fields.get(name.encode(), b""))

    @property
    def reason(self) -> str:
        return self.get("dlq_reason")

    def cloudevent(self) -> dict[str, Any] | None:
        """The original CloudEvent as a dict, or None when it is not usable JSON."""
        raw = self.fields.get(FIELD)
        if not raw:
            return None
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        return doc if isinstance(doc, dict) else None

    def subject(self) -> str:
        """What the entry was about: the alert summary or the event's host and message."""
        ce = self.cloudevent()
        if ce is None:
            return "(no usable CloudEvent)"
        data = ce.get("data")
        if isinstance(data, dict):
            if "summary" in data:
                sinks = ce.get("muttsinks")
                return f"{data['summary']}" + (f" [sink {sinks}]" if sinks else "")
            if "hostname" in data:
                return f"{data['hostname']}: {data.get('message', '')}"
        return f"{ce.get('type', '?')} {ce.get('id', '?')}"

    def as_json(self, *, full: bool) -> dict[str, Any]:
        ce = self.cloudevent()
        doc: dict[str, Any] = {
            "id": self.ref,
            "stage": self.stage,
            "partition": self.partition,
            "reason": self.reason,
            "failed_at": self.get("dlq_failed_at"),
            "deliveries": int(d) if (d := self.get("dlq_deliveries")).isdigit() else None,
            "origin": self.get("dlq_origin"),
            "origin_id": self.get("dlq_origin_id"),
            "ce_type": ce.get("type") if ce else None,
            "ce_id": ce.get("id") if ce else None,
            "subject": self.subject(),
        }
        if full:
            doc["ce"] = ce if ce is not None else self.get(FIELD.decode())
        return doc


def iter_dlq(
    r: redis.Redis, keys: Keys, stage: str, *, newest_first: bool = False
) -> Iterator[DeadLetter]:
    """Every entry of one stage's DLQs (all partitions, merged in id order), a page at a
    time (entries may be deleted meanwhile)."""
    parts = [_iter_one(r, part, stage, newest_first) for part in keys.all_partitions()]
    if len(parts) == 1:
        return parts[0]
    return heapq.merge(*parts, key=lambda e: _id_order(e.id), reverse=newest_first)


def dlq_depth(r: redis.Redis, keys: Keys, stage: str) -> int:
    """Dead letters of ``stage`` in all partitions."""
    return sum(int(r.xlen(part.dlq(stage))) for part in keys.all_partitions())


def _iter_one(r: redis.Redis, keys: Keys, stage: str, newest_first: bool) -> Iterator[DeadLetter]:
    stream = keys.dlq(stage)
    cursor: str | None = None
    while True:
        if newest_first:
            page: Any = r.xrevrange(stream, f"({cursor}" if cursor else "+", "-", count=PAGE)
        else:
            page = r.xrange(stream, f"({cursor}" if cursor else "-", "+", count=PAGE)
        for entry_id, fields in page:
            yield DeadLetter(stage, text_of(entry_id), fields, keys.index, keys.partitions)
        if len(page) < PAGE:
            return
        cursor = text_of(page[-1][0])


def find(r: redis.Redis, keys: Keys, stages: Sequence[str], ref: str) -> list[DeadLetter]:
    """The entries named ``ref`` (``<id>``, or ``<id>@<partition>``) in the given stages' DLQs."""
    match = ENTRY_ID.match(ref)
    if not match:
        raise DlqInputError(
            f"{ref!r} is not a stream entry id (like 1714567890123-0, or 1714567890123-0@2"
            " in partition 2)"
        )
    entry_id, partition = match.group(1), match.group(2)
    if partition is None:
        parts = keys.all_partitions()
    elif int(partition) < keys.partitions:
        parts = [keys.partition(int(partition))]
    else:
        raise DlqInputError(f"{ref!r}: there is no partition {partition} (MUTT_PARTITIONS)")
    found = []
    for stage in stages:
        for part in parts:
            rows: Any = r.xrange(part.dlq(stage), entry_id, entry_id)
            found += [
                DeadLetter(stage, text_of(eid), fields, part.index, part.partitions)
                for eid, fields in rows
            ]
    return found


@dataclass(frozen=True)
class Selection:
    """Which dead letters a replay or purge acts on."""

    stages: tuple[str, ...]
    ids: tuple[str, ...] = ()
    reason_contains: str | None = None
    older_than_ms: int | None = None  # entries added before this server time (ms)

    def matches(self, entry: DeadLetter) -> bool:
        if self.reason_contains and self.reason_contains.lower() not in entry.reason.lower():
            return False
        return self.older_than_ms is None or stream_id_ms(entry.id) < self.older_than_ms

    def _by_id(
        self, r: redis.Redis, keys: Keys, missing: Callable[[list[str]], None]
    ) -> list[DeadLetter]:
        """The named entries; an id found in two stages' DLQs needs ``--stage``."""
        found: list[DeadLetter] = []
        absent: list[str] = []
        for entry_id in self.ids:
            got = find(r, keys, self.stages, entry_id)
            if len(got) > 1:
                places = [e.stage if e.partitions == 1 else f"{e.stage} {e.ref}" for e in got]
                raise AmbiguousEntry(entry_id, places)
            if not got:
                absent.append(entry_id)
            found += got
        if absent:
            missing(absent)
        return found

    def entries(
        self,
        r: redis.Redis,
        keys: Keys,
        missing: Callable[[list[str]], None] = lambda ids: None,
    ) -> Iterator[DeadLetter]:
        """The selected entries; ``missing`` hears of named ids found in no DLQ."""
        if self.ids:
            yield from (e for e in self._by_id(r, keys, missing) if self.matches(e))
            return
        for stage in self.stages:
            yield from (e for e in iter_dlq(r, keys, stage) if self.matches(e))


def replay_body(stage: str, entry: DeadLetter) -> bytes | None:
    """The CloudEvent to publish again, or None when the entry has none a stage could take."""
    try:
        decode(entry.fields.get(FIELD, b""))  # the check the worker applies on read
    except EnvelopeError:
        return None
    ce = entry.cloudevent()
    if ce is None:
        return None
    if stage == "forward":
        ce.pop(EXT_ATTEMPT, None)  # retries start over; muttsinks stays: only that sink
    return orjson.dumps(ce)


@dataclass
class ReplayResult:
    replayed: int = 0
    skipped: int = 0  # no usable CloudEvent: left in the DLQ
    vanished: int = 0  # replayed or purged by someone else meanwhile


Progress = Callable[[str], None]


def _quiet(text: str) -> None:
    return None


def replay(
    r: redis.Redis,
    keys: Keys,
    selection: Selection,
    *,
    dry_run: bool = False,
    progress: Progress = _quiet,
    missing: Callable[[list[str]], None] = lambda ids: None,
) -> ReplayResult:
    """Move the selected entries back to their input streams, each atomically."""
    result = ReplayResult()
    batch: list[tuple[DeadLetter, bytes]] = []
    done = 0

    def flush() -> None:
        nonlocal done
        calls: list[tuple[LuaScript, list[str], list[str | bytes]]] = []
        for entry, body in batch:
            part = keys.partition(entry.partition)
            calls.append(
                (
                    _REPLAY,
                    [part.dlq(entry.stage), input_stream(part, entry.stage)],
                    [entry.id, body],
                )
            )
        for new_id in run_all(r, calls):
            if new_id:
                result.replayed += 1
            else:
                result.vanished += 1
        before, done = done, done + len(batch)
        if done // PROGRESS_EVERY > before // PROGRESS_EVERY:
            progress(f"replay: {done} entries processed ({result.replayed} replayed)")
        batch.clear()

    for entry in selection.entries(r, keys, missing):
        body = replay_body(entry.stage, entry)
        if body is None:
            result.skipped += 1
            continue
        if dry_run:
            result.replayed += 1
            continue
        batch.append((entry, body))
        if len(batch) >= PAGE:
            flush()
    if batch:
        flush()
    return result


def purge(
    r: redis.Redis,
    keys: Keys,
    selection: Selection,
    *,
    dry_run: bool = False,
    progress: Progress = _quiet,
    missing: Callable[[list[str]], None] = lambda ids: None,
) -> int:
    """Delete the selected entries for good; return how many were deleted."""
    if not selection.ids and not selection.reason_contains and not dry_run:
        if selection.older_than_ms is None:  # --all
            return _delete_all(r, keys, selection.stages)
        return sum(
            int(r.xtrim(part.dlq(s), minid=str(selection.older_than_ms), approximate=False))
            for s in selection.stages
            for part in keys.all_partitions()
        )
    deleted = 0
    batch: list[DeadLetter] = []

    def flush() -> None:
        nonlocal deleted
        pipe = r.pipeline(transaction=False)
        for entry in batch:
            pipe.xdel(keys.partition(entry.partition).dlq(entry.stage), entry.id)
        deleted += sum(int(n) for n in pipe.execute())
        if deleted // PROGRESS_EVERY > (deleted - len(batch)) // PROGRESS_EVERY:
            progress(f"purge: {deleted} entries deleted")
        batch.clear()

    for entry in selection.entries(r, keys, missing):
        if dry_run:
            deleted += 1
            continue
        batch.append(entry)
        if len(batch) >= PAGE:
            flush()
    if batch:
        flush()
    return deleted


def _delete_all(r: redis.Redis, keys: Keys, stages: Sequence[str]) -> int:
    """Empty whole DLQs, keeping the streams (and any consumer groups) in place."""
    return sum(
        int(r.xtrim(part.dlq(s), maxlen=0, approximate=False))
        for s in stages
        for part in keys.all_partitions()
    )
