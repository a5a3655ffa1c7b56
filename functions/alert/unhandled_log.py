"""One INFO line for an unhandled event, with the command that explains it.

An event no rule matches raises nothing until its fingerprint crosses the
unhandled threshold, so a user's first event could vanish without a word.
Each host gets at most one such line per interval: a flood of unmatched
syslog costs a dictionary lookup per event, not a log line.
"""

from __future__ import annotations

import logging
import shlex
import time

from shared.models import Event

log = logging.getLogger("functions.alert.unhandled")

INTERVAL_SECONDS = 60.0
MAX_HOSTS = 1024  # remembered at once; beyond, the oldest are forgotten


class UnhandledLog:
    """Says, now and then per host, that an event matched no rule."""

    def __init__(self, interval: float = INTERVAL_SECONDS) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}

    def note(self, event: Event) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        now = time.monotonic()
        last = self._last.get(event.hostname)
        if last is not None and now - last < self.interval:
            return
        if len(self._last) >= MAX_HOSTS:
            self._last.pop(next(iter(self._last)))
        self._last.pop(event.hostname, None)
        self._last[event.hostname] = now
        command = ["mutt", "rules", "test", "--host", event.hostname, "--message"]
        command.append(event.message[:200])
        if event.trap_oid:
            command += ["--oid", event.trap_oid]
        log.info(
            "no rule matched an event from %s (%s); see why: %s",
            event.hostname,
            event.message[:120],
            shlex.join(command),
            extra={"event_id": str(event.event_id)},
        )
