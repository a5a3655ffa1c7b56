"""Which recent events a rule being edited would match: the console's live preview.

The candidate rule is compiled alone with the engine the alert stage runs
and the backtest's ``decide`` is applied to the events audited over the last
day (the reader of ``mutt rules backtest``) and to the samples of the most
frequent unhandled events, so "this rule would catch these" is exactly what
the alert stage would do, minus the rules ahead of it in priority.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from functions.alert.backtest import Replayed, decide
from functions.alert.rules import DevHosts, RuleSet, validate_rule
from functions.alert.unhandled import top_unhandled
from functions.audit.query import audited_events
from shared.context import Context

EXAMINED = 2000
SHOWN = 20


def preview(ctx: Context, values: dict[str, Any], hours: int = 24) -> dict[str, Any]:
    """Matches of one validated rule (``values`` as ``check_rule_entry`` returns them)."""
    fields = {k: v for k, v in values.items() if k != "description"}
    rules = RuleSet.compile([validate_rule({"id": -1, **fields, "is_active": True})])
    hosts = DevHosts()
    now = datetime.now(UTC)
    matches: list[dict[str, Any]] = []
    examined = matched = 0
    for doc, rule_id, handling, _ in audited_events(
        ctx.pg(), now - timedelta(hours=hours), now, EXAMINED
    ):
        event = Replayed.from_json(doc if isinstance(doc, dict) else {})
        examined += 1
        if decide(rules, hosts, event).rule_id is None:
            continue
        matched += 1
        if len(matches) < SHOWN:
            matches.append(
                {
                    "hostname": event.hostname,
                    "message": event.message[:300],
                    "was": f"rule {rule_id}: {handling}" if rule_id else str(handling),
                }
            )
    window = ctx.dynamic.get("unhandled_window_seconds")
    unhandled = []
    for top in top_unhandled(ctx.redis, ctx.settings.namespace, window, 50):
        event = Replayed(top.hostname, top.message, None, None)
        if decide(rules, hosts, event).rule_id is not None:
            unhandled.append(
                {"hostname": top.hostname, "message": top.message[:300], "count": top.count}
            )
    return {
        "examined": examined,
        "matched": matched,
        "matches": matches,
        "unhandled_matches": unhandled,
        "hours": hours,
    }
