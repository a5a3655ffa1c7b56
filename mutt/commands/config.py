"""``mutt config``: read and change dynamic settings, and list the static ones.

Dynamic settings (rate limits, thresholds) live in one Redis hash and every
instance re-reads it within a second (``shared.dynconfig``). A change is
validated against ``KNOBS`` before anything is written, and recorded in
``config_audit_log`` (table ``dynamic_config``, record id = the key) in the
same PostgreSQL transaction that brackets the Redis write, so a change the
audit could not record is not made.
"""

from __future__ import annotations

import argparse

import redis

from mutt.commands.common import (
    InputError,
    NotFoundError,
    add_audit_options,
    add_command,
    guarded,
    json_line,
    open_context,
    operator_name,
    render_table,
)
from shared.config import Settings, env_name
from shared.dynconfig import KNOBS, DynamicConfig, set_audited

TABLE = "dynamic_config"

EPILOG = """examples:
  mutt config list
  mutt config get forward_rate_limit
  mutt config set forward_rate_limit 250 --reason 'INC-77: PagerDuty throttling us'
  mutt config env            # the static MUTT_* environment variables
"""


def _stored(r: redis.Redis, key: str) -> dict[str, str]:
    raw: dict[bytes, bytes] = r.hgetall(key)  # type: ignore[assignment]
    return {k.decode(): v.decode() for k, v in raw.items()}


def _unknown(name: str) -> NotFoundError:
    return NotFoundError(f"unknown setting {name!r}; known: {', '.join(sorted(KNOBS))}")


@guarded
def cmd_list(args: argparse.Namespace) -> int:
    ctx = open_context()
    stored = _stored(ctx.redis, ctx.keys.config)
    effective = DynamicConfig(ctx.redis, ctx.keys.config).snapshot()
    rows = []
    for name in sorted(KNOBS):
        knob = KNOBS[name]
        source = "set" if name in stored else "default"
        if name in stored:
            try:
                knob.parse(stored[name])
            except ValueError:  # written behind our back: readers ignore it
                source = f"INVALID stored value {stored[name]!r}; default in force"
        if args.json:
            print(
                json_line(
                    {
                        "key": name,
                        "value": effective[name],
                        "default": knob.default,
                        "source": source,
                        "help": knob.help,
                    }
                )
            )
        rows.append((name, effective[name], knob.default, source, knob.help))
    if not args.json:
        print(render_table(["KEY", "VALUE", "DEFAULT", "SOURCE", "MEANING"], rows))
    return 0


@guarded
def cmd_get(args: argparse.Namespace) -> int:
    if args.key not in KNOBS:
        raise _unknown(args.key)
    ctx = open_context()
    print(DynamicConfig(ctx.redis, ctx.keys.config).snapshot()[args.key])
    return 0


@guarded
def cmd_set(args: argparse.Namespace) -> int:
    reason = (args.reason or "").strip()
    if not reason:
        raise InputError("--reason must say why (it is written to config_audit_log)")
    if args.key not in KNOBS:
        raise _unknown(args.key)
    try:
        KNOBS[args.key].parse(args.value.strip())  # refuse before touching anything
    except ValueError as exc:
        raise InputError(f"{args.key}: {exc}; nothing was changed") from None
    ctx = open_context()
    old, new = set_audited(
        ctx.redis,
        ctx.keys.config,
        ctx.pg(),
        args.key,
        args.value,
        changed_by=operator_name(args.by),
        reason=reason,
    )
    print(f"{args.key}: {old} → {new} (every instance applies it within a second)")
    return 0


@guarded
def cmd_env(args: argparse.Namespace) -> int:
    """The static settings: no server is needed to list them."""
    rows = []
    for name, spec in Settings.model_fields.items():
        default = "unset" if spec.default is None else str(spec.default)
        rows.append((env_name(name), default, spec.description or ""))
    if args.json:
        for var, default, meaning in rows:
            print(json_line({"variable": var, "default": default, "meaning": meaning}))
    else:
        print(render_table(["VARIABLE", "DEFAULT", "MEANING"], rows))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``mutt config`` and its actions."""
    config = add_command(subparsers, "config", "show and change dynamic settings", EPILOG)
    sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")

    p = add_command(
        sub,
        "list",
        "every dynamic setting: value in force, default, meaning",
        "examples:\n  mutt config list\n  mutt config list --json",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_list)

    p = add_command(
        sub,
        "get",
        "the value in force of one setting",
        "example:\n  mutt config get breaker_threshold",
    )
    p.add_argument("key", help="setting name (see `mutt config list`)")
    p.set_defaults(func=cmd_get)

    p = add_command(
        sub,
        "set",
        "validate and change one setting; every instance applies it within a second",
        "examples:\n"
        "  mutt config set breaker_threshold 10 --reason 'flaky webhook, CHG-88'\n"
        "  mutt config set ingest_rate_limit 0 --reason 'load test' --by alice\n"
        "The change is written to config_audit_log (see `mutt audit config`).",
    )
    p.add_argument("key", help="setting name (see `mutt config list`)")
    p.add_argument("value", help="new value (validated: an integer within the setting's range)")
    add_audit_options(p)
    p.set_defaults(func=cmd_set)

    p = add_command(
        sub,
        "env",
        "the static MUTT_* environment variables, their defaults and meaning",
        "example:\n  mutt config env",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_env)
