"""``mutt dlq``: inspect, replay and purge dead letters.

A dead letter is the original stream entry (its ``ce`` field) plus why it
failed (``dlq_*`` fields, see ``shared.broker.streams.dead_letter_fields``).
Replay puts only the original CloudEvent back into the stage's input stream,
so it is processed as if new: for forward the attempt counter
(``muttattempt``) is dropped so retries start over, while ``muttsinks`` is
kept so only the sink that failed is tried again (sinks that succeeded have
delivered markers anyway).

Each entry moves with one server-side script that deletes it from the DLQ
and, only if it was still there, appends it to the input stream. That is as
atomic as ``MULTI`` (a crash leaves the entry in exactly one place) and,
unlike ``MULTI``, two operators replaying at once cannot both publish it.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from mutt.commands.common import (
    InputError,
    NotFoundError,
    RefusedError,
    add_command,
    guarded,
    json_line,
    open_context,
    parse_duration,
    render_table,
    say,
    shorten,
    stream_id_ms,
)
from shared.broker.keys import Keys
from shared.envelope import FIELD, EnvelopeError, decode

STAGES = ("forward", "alert", "audit")
EXT_ATTEMPT = "muttattempt"  # functions.forward.delivery.EXT_ATTEMPT
PAGE = 500
PROGRESS_EVERY = 1000

# KEYS[1] the DLQ, KEYS[2] the stage's input stream (same hash tag)
# ARGV[1] the dead letter's id, ARGV[2] the CloudEvent to publish
_REPLAY = """
if redis.call('XDEL', KEYS[1], ARGV[1]) == 1 then
  return redis.call('XADD', KEYS[2], '*', 'ce', ARGV[2])
end
return false
"""

EPILOG = """examples:
  mutt dlq list
  mutt dlq list --stage forward --reason-contains pagerduty
  mutt dlq show 1714567890123-0
  mutt dlq replay --stage forward --reason-contains 'gave up' --dry-run
  mutt dlq replay --stage forward --all
  mutt dlq purge --stage alert --older-than 7d --yes
"""

_ENTRY_ID = re.compile(r"^\d+(-\d+)?$")


def input_stream(keys: Keys, stage: str) -> str:
    """Where a stage reads from: replayed entries go back there."""
    return {"forward": keys.alerts, "alert": keys.events, "audit": keys.audit}[stage]


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class DeadLetter:
    """One DLQ entry with its fields decoded for display."""

    stage: str
    id: str
    fields: dict[bytes, bytes]

    def get(self, name: str) -> str:
        return _text(self.fields.get(name.encode(), b""))

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
            "id": self.id,
            "stage": self.stage,
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
    """Every entry of one stage's DLQ, a page at a time (entries may be deleted meanwhile)."""
    stream = keys.dlq(stage)
    cursor: str | None = None
    while True:
        if newest_first:
            page: Any = r.xrevrange(stream, f"({cursor}" if cursor else "+", "-", count=PAGE)
        else:
            page = r.xrange(stream, f"({cursor}" if cursor else "-", "+", count=PAGE)
        for entry_id, fields in page:
            yield DeadLetter(stage, _text(entry_id), fields)
        if len(page) < PAGE:
            return
        cursor = _text(page[-1][0])


def find(r: redis.Redis, keys: Keys, stages: Sequence[str], entry_id: str) -> list[DeadLetter]:
    """The entries with this id in the given stages' DLQs."""
    if not _ENTRY_ID.match(entry_id):
        raise InputError(f"{entry_id!r} is not a stream entry id (like 1714567890123-0)")
    found = []
    for stage in stages:
        rows: Any = r.xrange(keys.dlq(stage), entry_id, entry_id)
        found += [DeadLetter(stage, _text(eid), fields) for eid, fields in rows]
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

    def _by_id(self, r: redis.Redis, keys: Keys) -> list[DeadLetter]:
        """The named entries; an id found in two stages' DLQs needs ``--stage``."""
        found: list[DeadLetter] = []
        missing = []
        for entry_id in self.ids:
            got = find(r, keys, self.stages, entry_id)
            if len(got) > 1:
                stages = ", ".join(e.stage for e in got)
                raise InputError(
                    f"entry {entry_id} is in more than one DLQ ({stages}); add --stage"
                )
            if not got:
                missing.append(entry_id)
            found += got
        if missing:
            say(f"not found in the {', '.join(self.stages)} DLQ: {', '.join(missing)}")
        return found

    def entries(self, r: redis.Redis, keys: Keys) -> Iterator[DeadLetter]:
        if self.ids:
            yield from (e for e in self._by_id(r, keys) if self.matches(e))
            return
        for stage in self.stages:
            yield from (e for e in iter_dlq(r, keys, stage) if self.matches(e))


def _stages(args: argparse.Namespace) -> tuple[str, ...]:
    return (args.stage,) if args.stage else STAGES


def _server_ms(r: redis.Redis) -> int:
    seconds, micros = r.time()
    return int(seconds) * 1000 + int(micros) // 1000


def _selection(args: argparse.Namespace, r: redis.Redis) -> Selection:
    older = getattr(args, "older_than", None)
    chosen = args.ids or args.all or args.reason_contains or older
    if not chosen:
        raise InputError(
            "say which entries: --ids ID..., --reason-contains TEXT"
            + (", --older-than AGE" if hasattr(args, "older_than") else "")
            + " or --all"
        )
    if args.all and args.ids:
        raise InputError("--all and --ids exclude each other")
    cutoff = None
    if older:
        age = parse_duration(older, "--older-than")
        cutoff = _server_ms(r) - int(age.total_seconds() * 1000)
    return Selection(
        stages=_stages(args),
        ids=tuple(args.ids or ()),
        reason_contains=args.reason_contains,
        older_than_ms=cutoff,
    )


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


def replay(
    r: redis.Redis, keys: Keys, selection: Selection, *, dry_run: bool = False
) -> ReplayResult:
    """Move the selected entries back to their input streams, each atomically."""
    script = r.register_script(_REPLAY)
    result = ReplayResult()
    batch: list[tuple[DeadLetter, bytes]] = []
    done = 0

    def flush() -> None:
        nonlocal done
        pipe = r.pipeline(transaction=False)
        for entry, body in batch:
            script(
                keys=[keys.dlq(entry.stage), input_stream(keys, entry.stage)],
                args=[entry.id, body],
                client=pipe,
            )
        for new_id in pipe.execute():
            if new_id:
                result.replayed += 1
            else:
                result.vanished += 1
        before, done = done, done + len(batch)
        if done // PROGRESS_EVERY > before // PROGRESS_EVERY:
            say(f"replay: {done} entries processed ({result.replayed} replayed)")
        batch.clear()

    for entry in selection.entries(r, keys):
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


def purge(r: redis.Redis, keys: Keys, selection: Selection, *, dry_run: bool = False) -> int:
    """Delete the selected entries for good; return how many were deleted."""
    if not selection.ids and not selection.reason_contains and not dry_run:
        if selection.older_than_ms is None:  # --all
            return _delete_all(r, keys, selection.stages)
        return sum(
            int(r.xtrim(keys.dlq(s), minid=str(selection.older_than_ms), approximate=False))
            for s in selection.stages
        )
    deleted = 0
    batch: list[DeadLetter] = []

    def flush() -> None:
        nonlocal deleted
        pipe = r.pipeline(transaction=False)
        for entry in batch:
            pipe.xdel(keys.dlq(entry.stage), entry.id)
        deleted += sum(int(n) for n in pipe.execute())
        if deleted // PROGRESS_EVERY > (deleted - len(batch)) // PROGRESS_EVERY:
            say(f"purge: {deleted} entries deleted")
        batch.clear()

    for entry in selection.entries(r, keys):
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
    return sum(int(r.xtrim(keys.dlq(s), maxlen=0, approximate=False)) for s in stages)


# ---------------------------------------------------------------- commands


def _table(entries: Sequence[DeadLetter]) -> str:
    rows = [
        (
            e.id,
            e.stage,
            e.get("dlq_failed_at")[:19] + "Z" if e.get("dlq_failed_at") else "-",
            e.get("dlq_deliveries") or "-",
            shorten(e.subject(), 50),
            shorten(e.reason, 60),
        )
        for e in entries
    ]
    return render_table(["ID", "STAGE", "FAILED AT", "TRIES", "SUBJECT", "REASON"], rows)


@guarded
def cmd_list(args: argparse.Namespace) -> int:
    ctx = open_context()
    r, keys = ctx.redis, ctx.keys
    if args.limit < 1:
        raise InputError("--limit must be at least 1")
    shown: list[DeadLetter] = []
    for stage in _stages(args):
        taken = 0
        for entry in iter_dlq(r, keys, stage, newest_first=True):
            if args.reason_contains and args.reason_contains.lower() not in entry.reason.lower():
                continue
            shown.append(entry)
            taken += 1
            if taken >= args.limit:
                break
    shown.sort(key=lambda e: (stream_id_ms(e.id), e.id), reverse=True)
    shown = shown[: args.limit]
    if args.json:
        for entry in shown:
            print(json_line(entry.as_json(full=False)))
        return 0
    sizes = {s: int(r.xlen(keys.dlq(s))) for s in _stages(args)}
    print(_table(shown))
    print(
        "dead letters: "
        + ", ".join(f"{s} {n}" for s, n in sizes.items())
        + f" (showing {len(shown)}, newest first)"
    )
    return 0


@guarded
def cmd_show(args: argparse.Namespace) -> int:
    ctx = open_context()
    found = find(ctx.redis, ctx.keys, _stages(args), args.entry_id)
    if not found:
        raise NotFoundError(f"no dead letter {args.entry_id} (see `mutt dlq list`)")
    for entry in found:
        if args.json:
            print(json_line(entry.as_json(full=True)))
            continue
        doc = entry.as_json(full=True)
        for key in ("id", "stage", "reason", "failed_at", "deliveries", "origin", "origin_id"):
            print(f"{key + ':':<12}{doc[key]}")
        ce = doc["ce"]
        body = (
            orjson.dumps(ce, option=orjson.OPT_INDENT_2).decode()
            if isinstance(ce, dict)
            else str(ce)
        )
        print(f"cloudevent:\n{body}")
    return 0


@guarded
def cmd_replay(args: argparse.Namespace) -> int:
    ctx = open_context()
    selection = _selection(args, ctx.redis)
    result = replay(ctx.redis, ctx.keys, selection, dry_run=args.dry_run)
    verb = "would replay" if args.dry_run else "replayed"
    line = f"{verb} {result.replayed} entries"
    if result.skipped:
        line += f"; {result.skipped} without a usable CloudEvent left in the DLQ (purge them)"
    if result.vanished:
        line += f"; {result.vanished} were gone already (replayed or purged meanwhile)"
    print(line)
    return 0


@guarded
def cmd_purge(args: argparse.Namespace) -> int:
    ctx = open_context()
    selection = _selection(args, ctx.redis)
    if not args.yes and not args.dry_run:
        raise RefusedError("purge deletes dead letters for good; add --yes (or try --dry-run)")
    count = purge(ctx.redis, ctx.keys, selection, dry_run=args.dry_run)
    print(f"{'would delete' if args.dry_run else 'deleted'} {count} dead letters")
    return 0


def _select_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stage", choices=STAGES, help="one stage's DLQ (default: all)")
    p.add_argument("--ids", nargs="+", metavar="ID", help="these entry ids")
    p.add_argument("--all", action="store_true", help="every entry (of --stage)")
    p.add_argument("--reason-contains", metavar="TEXT", help="entries whose reason has TEXT")
    p.add_argument("--dry-run", action="store_true", help="count what would happen, change nothing")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``mutt dlq`` and its actions."""
    dlq = add_command(subparsers, "dlq", "inspect, replay and purge dead letters", EPILOG)
    sub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")

    p = add_command(
        sub,
        "list",
        "dead letters, newest first",
        "examples:\n  mutt dlq list --stage forward --limit 20\n"
        "  mutt dlq list --reason-contains timeout --json | jq -r .id",
    )
    p.add_argument("--stage", choices=STAGES, help="one stage's DLQ (default: all)")
    p.add_argument("--limit", type=int, default=50, help="entries at most (default 50)")
    p.add_argument("--reason-contains", metavar="TEXT", help="entries whose reason has TEXT")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_list)

    p = add_command(
        sub,
        "show",
        "one dead letter: why it failed and its whole CloudEvent",
        "example:\n  mutt dlq show 1714567890123-0",
    )
    p.add_argument("entry_id", help="the entry id from `mutt dlq list`")
    p.add_argument("--stage", choices=STAGES, help="look only in this stage's DLQ")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=cmd_show)

    p = add_command(
        sub,
        "replay",
        "put dead letters back into their stage's input stream",
        "Each entry moves atomically (removed from the DLQ and published in one step).\n"
        "forward: the attempt count restarts, only the failed sink is retried.\n\n"
        "examples:\n"
        "  mutt dlq replay --stage forward --reason-contains 'gave up' --dry-run\n"
        "  mutt dlq replay --ids 1714567890123-0 1714567890456-0\n"
        "  mutt dlq replay --stage alert --all",
    )
    _select_options(p)
    p.set_defaults(func=cmd_replay)

    p = add_command(
        sub,
        "purge",
        "delete dead letters for good (needs --yes)",
        "examples:\n"
        "  mutt dlq purge --stage forward --older-than 7d --yes\n"
        "  mutt dlq purge --ids 1714567890123-0 --yes\n"
        "  mutt dlq purge --stage audit --reason-contains 'invalid event' --dry-run",
    )
    _select_options(p)
    p.add_argument(
        "--older-than", metavar="AGE", help="entries dead-lettered more than AGE ago (7d, 12h)"
    )
    p.add_argument("--yes", action="store_true", help="confirm the deletion")
    p.set_defaults(func=cmd_purge)
