"""``mutt audit``: what happened to events, and who changed the configuration.

Both logs are read with bound parameters only; the SQL text differs only
by which fixed filter clauses are present. ``audit events`` is bounded by
time (default: the last 24 h) so PostgreSQL prunes to the months asked for
instead of scanning every partition.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

import pg8000.native

from functions.audit.query import query_events
from mutt.commands.common import (
    InputError,
    add_command,
    changed_fields,
    describe_rule,
    format_time,
    guarded,
    json_line,
    open_context,
    parse_when,
    render_table,
    say,
    shorten,
)
from shared.config_audit import COLUMNS as CONFIG_COLUMNS

EPILOG = """examples:
  mutt audit events --host core-rtr-01 --since 2h
  mutt audit events --rule 12 --since 2024-05-01 --until 2024-05-02 --json | jq .team
  mutt audit config --by alice --since 7d
  mutt audit config --table alert_rules --record 12
"""


def _limit(value: int) -> int:
    if not 1 <= value <= 100_000:
        raise InputError(f"--limit {value}: expected 1..100000")
    return value


def query_config(
    conn: pg8000.native.Connection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    by: str | None = None,
    table: str | None = None,
    record: str | None = None,
    correlation: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Configuration changes, newest first; every value is a bound parameter."""
    where = ["TRUE"]
    params: dict[str, Any] = {"limit": limit}
    for column, name, value in (
        ("changed_at >=", "since", since),
        ("changed_at <", "until", until),
        ("changed_by =", "by", by),
        ("table_name =", "tbl", table),
        ("record_id =", "rec", record),
        ("correlation_id =", "cid", correlation),
    ):
        if value is not None:
            where.append(f"{column} :{name}")
            params[name] = value
    sql = (
        f"SELECT {', '.join(CONFIG_COLUMNS)} FROM config_audit_log"  # noqa: S608 - fixed clauses
        f" WHERE {' AND '.join(where)} ORDER BY changed_at DESC, id DESC LIMIT :limit"
    )
    return [dict(zip(CONFIG_COLUMNS, row, strict=True)) for row in conn.run(sql, **params)]


@guarded
def cmd_events(args: argparse.Namespace) -> int:
    since = parse_when(args.since, "--since")
    until = parse_when(args.until, "--until") if args.until else None
    rows = query_events(
        open_context().pg(),
        since=since,
        until=until,
        host=args.host,
        rule=args.rule,
        team=args.team,
        limit=_limit(args.limit),
    )
    if args.json:
        for row in rows:
            print(
                json_line({k: (str(v) if k.endswith("_id") and v else v) for k, v in row.items()})
            )
        return 0
    table = [
        (
            format_time(row["event_time"]),
            row["hostname"],
            row["matched_rule_id"] if row["matched_rule_id"] is not None else "-",
            row["handling_decision"],
            row["environment"],
            row["team"] or "-",
            row["severity"] if row["severity"] is not None else "-",
            ("yes" if row["forwarded"] else "no")
            + (f" ({row['correlation']})" if row["correlation"] else ""),
            shorten(str((row["event"] or {}).get("message", "")), 60),
        )
        for row in rows
    ]
    headers = ["EVENT TIME", "HOST", "RULE", "HANDLING", "ENV", "TEAM", "SEV", "FWD", "MESSAGE"]
    print(render_table(headers, table))
    if len(rows) == args.limit:
        say(f"showing the newest {args.limit}; narrow with --since/--host/--rule or raise --limit")
    return 0


@guarded
def cmd_config(args: argparse.Namespace) -> int:
    rows = query_config(
        open_context().pg(),
        since=parse_when(args.since, "--since") if args.since else None,
        until=parse_when(args.until, "--until") if args.until else None,
        by=args.by,
        table=args.table,
        record=args.record,
        correlation=args.correlation,
        limit=_limit(args.limit),
    )
    if args.json:
        for row in rows:
            print(json_line(row))
        return 0
    table = []
    for row in rows:
        if row["operation"] == "UPDATE":
            what = changed_fields(row["old_values"], row["new_values"])
        elif row["table_name"] == "alert_rules":
            what = describe_rule(row["new_values"] or row["old_values"] or {})
        else:
            values = row["new_values"] or row["old_values"] or {}
            what = ", ".join(f"{k}={v!r}" for k, v in values.items() if v is not None)
        table.append(
            (
                format_time(row["changed_at"]),
                row["changed_by"],
                row["operation"],
                row["table_name"],
                row["record_id"],
                shorten(row["reason"], 40),
                shorten(what, 70),
            )
        )
    print(render_table(["CHANGED AT", "BY", "OP", "TABLE", "RECORD", "REASON", "CHANGE"], table))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``mutt audit`` and its actions."""
    audit = add_command(
        subparsers, "audit", "search the event and configuration audit logs", EPILOG
    )
    sub = audit.add_subparsers(dest="audit_command", required=True, metavar="LOG")

    p = add_command(
        sub,
        "events",
        "decisions taken on events (event_audit_log), newest first",
        "examples:\n"
        "  mutt audit events --since 1h\n"
        "  mutt audit events --host core-rtr-01 --rule 3 --since 7d --limit 20\n"
        "  mutt audit events --since 2024-05-01T00:00:00Z --until 2024-05-01T06:00:00Z --json\n"
        "--since/--until take a duration ago (30m, 24h, 7d) or an ISO time (UTC if no zone).",
    )
    p.add_argument("--host", help="hostname (case-insensitive, exact)")
    p.add_argument("--rule", type=int, help="matched rule id")
    p.add_argument("--team", help="team the alert went to")
    p.add_argument("--since", default="24h", help="from (default 24h ago)")
    p.add_argument("--until", help="up to, exclusive (default now)")
    p.add_argument("--limit", type=int, default=100, help="rows at most (default 100)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_events)

    p = add_command(
        sub,
        "config",
        "who changed rules, hosts, teams and dynamic settings, when and why",
        "examples:\n"
        "  mutt audit config\n"
        "  mutt audit config --by alice --since 30d\n"
        "  mutt audit config --table dynamic_config --record forward_rate_limit --json",
    )
    p.add_argument("--by", help="who made the change")
    p.add_argument("--table", help="alert_rules, development_hosts, device_teams or dynamic_config")
    p.add_argument("--record", help="rule id, hostname or setting name")
    p.add_argument("--correlation", help="correlation id of one `rules apply`")
    p.add_argument("--since", help="from: a duration ago (7d) or an ISO time")
    p.add_argument("--until", help="up to, exclusive")
    p.add_argument("--limit", type=int, default=100, help="rows at most (default 100)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_config)
