"""``mutt correlation``: the correlation file as code (apply, export) and its live state.

The file says which rules pair with a clear message (``docs/correlation.md``);
it is the whole truth, like ``mutt rules apply``: pairs absent from it are
removed. An invalid file, or one naming a rule that does not exist, changes
nothing. A valid one is stored in Redis in the PostgreSQL transaction that
writes one ``config_audit_log`` row per changed pair (table
``correlation_pairs``), and every alert instance applies it within a second.
Windows, thresholds and caps are live settings (``mutt config set``).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
import yaml

from functions.alert.correlation.config import (
    CorrelationDoc,
    PairSpec,
    load_doc,
    parse_correlation,
    store_doc,
)
from functions.alert.correlation.silences import load_silences
from mutt.commands.common import (
    ConfigChange,
    InputError,
    add_audit_options,
    add_command,
    changed_fields,
    confirm,
    guarded,
    json_line,
    open_context,
    operator_name,
    render_table,
    say,
    write_config_audit,
)
from shared.broker.keys import CorrelationKeys
from shared.dynconfig import DynamicConfig

TABLE = "correlation_pairs"
KNOB_NAMES = (
    "alert_dedup_seconds",
    "flap_threshold",
    "flap_window_seconds",
    "flap_settle_seconds",
    "storm_host_per_minute",
    "storm_global_per_minute",
    "pair_open_days",
    "audit_unhandled",
)
SCAN_LIMIT = 100_000

EPILOG = """examples:
  mutt correlation export --out correlation.yaml
  $EDITOR correlation.yaml
  mutt correlation apply correlation.yaml --reason 'CHG-1234 pair link down/up' --dry-run
  mutt correlation apply correlation.yaml --reason 'CHG-1234 pair link down/up' --yes
  mutt correlation status
  mutt config set alert_dedup_seconds 900 --reason 'one page per 15 min per problem'
"""


def read_file(path: str) -> CorrelationDoc:
    """Read and validate a correlation file; ``InputError`` lists every problem."""
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
        raise InputError(f"{origin}{at}: not valid YAML; nothing was changed") from None
    try:
        return parse_correlation(doc, origin)
    except ValueError as exc:
        problems = str(exc).splitlines()
        if len(problems) > 1:
            for problem in problems:
                say(problem)
            raise InputError(
                f"{origin}: {len(problems)} problems (listed above); nothing was changed"
            ) from None
        raise InputError(f"{exc}; nothing was changed") from None


def _values(pair: PairSpec) -> dict[str, Any]:
    return pair.model_dump(mode="json", exclude={"rule"})


def plan(current: CorrelationDoc, desired: CorrelationDoc) -> list[ConfigChange]:
    """Per pair: created, changed or removed (the file is the whole truth)."""
    old = {p.rule: p for p in current.pairs}
    new = {p.rule: p for p in desired.pairs}
    changes = []
    for rule, pair in new.items():
        if rule not in old:
            changes.append(ConfigChange("CREATE", TABLE, str(rule), None, _values(pair)))
        elif old[rule] != pair:
            changes.append(
                ConfigChange("UPDATE", TABLE, str(rule), _values(old[rule]), _values(pair))
            )
    changes += [
        ConfigChange("DELETE", TABLE, str(rule), _values(pair), None)
        for rule, pair in old.items()
        if rule not in new
    ]
    return changes


def render(changes: list[ConfigChange]) -> str:
    sign = {"CREATE": "+", "UPDATE": "~", "DELETE": "-"}
    lines = []
    for c in changes:
        values = c.new_values or c.old_values or {}
        text = (
            changed_fields(c.old_values, c.new_values)
            if c.operation == "UPDATE"
            else f"clear '{values.get('clear')}', instance {values.get('instance')}"
        )
        lines.append(f"  {sign[c.operation]} rule {c.record_id}: {text}")
    return "\n".join(lines)


@guarded
def cmd_apply(args: argparse.Namespace) -> int:
    reason = (args.reason or "").strip()
    if not reason:
        raise InputError("--reason must say why (it is written to config_audit_log)")
    desired = read_file(args.file)
    ctx = open_context()
    conn = ctx.pg()
    wanted = [p.rule for p in desired.pairs]
    if wanted:
        found = {
            int(r[0])
            for r in conn.run("SELECT id FROM alert_rules WHERE id = ANY(:ids)", ids=wanted)
        }
        missing = [str(rule) for rule in wanted if rule not in found]
        if missing:
            raise InputError(
                f"rule(s) {', '.join(missing)} do not exist (see `mutt rules list`);"
                " nothing was changed"
            )
    keys = CorrelationKeys(ctx.settings.namespace)
    current, raw = load_doc(ctx.redis, keys)
    changes = plan(current, desired)
    if not changes:
        print("no changes: the applied correlation file already matches")
        return 0
    print(render(changes))
    if args.dry_run:
        print("dry run: nothing was changed")
        return 0
    confirm(f"apply {len(changes)} changes?", args.yes)
    conn.run("BEGIN")
    try:
        store_doc(ctx.redis, keys, desired)
        write_config_audit(
            conn,
            changes,
            changed_by=operator_name(args.by),
            reason=reason,
            correlation_id=str(uuid.uuid4()),
        )
        conn.run("COMMIT")
    except BaseException:
        conn.run("ROLLBACK")
        with contextlib.suppress(redis.RedisError):  # undo what the audit could not record
            if raw is None:
                ctx.redis.delete(keys.config)
            else:
                ctx.redis.set(keys.config, raw)
        raise
    print(f"applied {len(changes)} changes; alert instances apply them within a second")
    return 0


@guarded
def cmd_export(args: argparse.Namespace) -> int:
    ctx = open_context()
    doc, _ = load_doc(ctx.redis, CorrelationKeys(ctx.settings.namespace))
    text = "# MUTT correlation, exported by `mutt correlation export`.\n" + yaml.safe_dump(
        doc.document(), sort_keys=False, allow_unicode=True, width=4096
    )
    if args.out is None or str(args.out) == "-":
        sys.stdout.write(text)
        return 0
    try:
        args.out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    say(f"wrote {len(doc.pairs)} pairs to {args.out}")
    return 0


def _scan_state(r: redis.Redis, keys: CorrelationKeys) -> tuple[int, int, int, bool]:
    """(keys seen, open paired alerts, flapping keys, scan cut short)."""
    seen = opened = flapping = 0
    batch: list[Any] = []

    def flush() -> None:
        nonlocal opened, flapping
        pipe = r.pipeline(transaction=False)
        for key in batch:
            pipe.hmget(key, "o", "F")
        for o, f in pipe.execute():
            opened += o is not None
            flapping += f is not None
        batch.clear()

    for key in r.scan_iter(match=keys.state_pattern(), count=1000):
        seen += 1
        batch.append(key)
        if len(batch) >= 500:
            flush()
        if seen >= SCAN_LIMIT:
            break
    if batch:
        flush()
    return seen, opened, flapping, seen >= SCAN_LIMIT


@guarded
def cmd_status(args: argparse.Namespace) -> int:
    ctx = open_context()
    keys = CorrelationKeys(ctx.settings.namespace)
    doc, _ = load_doc(ctx.redis, keys)
    knobs = DynamicConfig(ctx.redis, ctx.keys.config).snapshot()
    now = datetime.now(UTC)
    silences = load_silences(ctx.redis, keys)
    active = [s for s in silences if s.state_at(now)[0]]
    seen, opened, flapping, cut = _scan_state(ctx.redis, keys)
    status = {
        "pairs": len(doc.pairs),
        "silences": len(silences),
        "silences_active": len(active),
        "alert_keys": seen,
        "open_paired_alerts": opened,
        "flapping_keys": flapping,
        "scan_cut_short": cut,
        **{name: knobs[name] for name in KNOB_NAMES},
    }
    if args.json:
        print(json_line(status))
        return 0
    print(render_table(["WHAT", "VALUE"], [(k, str(v)) for k, v in status.items()]))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``mutt correlation`` and its actions."""
    group = add_command(
        subparsers, "correlation", "pairing (down/up), flapping, dedup and storm state", EPILOG
    )
    sub = group.add_subparsers(dest="correlation_command", required=True, metavar="ACTION")

    p = add_command(
        sub,
        "apply",
        "make the applied correlation file equal FILE (validated, diffed, audited)",
        EPILOG,
    )
    p.add_argument("file", help="the correlation YAML file (- for standard input)")
    add_audit_options(p, review=True)
    p.set_defaults(func=cmd_apply)

    p = add_command(
        sub,
        "export",
        "write the applied correlation file",
        "example:\n  mutt correlation export --out correlation.yaml",
    )
    p.add_argument("--out", type=Path, help="file to write (default: standard output)")
    p.set_defaults(func=cmd_export)

    p = add_command(
        sub,
        "status",
        "pairs, silences, open and flapping alert keys, and the correlation settings",
        "example:\n  mutt correlation status --json",
    )
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=cmd_status)
