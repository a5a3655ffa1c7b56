"""File sink: alerts as JSON lines, for local runs and tests.

It is idempotent by ``alert_id``: the ids in the file are indexed (at open,
then whatever other processes appended, read under the file lock before each
write), so an alert redelivered after a crash is recognised and not written
twice. Lines are flushed one by one (a crash never leaves half a line) and
fsynced once per batch.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import BinaryIO

import orjson

from functions.forward.sinks.base import SendResult
from shared.models import Alert, utcnow


class FileSink:
    """Appends one JSON object per delivered alert to ``path``."""

    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: BinaryIO = open(path, "ab+")  # noqa: SIM115 - lives as long as the sink
        self._seen = self._index()

    def _index(self) -> set[str]:
        """Alert ids already delivered; mends a torn last line."""
        self._pos = 0
        seen: set[str] = set()
        self._catch_up(seen)
        return seen

    def _catch_up(self, seen: set[str]) -> None:
        """Index lines appended since we last looked (by us or another process)."""
        self._fh.seek(self._pos)
        torn = False
        for line in self._fh:
            if not line.endswith(b"\n"):
                torn = True  # a writer died mid-line: end that line and skip it
                break
            try:
                seen.add(str(orjson.loads(line)["alert_id"]))
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
        self._fh.seek(0, os.SEEK_END)
        if torn:
            self._fh.write(b"\n")
            self._fh.flush()
        self._pos = self._fh.tell()

    def send(self, alert: Alert) -> SendResult:
        """Write the alert unless it was delivered before."""
        return SendResult("delivered", duplicate=not self.write(alert))

    def health(self) -> bool:
        return not self._fh.closed

    def flush(self) -> None:
        """Make the batch durable (the engine calls it once per batch)."""
        os.fsync(self._fh.fileno())

    def write(self, alert: Alert) -> bool:
        """Append the alert unless it was delivered before; True when written."""
        key = str(alert.alert_id)
        if key in self._seen:
            return False
        line = orjson.dumps(
            {
                "alert_id": key,
                "delivered_at": utcnow().isoformat(),
                "alert": alert.model_dump(mode="json"),
            }
        )
        fcntl.flock(self._fh, fcntl.LOCK_EX)
        try:
            self._catch_up(self._seen)
            if key in self._seen:
                return False
            self._fh.write(line + b"\n")
            self._fh.flush()
            self._pos = self._fh.tell()
        finally:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
        self._seen.add(key)
        return True

    def close(self) -> None:
        self._fh.close()
