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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pg8000.native
import redis
import yaml
from pydantic import ValidationError

from functions.alert.cache import bump_version
from functions.alert.catalog import (
    CatalogInvalid,
    catalog_document,
    check_catalog,
    rule_document,
    rule_values,
)
from functions.alert.rules import DevHosts, RuleSet, normalize_oid
from functions.alert.store import RULE_COLUMNS
from mutt.commands.common import (
    ConfigChange,
    InputError,
    NotFoundError,
    RefusedError,
    add_audit_options,
    add_command,
    changed_fields,
    confirm,
    describe_rule,
    format_time,
    guarded,
    json_line,
    open_context,
    operator_name,
    render_table,
    say,
    shorten,
    write_config_audit,
)
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

TABLE_RULES = "alert_rules"
TABLE_HOSTS = "development_hosts"
TABLE_TEAMS = "device_teams"
_SELECT_RULES = (
    "SELECT id, match_type, match_string, trap_oid, syslog_severity, priority,"
    " prod_handling, dev_handling, team_assignment, is_active, description"
    " FROM alert_rules"
)
_VALUE_KEYS = (*RULE_COLUMNS[1:], "description")
_RECORDSET = (
    "jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(id int, match_type text,"
    " match_string text, trap_oid text, syslog_severity smallint, priority int,"
    " prod_handling text, dev_handling text, team_assignment text, is_active boolean,"
    " description text)"
)


# ---------------------------------------------------------------- state and plan


@dataclass
class State:
    """Rules (id → stored values, in evaluation order), dev hosts and device teams."""

    rules: dict[int, dict[str, Any]] = field(default_factory=dict)
    hosts: set[str] = field(default_factory=set)
    teams: dict[str, str] = field(default_factory=dict)


@dataclass
class Desired:
    """A validated rules file: (id or None, values) per rule, hosts, teams."""

    rules: list[tuple[int | None, dict[str, Any]]]
    hosts: set[str]
    teams: dict[str, str]


def _row_values(row: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(_VALUE_KEYS, row[1:], strict=True))


def read_state(conn: pg8000.native.Connection) -> State:
    """What the database holds now, in the form the file is compared in."""
    state = State()
    for row in conn.run(_SELECT_RULES + " ORDER BY priority, id"):
        state.rules[int(row[0])] = _row_values(row)
    state.hosts = {str(r[0]) for r in conn.run("SELECT hostname FROM development_hosts")}
    state.teams = {
        str(h): str(t) for h, t in conn.run("SELECT hostname, team_assignment FROM device_teams")
    }
    return state


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
    """Every change that makes the database equal the file (record ids of creates: ``new#N``)."""
    unknown = [rid for rid, _ in desired.rules if rid is not None and rid not in state.rules]
    if unknown:
        listed = ", ".join(map(str, unknown[:10])) + (" ..." if len(unknown) > 10 else "")
        raise InputError(
            f"rule id(s) {listed} do not exist in the database: an id names an existing rule"
            " (from `mutt rules export`); leave it out to create a rule. Nothing was changed"
        )
    changes: list[ConfigChange] = []
    kept: set[int] = set()
    for number, (rid, values) in enumerate(desired.rules, 1):
        if rid is None:
            changes.append(ConfigChange("CREATE", TABLE_RULES, f"new#{number}", None, values))
            continue
        kept.add(rid)
        if state.rules[rid] != values:
            changes.append(ConfigChange("UPDATE", TABLE_RULES, str(rid), state.rules[rid], values))
    if prune:
        changes += [
            ConfigChange("DELETE", TABLE_RULES, str(rid), values, None)
            for rid, values in state.rules.items()
            if rid not in kept
        ]
    changes += [
        ConfigChange("CREATE", TABLE_HOSTS, h, None, {"hostname": h})
        for h in sorted(desired.hosts - state.hosts)
    ]
    if prune:
        changes += [
            ConfigChange("DELETE", TABLE_HOSTS, h, {"hostname": h}, None)
            for h in sorted(state.hosts - desired.hosts)
        ]
    for host in sorted(desired.teams):
        new = {"team_assignment": desired.teams[host]}
        if host not in state.teams:
            changes.append(ConfigChange("CREATE", TABLE_TEAMS, host, None, new))
        elif state.teams[host] != desired.teams[host]:
            old = {"team_assignment": state.teams[host]}
            changes.append(ConfigChange("UPDATE", TABLE_TEAMS, host, old, new))
    if prune:
        changes += [
            ConfigChange("DELETE", TABLE_TEAMS, h, {"team_assignment": t}, None)
            for h, t in sorted(state.teams.items())
            if h not in desired.teams
        ]
    return changes


# ---------------------------------------------------------------- diff text


def render_plan(changes: Sequence[ConfigChange]) -> str:
    """The diff, grouped by table: + created, ~ changed, - deleted."""
    lines: list[str] = []
    sign = {"CREATE": "+", "UPDATE": "~", "DELETE": "-"}
    for table in (TABLE_RULES, TABLE_HOSTS, TABLE_TEAMS):
        mine = [c for c in changes if c.table_name == table]
        if not mine:
            continue
        lines.append(f"{table}:")
        for c in mine:
            if table == TABLE_RULES:
                name = "new rule" if c.record_id.startswith("new#") else f"rule {c.record_id}"
                if c.record_id.startswith("new#"):
                    name += f" (#{c.record_id[4:]} in the file)"
                if c.operation == "UPDATE":
                    text = changed_fields(c.old_values, c.new_values)
                else:
                    text = describe_rule(c.new_values or c.old_values or {})
            elif table == TABLE_TEAMS:
                name = c.record_id
                old = (c.old_values or {}).get("team_assignment")
                new = (c.new_values or {}).get("team_assignment")
                text = {"CREATE": f"{new}", "UPDATE": f"{old} → {new}", "DELETE": f"(was {old})"}[
                    c.operation
                ]
            else:
                name, text = c.record_id, ""
            lines.append(f"  {sign[c.operation]} {name}{': ' + text if text else ''}")
    return "\n".join(lines)


def summarize(changes: Sequence[ConfigChange]) -> str:
    counts: dict[tuple[str, str], int] = {}
    for c in changes:
        counts[(c.table_name, c.operation)] = counts.get((c.table_name, c.operation), 0) + 1
    parts = []
    for table, label in (
        (TABLE_RULES, "rules"),
        (TABLE_HOSTS, "dev hosts"),
        (TABLE_TEAMS, "teams"),
    ):
        made = [
            f"{counts[(table, op)]} {word}"
            for op, word in (("CREATE", "created"), ("UPDATE", "changed"), ("DELETE", "deleted"))
            if counts.get((table, op))
        ]
        if made:
            parts.append(f"{label}: {', '.join(made)}")
    return "; ".join(parts) if parts else "no changes"


# ---------------------------------------------------------------- apply


def _rule_rows(items: Sequence[tuple[int, Mapping[str, Any]]]) -> str:
    return orjson.dumps([{"id": rid, **values} for rid, values in items]).decode()


def _apply_rules(conn: pg8000.native.Connection, changes: list[ConfigChange]) -> None:
    """Rule changes in three statements whatever their number; fills in created ids."""
    deletes = [
        int(c.record_id) for c in changes if c.table_name == TABLE_RULES and c.operation == "DELETE"
    ]
    if deletes:
        conn.run("DELETE FROM alert_rules WHERE id = ANY(:ids)", ids=deletes)
    updates = [
        (int(c.record_id), c.new_values or {})
        for c in changes
        if c.table_name == TABLE_RULES and c.operation == "UPDATE"
    ]
    if updates:
        sets = ", ".join(f"{k} = x.{k}" for k in _VALUE_KEYS)
        conn.run(
            f"UPDATE alert_rules AS a SET {sets}, updated_at = now() FROM {_RECORDSET}"  # noqa: S608 - fixed column names
            " WHERE a.id = x.id",
            rows=_rule_rows(updates),
        )
    creates = [
        i for i, c in enumerate(changes) if c.table_name == TABLE_RULES and c.operation == "CREATE"
    ]
    if creates:
        ids = [
            int(r[0])
            for r in conn.run(
                "SELECT nextval(pg_get_serial_sequence('alert_rules', 'id'))"
                " FROM generate_series(1, :n)",
                n=len(creates),
            )
        ]
        for i, rid in zip(creates, ids, strict=True):
            changes[i] = replace(changes[i], record_id=str(rid))
        columns = ", ".join(_VALUE_KEYS)
        conn.run(
            f"INSERT INTO alert_rules (id, {columns}) SELECT id, {columns} FROM {_RECORDSET}",  # noqa: S608 - fixed column names
            rows=_rule_rows(
                [(rid, changes[i].new_values or {}) for i, rid in zip(creates, ids, strict=True)]
            ),
        )


def _apply_reference(conn: pg8000.native.Connection, changes: Sequence[ConfigChange]) -> None:
    """Development hosts and device teams."""

    def ids(table: str, *ops: str) -> str:
        return orjson.dumps(
            [c.record_id for c in changes if c.table_name == table and c.operation in ops]
        ).decode()

    conn.run(
        "DELETE FROM development_hosts WHERE hostname IN"
        " (SELECT jsonb_array_elements_text(CAST(:h AS jsonb)))",
        h=ids(TABLE_HOSTS, "DELETE"),
    )
    conn.run(
        "INSERT INTO development_hosts (hostname)"
        " SELECT jsonb_array_elements_text(CAST(:h AS jsonb)) ON CONFLICT DO NOTHING",
        h=ids(TABLE_HOSTS, "CREATE"),
    )
    conn.run(
        "DELETE FROM device_teams WHERE hostname IN"
        " (SELECT jsonb_array_elements_text(CAST(:h AS jsonb)))",
        h=ids(TABLE_TEAMS, "DELETE"),
    )
    teams = {
        c.record_id: (c.new_values or {}).get("team_assignment")
        for c in changes
        if c.table_name == TABLE_TEAMS and c.operation in ("CREATE", "UPDATE")
    }
    conn.run(
        "INSERT INTO device_teams (hostname, team_assignment)"
        " SELECT key, value FROM jsonb_each_text(CAST(:t AS jsonb))"
        " ON CONFLICT (hostname) DO UPDATE SET team_assignment = EXCLUDED.team_assignment,"
        " updated_at = now()",
        t=orjson.dumps(teams).decode(),
    )


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
    """Re-plan under a lock and apply in one transaction, if nothing moved since ``shown``."""
    conn.run("BEGIN")
    try:
        # Writers wait for each other; the alert stage's reads are not blocked.
        conn.run(
            "LOCK TABLE alert_rules, development_hosts, device_teams IN SHARE ROW EXCLUSIVE MODE"
        )
        changes = build_plan(read_state(conn), desired, prune=prune)
        if changes != shown:
            raise RefusedError(
                "the rules changed in the database since the diff was computed;"
                " nothing was changed, run the command again"
            )
        _apply_rules(conn, changes)
        _apply_reference(conn, changes)
        write_config_audit(
            conn, changes, changed_by=changed_by, reason=reason, correlation_id=correlation_id
        )
        conn.run("COMMIT")
    except BaseException:
        conn.run("ROLLBACK")
        raise
    return changes


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
    rows = conn.run(
        "SELECT id, match_type, match_string, trap_oid, syslog_severity, priority,"
        " prod_handling, dev_handling, team_assignment, is_active, description,"
        " created_at, updated_at FROM alert_rules WHERE id = :id",
        id=rule_id,
    )
    if not rows:
        raise NotFoundError(f"no rule with id {rule_id} (see `mutt rules list`)")
    row = rows[0]
    return _row_values(row[:11]), list(row[11:])


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
    history = conn.run(
        "SELECT changed_at, changed_by, operation, reason, old_values, new_values"
        " FROM config_audit_log WHERE table_name = 'alert_rules' AND record_id = :rid"
        " ORDER BY changed_at DESC, id DESC LIMIT 5",
        rid=str(args.id),
    )
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
