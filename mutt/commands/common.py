"""What every operator command shares: context, errors, time parsing, output, audit rows.

Operator commands run from a terminal or a script: every expected failure
must become one ``mutt: ...`` line (a ``MuttError``), tables must line up,
``--json`` must be one object per line for ``jq``, and progress goes to
stderr so stdout stays machine-readable.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import getpass
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pg8000.native
import redis

from functions.alert.catalog.plan import changed_fields, describe_rule, shorten
from shared.config import Settings, load_settings
from shared.config_audit import ConfigChange, write_config_audit
from shared.context import Context
from shared.db.connection import pg_error
from shared.errors import ConfigError, MuttError, UnreachableError

Command = Callable[[argparse.Namespace], int]


class InputError(MuttError):
    """An argument or file the operator gave is not usable (nothing was changed)."""


class NotFoundError(MuttError):
    """The rule, key or entry the operator named does not exist."""


class RefusedError(MuttError):
    """A destructive step was not confirmed (``--yes``), or state moved under us."""


_opened: list[Context] = []
_data_dir: list[Path] = []  # the running command's --data-dir, if it gave one


def open_context() -> Context:
    """Settings from the environment plus clients; both servers are required.

    Without ``MUTT_REDIS_URL`` / ``MUTT_DATABASE_URL``, the servers are those
    of the ``mutt run`` using the data directory (``--data-dir``,
    ``MUTT_DATA_DIR`` or ``./.mutt``), as its ``run.json`` says. Clients are
    closed when the ``guarded`` command returns, so commands called
    in-process (tests, scripts) leave no connections behind.
    """
    settings = load_settings(data_dir=_data_dir[-1] if _data_dir else None)
    if not settings.redis_url or not settings.database_url:
        settings = _embedded(settings)
    settings.require_urls()
    ctx = Context(settings)
    _opened.append(ctx)
    return ctx


def _embedded(settings: Settings) -> Settings:
    """``settings`` completed with the URLs of the ``mutt run`` in its data directory."""
    from mutt import runfile

    info = runfile.find(settings.data_dir)
    if info.redis_url is None or info.database_url is None:
        raise ConfigError(
            f"the `mutt run` in {settings.data_dir.resolve()} (pid {info.pid}) uses external"
            " servers: set the same MUTT_REDIS_URL and MUTT_DATABASE_URL it was given"
        )
    return settings.model_copy(
        update={
            "redis_url": settings.redis_url or info.redis_url,
            "database_url": settings.database_url or info.database_url,
        }
    )


def _close_opened() -> None:
    while _opened:
        ctx = _opened.pop()
        ctx.drop_pg()
        client = ctx.__dict__.get("redis")  # only if the cached client was created
        if client is not None:
            with contextlib.suppress(redis.RedisError, OSError):
                client.close()


def guarded(func: Command) -> Command:
    """Turn server errors that escape a command into one clear ``mutt:`` line."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        data_dir = getattr(args, "data_dir", None)
        if data_dir is not None:
            _data_dir.append(data_dir)
        try:
            return func(args)
        except BrokenPipeError:  # `mutt ... | head`: the reader has all it wanted
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 0
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise UnreachableError(f"lost the connection to Redis: {exc}") from None
        except redis.RedisError as exc:
            raise MuttError(f"Redis refused the command: {exc}") from None
        except pg8000.native.DatabaseError as exc:
            code, message = pg_error(exc)
            if code in ("42P01", "42883"):  # undefined table / function
                raise MuttError(
                    f"PostgreSQL: {message} (is the schema migrated? run `mutt db migrate`)"
                ) from None
            raise MuttError(f"PostgreSQL: {message}") from None
        except (pg8000.native.InterfaceError, ConnectionError) as exc:
            raise UnreachableError(f"lost the connection to PostgreSQL: {exc}") from None
        finally:
            _close_opened()
            if data_dir is not None:
                _data_dir.pop()

    return run


def add_audit_options(parser: argparse.ArgumentParser, *, review: bool = False) -> None:
    """``--reason``/``--by`` of every audited change; ``review`` adds ``--dry-run``/``--yes``."""
    parser.add_argument(
        "--reason", required=True, help="why: written to config_audit_log (required)"
    )
    parser.add_argument("--by", help="who (default: $USER)")
    if review:
        parser.add_argument("--dry-run", action="store_true", help="show the diff, change nothing")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def add_command(
    subparsers: argparse._SubParsersAction,  # type: ignore[type-arg]
    name: str,
    help_text: str,
    epilog: str,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` keeps the epilog's example layout."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help_text,
        description=description or help_text,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=argparse.SUPPRESS,  # given at any level of `mutt rules --data-dir D list`
        help="the data directory of the `mutt run` to reach when no MUTT_*_URL is set"
        " (default ./.mutt, MUTT_DATA_DIR)",
    )
    return parser


# ---------------------------------------------------------------- time

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


def parse_duration(text: str, option: str) -> timedelta:
    """``90s``, ``30m``, ``24h``, ``7d``, ``2w`` as a ``timedelta``."""
    found = _DURATION.match(text)
    if found is None:
        raise InputError(f"{option} {text!r}: expected a duration such as 30m, 24h or 7d")
    return timedelta(seconds=float(found[1]) * _UNIT_SECONDS[found[2].lower()])


def parse_when(text: str, option: str, now: datetime | None = None) -> datetime:
    """A point in time: a duration ago (``24h``) or an ISO date/time (UTC if no zone)."""
    if _DURATION.match(text):
        return (now or datetime.now(UTC)) - parse_duration(text, option)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            f"{option} {text!r}: expected a duration (24h, 7d) or an ISO time"
            " (2024-05-01 or 2024-05-01T12:00:00Z)"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def format_time(value: object) -> str:
    """A timestamp as ``2024-05-01T12:00:00Z`` (UTC, seconds)."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return "" if value is None else str(value)


def format_age(seconds: float | None) -> str:
    """``42s``, ``3m12s``, ``2h05m``, ``4d03h``: short enough for a table cell."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86_400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86_400}d{s % 86_400 // 3600:02d}h"


def stream_id_ms(entry_id: str) -> int:
    """The millisecond timestamp inside a stream entry id (``1700000000000-3``)."""
    return int(entry_id.split("-", 1)[0])


# ---------------------------------------------------------------- output


def _is_number(text: str) -> bool:
    return bool(re.fullmatch(r"-?\d+(\.\d+)?", text))


def render_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """An aligned plain-text table; numeric columns right-aligned."""
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    numeric = [
        bool(cells) and all(_is_number(row[i]) or row[i] in ("", "-") for row in cells)
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(widths[i]) if numeric[i] else v.ljust(widths[i]) for i, v in enumerate(values)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(list(headers)), *(line(row) for row in cells)])


def to_jsonable(value: object) -> object:
    """Datetimes as ISO strings, everything else as orjson sees it."""
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def json_line(obj: Mapping[str, Any]) -> str:
    """One object on one line (``--json`` output is JSON Lines)."""
    return orjson.dumps(obj, default=to_jsonable).decode()


def say(text: str) -> None:
    """Progress and notes for the operator: stderr, so stdout stays parseable."""
    print(text, file=sys.stderr, flush=True)


def operator_name(by: str | None) -> str:
    """Who is making the change: ``--by``, else the login name."""
    if by and by.strip():
        return by.strip()
    env_user = os.environ.get("USER")
    if env_user:
        return env_user
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def confirm(question: str, yes: bool) -> None:
    """Go on if ``--yes`` or the operator types y; refuse without a terminal to ask."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise RefusedError(f"{question} — not confirmed; add --yes to run without a prompt")
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise RefusedError("cancelled; nothing was changed")


# ---------------------------------------------------------------- config audit
# The writer lives in shared/config_audit.py: the admin API records through it too.
__all__ = [
    "ConfigChange",
    "changed_fields",
    "describe_rule",
    "shorten",
    "write_config_audit",
]
