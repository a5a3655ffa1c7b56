"""``mutt status``: is the pipeline keeping up, and does anything need a person?

One screen with the numbers an operator checks first: backlog per stream
and consumer group (pending, lag, age of the oldest pending entry), parked
retries, dead letters, circuit breakers, the rule set in force, the
audit partitions, the most frequent events no rule matched, and what each
running ``mutt syslog`` received and lost (it publishes its counters to
Redis every few seconds; see ``mutt.sources.source_status``). Ages use
the Redis server's clock, so a skewed operator laptop does not distort
them. ``--check`` exits 1 when something needs attention, for cron or a
monitoring probe.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from functions.admin.status import collect
from mutt.commands.common import (
    add_command,
    format_age,
    guarded,
    json_line,
    open_context,
    render_table,
)

EPILOG = """examples:
  mutt status
  mutt status --json | jq '.streams[] | {name, length}'
  mutt status --check || echo 'MUTT needs attention'
"""


def render(doc: dict[str, Any]) -> str:
    """The status as aligned text sections."""
    rows = []
    for s in doc["streams"]:
        due = s["next_parked_due_seconds"]
        parked = f"{s['parked']}" + (f" (next {format_age(due)})" if s["parked"] else "")
        name = s["name"] if doc["partitions"] == 1 else f"{s['name']} #{s['partition']}"
        if not s["groups"]:
            rows.append((name, s["length"], parked, "-", "-", "-", "-", "-"))
        for g in s["groups"]:
            rows.append(
                (
                    name,
                    s["length"],
                    parked,
                    g["name"],
                    g["consumers"],
                    g["pending"],
                    g["lag"] if g["lag"] is not None else "?",
                    format_age(g["oldest_pending_age_seconds"]),
                )
            )
    headers = ["STREAM", "LENGTH", "PARKED", "GROUP", "CONSUMERS", "PENDING", "LAG", "OLDEST"]
    parts = f", {doc['partitions']} stream partitions" if doc["partitions"] > 1 else ""
    out = [
        f"MUTT status: namespace {doc['namespace']}, schema {doc['schema']}{parts}",
        "",
        render_table(headers, rows),
        "",
    ]
    if doc["breakers"]:
        brows = [
            (b["sink"], b["state"], b["failures"], format_age(b["opened_seconds_ago"]))
            for b in doc["breakers"]
        ]
        out += [render_table(["SINK", "BREAKER", "FAILURES", "OPENED"], brows), ""]
    else:
        out += ["breakers: none recorded (no sink has failed yet)", ""]
    rules, audit = doc["rules"], doc["audit"]
    out.append(
        f"rules: version {rules['version']}, {rules['count']} rules ({rules['active']} active)"
    )
    capped = "+" if audit["default_rows_capped"] else ""
    out.append(
        f"audit partitions: {audit['partitions']} monthly, newest {audit['newest'] or 'none'}"
        f" ({audit['months_ahead'] if audit['months_ahead'] is not None else '?'} months ahead);"
        f" DEFAULT partition: {audit['default_rows']}{capped} rows"
    )
    if doc["sources"]:
        srows = [
            (
                f"{src.get('kind')} {src.get('instance')}",
                src.get("received", 0),
                src.get("accepted", 0),
                src.get("buffered", 0),
                src.get("dropped", 0),
                src.get("kernel_drops", 0),
                src.get("lost", 0),
                src.get("dropped_recently", 0),
            )
            for src in doc["sources"]
        ]
        out += [
            "",
            render_table(
                [
                    "SOURCE",
                    "RECEIVED",
                    "ACCEPTED",
                    "BUFFERED",
                    "QUEUE DROPS",
                    "KERNEL DROPS",
                    "LOST",
                    "DROPS LAST MIN",
                ],
                srows,
            ),
        ]
    top = doc["unhandled"]["top"]
    if top:
        window = format_age(doc["unhandled"]["window_seconds"])
        urows = [(t["count"], t["hostname"], t["message"][:80]) for t in top]
        first = top[0]
        hint = shlex.join(
            ["mutt", "rules", "test", "--host", first["hostname"], "--message", first["message"]]
        )
        out += [
            "",
            f"unhandled events, most frequent this {window} window (no rule matched):",
            render_table(["COUNT", "HOST", "SAMPLE MESSAGE"], urows),
            f"  why: {hint}",
        ]
    if doc["attention"]:
        out += ["", "attention:", *(f"  - {note}" for note in doc["attention"])]
    else:
        out += ["", "all clear"]
    return "\n".join(out)


@guarded
def cmd_status(args: argparse.Namespace) -> int:
    doc = collect(open_context())
    print(json_line(doc) if args.json else render(doc))
    return 1 if args.check and doc["attention"] else 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``mutt status``."""
    p = add_command(
        subparsers,
        "status",
        "backlog, dead letters, breakers, rules and audit partitions at a glance",
        EPILOG,
    )
    p.add_argument("--json", action="store_true", help="one JSON document")
    p.add_argument(
        "--check", action="store_true", help="exit 1 when something needs attention (monitoring)"
    )
    p.set_defaults(func=cmd_status)
