"""``mutt rules backtest``: replay audited events against a candidate rules file.

Reads ``event_audit_log`` for the period (keyset pages, so memory stays
flat however long the period), decides each event with the candidate and
with the baseline, and prints what would change: new alerts, lost alerts,
handling and team changes. Nothing is written. The candidate is validated
exactly as ``mutt rules apply`` validates it; a rule without ``id`` shows
as ``new rule #N`` (its position in the file).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from functions.alert.backtest import (
    KIND_TITLES,
    KINDS,
    Decision,
    Replayed,
    Report,
    decide,
    recorded,
)
from functions.alert.rules import DevHosts, Rule, RuleSet, validate_rule
from functions.audit.query import audited_events
from mutt.commands.common import (
    add_command,
    format_time,
    guarded,
    json_line,
    open_context,
    parse_when,
    render_table,
    say,
    shorten,
)
from mutt.commands.rules import load_file, read_state

EPILOG = """Each audited event of the period is decided by the candidate file and by the
rules in the database now (--against recorded: by what the audit recorded then),
with the engine the alert stage runs. Nothing is changed.

Events no rule matched are in the audit only while `mutt config set audit_unhandled 1`
is in force; without them, alerts a candidate would add for such events are not seen.

examples:
  mutt rules export --out rules.yaml; $EDITOR rules.yaml
  mutt rules backtest rules.yaml --since 24h
  mutt rules backtest rules.yaml --since 7d --against recorded --json | jq .
"""


def candidate_rules(path: str) -> tuple[RuleSet, DevHosts]:
    """The candidate file as the alert stage would load it (validated like `rules apply`)."""
    desired = load_file(path)
    rules: list[Rule] = []
    for number, (rule_id, values) in enumerate(desired.rules, 1):
        row = {k: v for k, v in values.items() if k != "description"}
        rules.append(validate_rule({"id": rule_id if rule_id is not None else -number, **row}))
    return RuleSet.compile(rules), DevHosts(desired.hosts)


def _print_report(report: Report, args: argparse.Namespace, baseline: str) -> None:
    if args.json:
        summary: dict[str, int] = {"events": report.events, "unchanged": report.unchanged}
        summary.update({kind: report.count(kind) for kind in KINDS})
        print(json_line({"summary": summary, "baseline": baseline}))
        for kind in KINDS:
            for group in report.ordered(kind):
                print(
                    json_line(
                        {
                            "kind": kind,
                            "count": group.count,
                            "before": _doc(group.before),
                            "after": _doc(group.after),
                            "samples": group.samples,
                        }
                    )
                )
        return
    width = max(len(t) for t in KIND_TITLES.values())
    for kind in KINDS:
        print(f"  {KIND_TITLES[kind]:<{width}}  {report.count(kind):>9,}")
    print(f"  {'unchanged':<{width}}  {report.unchanged:>9,}")
    for kind in KINDS:
        groups = report.ordered(kind)[: args.top]
        if not groups:
            continue
        print(f"\n{KIND_TITLES[kind].upper()}")
        rows = [
            (g.count, g.before.label(), g.after.label(), shorten(g.samples[0], 70)) for g in groups
        ]
        print(render_table(["EVENTS", "BEFORE", "AFTER", "EXAMPLE"], rows))


def _doc(decision: Decision) -> dict[str, Any]:
    return {"rule_id": decision.rule_id, "handling": decision.handling, "team": decision.team}


@guarded
def cmd_backtest(args: argparse.Namespace) -> int:
    after_rules, after_hosts = candidate_rules(args.file)
    now = datetime.now(UTC)
    since = parse_when(args.since, "--since", now)
    until = parse_when(args.until, "--until", now) if args.until else now
    ctx = open_context()
    conn = ctx.pg()
    before_rules: RuleSet | None = None
    before_hosts = DevHosts()
    if args.against == "current":
        state = read_state(conn)
        before_rules = RuleSet.from_rows([{"id": rid, **v} for rid, v in state.rules.items()])
        before_hosts = DevHosts(state.hosts)
    report = Report()
    for doc, rule_id, handling, team in audited_events(conn, since, until, args.limit):
        event = Replayed.from_json(doc if isinstance(doc, dict) else {})
        if before_rules is not None:
            before = decide(before_rules, before_hosts, event)
        else:
            before = recorded(rule_id, str(handling), team)
        report.add(event, before, decide(after_rules, after_hosts, event))
    baseline = "the rules in the database" if args.against == "current" else "the audit record"
    if not args.json:
        print(
            f"backtest of {args.file} against {baseline}: {report.events:,} audited events"
            f" from {format_time(since)} to {format_time(until)}"
        )
    if report.events >= args.limit:
        say(f"note: stopped at --limit {args.limit:,} events")
    if ctx.dynamic.get("audit_unhandled") != 1:
        say("note: unmatched events are not audited (audit_unhandled = 0): alerts the candidate")
        say("      would add for events no rule matched at the time cannot be seen")
    _print_report(report, args, baseline)
    return 0


def add_backtest(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``backtest`` to the ``mutt rules`` actions."""
    p = add_command(
        sub,
        "backtest",
        "replay audited events against a rules file: new, lost and changed alerts",
        EPILOG,
    )
    p.add_argument("file", help="the candidate rules YAML file (- for standard input)")
    p.add_argument("--since", default="24h", help="start: a duration ago (24h, 7d) or ISO time")
    p.add_argument("--until", help="end: a duration ago or ISO time (default now)")
    p.add_argument(
        "--against",
        choices=["current", "recorded"],
        default="current",
        help="baseline: the rules in the database now (default) or what the audit recorded",
    )
    p.add_argument("--limit", type=int, default=1_000_000, help="events at most (default 1e6)")
    p.add_argument("--top", type=int, default=20, help="groups listed per kind (default 20)")
    p.add_argument("--json", action="store_true", help="a summary line, then one line per group")
    p.set_defaults(func=cmd_backtest)
