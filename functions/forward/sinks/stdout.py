"""Stdout sink: one JSON line per alert, for local runs and container logs.

Each line is written and flushed in one call, so lines from concurrent
sends never interleave mid-line.
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

import orjson

from functions.forward.sinks.base import SendResult
from shared.models import Alert, utcnow


class StdoutSink:
    """Prints ``{"sink", "delivered_at", "alert"}`` as a JSON line."""

    def __init__(self, name: str = "stdout", stream: TextIO | None = None) -> None:
        self.name = name
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, alert: Alert) -> SendResult:
        line = orjson.dumps(
            {
                "sink": self.name,
                "delivered_at": utcnow().isoformat(),
                "alert": alert.model_dump(mode="json"),
            }
        ).decode()
        stream = self._stream or sys.stdout
        try:
            with self._lock:
                stream.write(line + "\n")
                stream.flush()
        except (OSError, ValueError) as exc:  # closed pipe or closed stream
            return SendResult("retry", detail=f"stdout: {type(exc).__name__}")
        return SendResult("delivered")

    def health(self) -> bool:
        stream = self._stream or sys.stdout
        return not stream.closed
