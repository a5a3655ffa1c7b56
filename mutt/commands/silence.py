"""``mutt silence``: maintenance windows, as operators ask for them, audited.

A silence covers alerts by host glob, team and/or rule, one-off (``--start``
/ ``--end`` or ``--duration``) or recurring (``--cron`` + ``--duration``,
in ``--tz``). Silenced alerts are still audited (``correlation`` says which
silence) but not delivered; resolves are never silenced. Each add and
remove writes a ``config_audit_log`` row (table ``silences``) in the same
PostgreSQL transaction that brackets the Redis write, so a change the audit
could not record is not made. Every alert instance applies it within a
second.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from pydantic import ValidationError

from functions.alert.correlation.silence_edits import (
    UnknownSilences,
    add_silence,
    remove_silences,
    silence_values,
)
from functions.alert.correlation.silences import (
    RuleRef,
    Silence,
    load_silences,
    new_id,
)
from mutt.commands.common import (
    InputError,
    NotFoundError,
    add_audit_options,
    add_command,
    format_time,
    guarded,
    json_line,
    open_context,
    operator_name,
    parse_duration,
    render_table,
    shorten,
)
from shared.broker.keys import CorrelationKeys

TABLE = "silences"

EPILOG = """examples:
  mutt silence add --host 'core-rtr-*' --duration 2h --reason 'CHG-1234 IOS upgrade'
  mutt silence add --team Storage --start 2025-06-01T22:00Z --end 2025-06-02T02:00Z \\
      --reason 'array firmware, CHG-77'
  mutt silence add --host 'backup-*' --rule 12 --cron '0 2 * * 6' --duration 3h \\
      --tz Europe/Paris --reason 'weekly backup window'
  mutt silence list
  mutt silence remove s-1a2b3c4d --reason 'upgrade finished early'
"""


def _when(text: str, option: str) -> datetime:
    """``now`` or an ISO time (UTC when no zone is given)."""
    if text.strip().lower() == "now":
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            f"{option} {text!r}: expected now or an ISO time such as 2025-06-01T22:00Z"
            " (for a length, use --duration)"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _rule(text: str | None) -> RuleRef | None:
    if text is None:
        return None
    value = text.strip().lower()
    if value in ("unhandled", "storm"):
        return "unhandled" if value == "unhandled" else "storm"
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise InputError(f"--rule {text!r}: expected a rule id, unhandled or storm")


def build_silence(args: argparse.Namespace, created_by: str, now: datetime) -> Silence:
    """The silence the options describe; ``InputError`` names what is wrong."""
    start = _when(args.start, "--start") if args.start else now
    duration = parse_duration(args.duration, "--duration") if args.duration else None
    end = _when(args.end, "--end") if args.end else None
    if args.cron is None:
        if end is not None and duration is not None:
            raise InputError("give --end or --duration, not both")
        if duration is not None:
            end = start + duration
    elif duration is None:
        raise InputError("--cron needs --duration: how long each window lasts")
    try:
        return Silence(
            id=new_id(),
            host=args.host,
            team=args.team,
            rule=_rule(args.rule),
            start=start,
            end=end,
            cron=args.cron,
            duration_seconds=int(duration.total_seconds()) if args.cron and duration else None,
            timezone=args.tz,
            reason=args.reason.strip(),
            created_by=created_by,
            created_at=now,
        )
    except ValidationError as exc:
        problems = "; ".join(
            str(e.get("msg", "invalid")).removeprefix("Value error, ")
            for e in exc.errors(include_url=False)
        )
        raise InputError(f"{problems}; nothing was changed") from None


def _state(silence: Silence, now: datetime) -> tuple[str, str]:
    """(state, until/next) for the listing."""
    active, until = silence.state_at(now)
    if active:
        return "active", f"until {format_time(until)}" if until else "until removed"
    if until is None:
        return "expired", "-"
    return "pending", f"from {format_time(until)}"


_values = silence_values


@guarded
def cmd_add(args: argparse.Namespace) -> int:
    if not (args.reason or "").strip():
        raise InputError("--reason must say why (it is written to config_audit_log)")
    if args.host is None and args.team is None and args.rule is None:
        raise InputError("say what to silence: --host GLOB, --team TEAM and/or --rule ID")
    by = operator_name(args.by)
    silence = build_silence(args, by, datetime.now(UTC))
    ctx = open_context()
    add_silence(ctx.redis, ctx.pg(), CorrelationKeys(ctx.settings.namespace), silence)
    state, when = _state(silence, datetime.now(UTC))
    print(
        f"{silence.id}: {silence.describe_match()}; {silence.describe_schedule()}"
        f" ({state}, {when}); alert instances apply it within a second"
    )
    return 0


@guarded
def cmd_list(args: argparse.Namespace) -> int:
    ctx = open_context()
    now = datetime.now(UTC)
    rows = []
    for silence in load_silences(ctx.redis, CorrelationKeys(ctx.settings.namespace)):
        state, when = _state(silence, now)
        if state == "expired" and not args.all:
            continue
        if args.json:
            print(json_line({"id": silence.id, "state": state, **_values(silence)}))
            continue
        rows.append(
            (
                silence.id,
                state,
                when,
                silence.describe_match(),
                silence.describe_schedule(),
                silence.created_by,
                shorten(silence.reason, 40),
            )
        )
    if not args.json:
        headers = ["ID", "STATE", "WHEN", "MATCH", "SCHEDULE", "BY", "REASON"]
        print(render_table(headers, rows) if rows else "no silences")
    return 0


@guarded
def cmd_remove(args: argparse.Namespace) -> int:
    reason = (args.reason or "").strip()
    if not reason:
        raise InputError("--reason must say why (it is written to config_audit_log)")
    ctx = open_context()
    try:
        remove_silences(
            ctx.redis,
            ctx.pg(),
            CorrelationKeys(ctx.settings.namespace),
            args.ids,
            changed_by=operator_name(args.by),
            reason=reason,
        )
    except UnknownSilences as exc:
        raise NotFoundError(f"{exc} (see `mutt silence list --all`); nothing was changed") from None
    print(f"removed {', '.join(args.ids)}; alert instances deliver again within a second")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``mutt silence`` and its actions."""
    group = add_command(
        subparsers, "silence", "maintenance windows: audit but do not deliver", EPILOG
    )
    sub = group.add_subparsers(dest="silence_command", required=True, metavar="ACTION")

    p = add_command(
        sub,
        "add",
        "silence alerts by host glob, team and/or rule, once or on a cron schedule",
        EPILOG,
    )
    p.add_argument(
        "--host", help="host name glob, case-insensitive (core-rtr-*, *.lab.example.com)"
    )
    p.add_argument("--team", help="team, case-insensitive")
    p.add_argument("--rule", help="rule id, or unhandled / storm")
    p.add_argument("--start", help="ISO time or now (default now); recurring: first day")
    p.add_argument("--end", help="ISO time; recurring: last day (default: until removed)")
    p.add_argument("--duration", help="one-off: length from start; recurring: each window (2h)")
    p.add_argument("--cron", help="recurring: 5-field cron of window starts ('0 2 * * 6')")
    p.add_argument("--tz", default="UTC", help="time zone of --cron (default UTC)")
    add_audit_options(p)
    p.set_defaults(func=cmd_add)

    p = add_command(
        sub,
        "list",
        "active and upcoming silences (--all: expired ones too)",
        "examples:\n  mutt silence list\n  mutt silence list --all --json",
    )
    p.add_argument("--all", action="store_true", help="include expired silences")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_list)

    p = add_command(
        sub,
        "remove",
        "end silences now (audited)",
        "example:\n  mutt silence remove s-1a2b3c4d --reason 'work finished'",
    )
    p.add_argument("ids", nargs="+", metavar="ID", help="silence id(s) from `mutt silence list`")
    add_audit_options(p)
    p.set_defaults(func=cmd_remove)
