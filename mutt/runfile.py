"""How operator commands find a running ``mutt run``: ``<data-dir>/run.json``.

``mutt run`` on the embedded default starts Redis and PostgreSQL on Unix
sockets under its data directory. ``mutt status``, ``mutt rules ...`` and the
other operator commands, run from the same directory (or given the same
``--data-dir``), read this file instead of asking the user for URLs. Only the
embedded servers' URLs are written (they hold no password); a run on
external servers is reached with the same ``MUTT_*`` variables it was given.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import orjson

from shared.errors import ConfigError

FILENAME = "run.json"


@dataclass(frozen=True)
class RunInfo:
    """What a running ``mutt run`` tells the commands beside it."""

    pid: int
    ingest_url: str
    redis_url: str | None = None
    database_url: str | None = None
    admin_url: str | None = None

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # it exists, under another user
        return True


def path_for(data_dir: Path) -> Path:
    return data_dir / FILENAME


def write(data_dir: Path, info: RunInfo) -> Path:
    """Write atomically (rename), readable by this user only."""
    path = path_for(data_dir)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(orjson.dumps(info.__dict__, option=orjson.OPT_INDENT_2) + b"\n")
    tmp.replace(path)
    return path


def remove(data_dir: Path, pid: int) -> None:
    """Remove the record of run ``pid`` (not one another run wrote since)."""
    info = read(data_dir)
    if info is not None and info.pid == pid:
        with contextlib.suppress(FileNotFoundError):
            path_for(data_dir).unlink()


def read(data_dir: Path) -> RunInfo | None:
    """The run recorded in ``data_dir``, or ``None`` when there is none (or it is unreadable)."""
    try:
        doc = orjson.loads(path_for(data_dir).read_bytes())
        return RunInfo(
            pid=int(doc["pid"]),
            ingest_url=str(doc["ingest_url"]),
            redis_url=doc.get("redis_url"),
            database_url=doc.get("database_url"),
            admin_url=doc.get("admin_url"),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def find(data_dir: Path) -> RunInfo:
    """The live run in ``data_dir``, or one clear error saying what to do."""
    info = read(data_dir)
    where = data_dir.resolve()
    hint = (
        "start `mutt run` there, pass the --data-dir it uses,"
        " or set MUTT_REDIS_URL and MUTT_DATABASE_URL"
    )
    if info is None:
        raise ConfigError(f"no MUTT_REDIS_URL, and no `mutt run` found in {where}: {hint}")
    if not info.alive():
        raise ConfigError(f"the `mutt run` that used {where} (pid {info.pid}) is gone: {hint}")
    return info
