"""``mutt rules``: routing rules as code (export, apply) and as answers (list, show, test).

The rules file is the whole truth, like ``kubectl apply --prune``: a rule
with an ``id`` updates that row, a rule without one is created, and rows the
file does not mention are deleted (``--no-prune`` keeps them). The same holds
for ``development_hosts`` and ``device_teams``. An invalid file changes
nothing and names every bad rule by line, position and id; a valid one is
applied in one transaction with one ``config_audit_log`` row per change, then
the rules version is bumped so every alert instance reloads within a second.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pg8000.native
import redis
import yaml
from pydantic import ValidationError

from functions.alert.catalog import (
    CatalogInvalid,
    CatalogMoved,
    Desired,
    State,
    UnknownRuleIds,
    bump_version,
    catalog_document,
    check_catalog,
    read_rule,
    read_state,
    render_plan,
    rule_document,
    rule_history,
    rule_values,
    summarize,
)
from functions.alert.catalog import apply_plan as _apply_plan
from functions.alert.catalog import build_plan as _build_plan
from functions.alert.rules import DevHosts, RuleSet, normalize_oid
from mutt.commands.common import (
    InputError,
    NotFoundError,
    RefusedError,
    add_audit_options,
    add_command,
    changed_fields,
    confirm,
    format_time,
    guarded,
    json_line,
    open_context,
    operator_name,
    render_table,
    say,
    shorten,
)
from shared.config_audit import ConfigChange
from shared.errors import MuttError
from shared.models import Event, Severity, event_id_for, parse_severity

EPILOG = """examples:
  mutt rules list
  mutt rules test --message '%LINK-3-UPDOWN: Gi0/1, changed state to down' --host core-rtr-01
  mutt rules export --out rules.yaml
  $EDITOR rules.yaml
  mutt rules backtest rules.yaml --since 24h
  mutt rules apply rules.yaml --reason 'CHG-1234: page NetOps for BGP flaps' --dry-run
  mutt rules apply rules.yaml --reason 'CHG-1234: page NetOps for BGP flaps' --yes
"""

EPILOG_APPLY = """The file is the whole truth (like `kubectl apply --prune`):
  - a rule with an `id` updates that rule (ids come from `mutt rules export`),
  - a rule without `id` is created,
  - rules, development hosts and device teams absent from the file are DELETED,
    unless --no-prune is given.
Every rule is validated first (match_type, RE2 regex, handling, OID syntax,
severity, team); an invalid file changes nothing. The change is one
transaction, written to config_audit_log (who, why, old and new values, one
correlation id per apply), then every alert instance reloads.

examples:
  mutt rules apply rules.yaml --reason 'CHG-1234 new storage rules' --dry-run
  mutt rules apply rules.yaml --reason 'CHG-1234 new storage rules' --by alice --yes
  mutt rules apply extra-rules.yaml --reason 'add two rules' --no-prune --yes
"""

__all__ = ["Desired", "State", "apply_plan", "build_plan", "load_file", "read_state"]


def _rule_lines(text: str) -> list[int]:
    """1-based line of each entry of ``rules`` (best effort, for error messages)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return []
    if not isinstance(root, yaml.MappingNode):
        return []
    for key, value in root.value:
        if getattr(key, "value", None) == "rules" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def load_file(path: str) -> Desired:
    """Read and validate a rules file; ``InputError`` lists every problem."""
    origin = "<stdin>" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {origin}: {exc.strerror or exc}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"{origin}{at}: not valid YAML: {problem}; nothing was changed") from None
    try:
        catalog, descriptions = check_catalog(doc, origin, _rule_lines(text))
    except CatalogInvalid as exc:
        if len(exc.problems) == 1:
            raise InputError(f"{exc.problems[0]}; nothing was changed") from None
        for problem in exc.problems:
            say(problem)
        raise InputError(
            f"{origin}: {len(exc.problems)} problems (listed above); nothing was changed"
        ) from None
    rules = [
        (rule.id if rule.id > 0 else None, rule_values(rule, description))
        for rule, description in zip(catalog.rules, descriptions, strict=True)
    ]
    return Desired(rules, set(catalog.development_hosts), dict(catalog.device_teams))


def build_plan(state: State, desired: Desired, *, prune: bool) -> list[ConfigChange]:
    """Every change that makes the database equal the file (the catalog's own plan)."""
    try:
        return _build_plan(state, desired, prune=prune)
    except UnknownRuleIds as exc:
        raise InputError(str(exc)) from None


def apply_plan(
    conn: pg8000.native.Connection,
    desired: Desired,
    shown: list[ConfigChange],
    *,
    prune: bool,
    changed_by: str,
    reason: str,
    correlation_id: str,
) -> list[ConfigChange]:
    """Re-plan under a lock and apply in one transaction, if nothing moved since ``shown``.

    The same write path as the admin API's (``functions.alert.catalog``).
    """
    try:
        return _apply_plan(
            conn,
            desired,
            shown,
            prune=prune,
            changed_by=changed_by,
            reason=reason,
            correlation_id=correlation_id,
        )
    except CatalogMoved as exc:
        raise RefusedError(str(exc)) from None
    except UnknownRuleIds as exc:
        raise InputError(str(exc)) from None


# ---------------------------------------------------------------- commands


@guarded
def cmd_export(args: argparse.Namespace) -> int:
    ctx = open_context()
    state = read_state(ctx.pg())
    rejected = RuleSet.from_rows([{"id": rid, **v} for rid, v in state.rules.items()]).rejected
    for err in rejected:
        say(f"warning: {err} (the alert stage ignores this rule; fix it before applying)")
    doc = catalog_document(list(state.rules.items()), sorted(state.hosts), state.teams)
    text = (
        "# MUTT rules, exported by `mutt rules export`.\n"
        "# Apply with `mutt rules apply FILE --reason TEXT`: rules with an id update that\n"
        "# rule, rules without id are created, anything absent from this file is deleted.\n"
        + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=4096)
    )
    if args.out is None or str(args.out) == "-":
        sys.stdout.write(text)
        return 0
    out: Path = args.out
    try:  # write then rename: a failed export never leaves half a rules file
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=out.parent, prefix=f".{out.name}.", delete=False, encoding="utf-8"
        ) as tmp:
            try:
                tmp.write(text)
            except OSError:
                Path(tmp.name).unlink(missing_ok=True)
                raise
        Path(tmp.name).replace(out)
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror or exc}") from None
    say(
        f"wrote {len(state.rules)} rules, {len(state.hosts)} dev hosts,"
        f" {len(state.teams)} device teams to {out}"
    )
    return 0


@guarded
def cmd_apply(args: argparse.Namespace) -> int:
    reason = (args.reason or "").strip()
    if not reason:
        raise InputError("--reason must say why (it is written to config_audit_log)")
    desired = load_file(args.file)
    ctx = open_context()
    conn = ctx.pg()
    prune = not args.no_prune
    state = read_state(conn)
    shown = build_plan(state, desired, prune=prune)
    if prune and state.rules and not desired.rules:
        say("warning: the file has no rules, so every rule is deleted (--no-prune keeps them)")
    if not shown:
        print("no changes: the database already matches the file")
        return 0
    print(render_plan(shown))
    print(f"plan: {summarize(shown)}")
    if args.dry_run:
        print("dry run: nothing was changed")
        return 0
    confirm(f"apply {len(shown)} changes?", args.yes)
    r = ctx.redis  # connect (and fail) before the commit, not after it
    correlation_id = str(uuid.uuid4())
    say(f"applying {len(shown)} changes in one transaction ...")
    applied = apply_plan(
        conn,
        desired,
        shown,
        prune=prune,
        changed_by=operator_name(args.by),
        reason=reason,
        correlation_id=correlation_id,
    )
    try:
        version = bump_version(r, ctx.settings.namespace)
    except redis.RedisError as exc:
        raise MuttError(
            f"applied {len(applied)} changes (correlation id {correlation_id}) but could not"
            f" tell the alert instances ({exc}); run `mutt rules reload` once Redis is back"
        ) from None
    print(
        f"applied {len(applied)} changes (correlation id {correlation_id});"
        f" rules version {version}, alert instances reload within a second"
    )
    return 0


@guarded
def cmd_reload(args: argparse.Namespace) -> int:
    """For rows changed behind MUTT's back (SQL by hand, a restore)."""
    ctx = open_context()
    version = bump_version(ctx.redis, ctx.settings.namespace)
    print(f"rules version {version}: alert instances reload within a second")
    return 0


def _rule_row(conn: pg8000.native.Connection, rule_id: int) -> tuple[dict[str, Any], list[Any]]:
    found = read_rule(conn, rule_id)
    if found is None:
        raise NotFoundError(f"no rule with id {rule_id} (see `mutt rules list`)")
    created, updated = found.pop("created_at"), found.pop("updated_at")
    return found, [created, updated]


def _severity_label(value: object) -> str:
    if value is None:
        return "-"
    try:
        return Severity(int(str(value))).label
    except ValueError:
        return str(value)


@guarded
def cmd_list(args: argparse.Namespace) -> int:
    state = read_state(open_context().pg())
    if args.json:
        for rid, values in state.rules.items():
            print(json_line({"id": rid, **values}))
        return 0
    rows = [
        (
            rid,
            v["priority"],
            v["match_type"],
            shorten(v["match_string"] or "", 48) or "-",
            v["trap_oid"] or "-",
            _severity_label(v["syslog_severity"]),
            v["prod_handling"],
            v["dev_handling"],
            v["team_assignment"],
            "yes" if v["is_active"] else "no",
        )
        for rid, v in state.rules.items()
    ]
    headers = ["ID", "PRIO", "TYPE", "MATCH", "OID", "SEV", "PROD", "DEV", "TEAM", "ACTIVE"]
    print(render_table(headers, rows))
    print(
        f"{len(state.rules)} rules ({sum(1 for v in state.rules.values() if v['is_active'])}"
        f" active), {len(state.hosts)} dev hosts, {len(state.teams)} device teams"
    )
    return 0


@guarded
def cmd_show(args: argparse.Namespace) -> int:
    conn = open_context().pg()
    values, (created, updated) = _rule_row(conn, args.id)
    history = [
        (
            h["changed_at"],
            h["changed_by"],
            h["operation"],
            h["reason"],
            h["old_values"],
            h["new_values"],
        )
        for h in rule_history(conn, args.id)
    ]
    rejected = RuleSet.from_rows([{"id": args.id, **values}]).rejected
    if args.json:
        print(
            json_line(
                {
                    "id": args.id,
                    **values,
                    "created_at": created,
                    "updated_at": updated,
                    "valid": not rejected,
                    "problems": [str(e) for e in rejected],
                }
            )
        )
        return 0
    sys.stdout.write(yaml.safe_dump(rule_document(args.id, values), sort_keys=False, width=4096))
    print(f"created_at: {format_time(created)}\nupdated_at: {format_time(updated)}")
    for err in rejected:
        print(f"INVALID: {err} (the alert stage ignores this rule)")
    if history:
        print("recent changes:")
        for at, by, op, why, old, new in history:
            detail = changed_fields(old, new) if op == "UPDATE" else ""
            print(
                f"  {format_time(at)} {op} by {by}: {why or ''}"
                + (f" [{detail}]" if detail else "")
            )
    return 0


def _test_event(args: argparse.Namespace) -> Event:
    try:
        severity = parse_severity(args.severity) if args.severity is not None else None
    except ValueError as exc:
        raise InputError(f"--severity: {exc}") from None
    try:
        oid = normalize_oid(args.oid) if args.oid else None
    except ValueError as exc:
        raise InputError(f"--oid: {exc}") from None
    host = args.host.strip().lower()
    if not host:
        raise InputError("--host must not be blank")
    now = datetime.now(UTC)
    ce_id = uuid.uuid4().hex
    try:
        return Event(
            event_id=event_id_for("/mutt/cli/rules-test", ce_id),
            source="/mutt/cli/rules-test",
            id=ce_id,
            hostname=host,
            time=now,
            message=args.message,
            severity=severity,
            severity_name=severity.label if severity is not None else None,
            trap_oid=oid,
            received_at=now,
        )
    except ValidationError as exc:  # e.g. a message over the 64 KiB an event may carry
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        option = {"hostname": "--host", "trap_oid": "--oid"}.get(field, "--message")
        raise InputError(f"{option}: {err['msg']}") from None


@guarded
def cmd_test(args: argparse.Namespace) -> int:
    event = _test_event(args)
    ctx = open_context()
    state = read_state(ctx.pg())
    rules = RuleSet.from_rows([{"id": rid, **v} for rid, v in state.rules.items()])
    for err in rules.rejected:
        say(f"warning: {err} (ignored by the alert stage too)")
    dev_hosts = DevHosts(state.hosts)
    sev = event.severity.label if event.severity is not None else "none"
    print(
        f"event: host {event.hostname}, severity {sev}, oid {event.trap_oid or 'none'},"
        f" message {shorten(repr(event.message), 100)}"
    )
    print(rules.explain(event).render())
    rule = rules.match(event)
    if rule is None:
        team = state.teams.get(event.hostname, ctx.settings.default_team)
        threshold = ctx.dynamic.get("unhandled_threshold")
        window = ctx.dynamic.get("unhandled_window_seconds")
        print(
            f"decision: unhandled; environment {dev_hosts.environment(event.hostname)};"
            f" counted per host and message fingerprint, {threshold} within {window / 3600:g} h"
            f" raise one Ticket_only meta-alert for team {team}"
        )
        return 0
    environment, handling = dev_hosts.decide(rule, event.hostname)
    forwarded = "forwarded" if handling.forwards else "not forwarded (audited only)"
    print(
        f"decision: environment {environment}, handling {handling.value}, team"
        f" {rule.team_assignment} (rule {rule.id}); {forwarded}"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``mutt rules`` and its actions."""
    rules = add_command(subparsers, "rules", "list, test, export and apply routing rules", EPILOG)
    sub = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")

    p = add_command(
        sub,
        "export",
        "write rules, development hosts and device teams as one YAML file",
        "examples:\n  mutt rules export > rules.yaml\n  mutt rules export --out rules.yaml",
    )
    p.add_argument("--out", type=Path, help="file to write (default: standard output)")
    p.set_defaults(func=cmd_export)

    p = add_command(
        sub,
        "apply",
        "make the database match a rules file (validated, diffed, audited, one transaction)",
        EPILOG_APPLY,
    )
    p.add_argument("file", help="the rules YAML file (- for standard input)")
    add_audit_options(p, review=True)
    p.add_argument(
        "--no-prune",
        action="store_true",
        help="keep rules, hosts and teams that are absent from the file",
    )
    p.set_defaults(func=cmd_apply)

    p = add_command(
        sub,
        "reload",
        "tell every alert instance to reload rules, hosts and teams now",
        "Needed only after changing the tables without `mutt rules apply` (SQL, a restore).\n\n"
        "example:\n  mutt rules reload",
    )
    p.set_defaults(func=cmd_reload)

    p = add_command(
        sub,
        "list",
        "the rules in evaluation order (priority, then id)",
        "examples:\n  mutt rules list\n"
        "  mutt rules list --json | jq -c 'select(.team_assignment == \"NetOps\")'",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_list)

    p = add_command(
        sub,
        "show",
        "one rule, whether the engine accepts it, and its recent changes",
        "example:\n  mutt rules show 12",
    )
    p.add_argument("id", type=int, help="rule id")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=cmd_show)

    p = add_command(
        sub,
        "test",
        "which rule an event would match, why the others did not, and the decision",
        "examples:\n"
        "  mutt rules test --message 'IDS: port scan from 10.0.0.9' --severity alert\n"
        "  mutt rules test --message 'fan failure' --oid 1.3.6.1.4.1.9.9.117.2.0.6\n"
        "  mutt rules test --message 'Login failed for admin' --host dns-server-10",
    )
    p.add_argument("--message", required=True, help="the event's message text")
    p.add_argument("--host", default="mutt-rules-test", help="hostname (decides prod/dev)")
    p.add_argument("--severity", help="syslog severity: 0-7 or a name (error, warning, ...)")
    p.add_argument("--oid", help="SNMP trap OID, numeric dotted")
    p.set_defaults(func=cmd_test)

    from mutt.commands.backtest import add_backtest  # it builds on this module

    add_backtest(sub)
