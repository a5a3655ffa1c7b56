"""``mutt dlq``: inspect, replay and purge dead letters (``shared.broker.dlq`` does the work)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

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
from shared.broker.dlq import (
    STAGES,
    AmbiguousEntry,
    DeadLetter,
    DlqInputError,
    Selection,
    dlq_depth,
    find,
    iter_dlq,
    purge,
    replay,
)

EPILOG = """examples:
  mutt dlq list
  mutt dlq list --stage forward --reason-contains pagerduty
  mutt dlq show 1714567890123-0
  mutt dlq replay --stage forward --reason-contains 'gave up' --dry-run
  mutt dlq replay --stage forward --all
  mutt dlq purge --stage alert --older-than 7d --yes
"""


def _missing(args: argparse.Namespace) -> Callable[[list[str]], None]:
    """Tell the operator which named ids are in none of the DLQs looked at."""
    stages = ", ".join(_stages(args))
    return lambda ids: say(f"not found in the {stages} DLQ: {', '.join(ids)}")


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


# ---------------------------------------------------------------- commands


def _table(entries: Sequence[DeadLetter]) -> str:
    rows = [
        (
            e.ref,
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
    sizes = {s: dlq_depth(r, keys, s) for s in _stages(args)}
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
    try:
        found = find(ctx.redis, ctx.keys, _stages(args), args.entry_id)
    except AmbiguousEntry as exc:
        raise InputError(f"{exc}; add --stage") from None
    except DlqInputError as exc:
        raise InputError(str(exc)) from None
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
    try:
        result = replay(
            ctx.redis,
            ctx.keys,
            selection,
            dry_run=args.dry_run,
            progress=say,
            missing=_missing(args),
        )
    except AmbiguousEntry as exc:
        raise InputError(f"{exc}; add --stage") from None
    except DlqInputError as exc:
        raise InputError(str(exc)) from None
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
    try:
        count = purge(
            ctx.redis,
            ctx.keys,
            selection,
            dry_run=args.dry_run,
            progress=say,
            missing=_missing(args),
        )
    except AmbiguousEntry as exc:
        raise InputError(f"{exc}; add --stage") from None
    except DlqInputError as exc:
        raise InputError(str(exc)) from None
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
