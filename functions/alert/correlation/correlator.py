"""The correlator: between the rules' decision and the alerts stream, per batch.

The alert handler opens a ``Batch`` per batch of events, adds what the
rules raised (triggers), the clears it found and the timers that came due,
and ``run()`` says per item what to deliver, what to park and what the
audit record should say. Silences are checked in-process; everything with
state (pairing, flapping, dedup window, storm caps) runs in ONE Lua script
per batch (the ``.lua`` files beside each module, concatenated), so a batch
costs one Redis round trip, atomic and in event order. With nothing
configured (no pairs, dedup window and storm caps at 0) and no silences, a
batch costs no Redis call at all.

Redelivery (a crash between this script and the batch's acknowledgement)
replays safely: each key remembers the last alert it delivered and the
last clear that closed it, and every produced alert has a deterministic id
(forward delivers an id once).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import redis

from functions.alert.correlation import alertmanager
from functions.alert.correlation.config import CorrelationDoc, parse_correlation
from functions.alert.correlation.flapping import flapping_alert, flapping_resolved
from functions.alert.correlation.pairing import ClearMatch, PairIndex, default_key, resolve_alert
from functions.alert.correlation.silences import Silence, SilenceBook, decode_silences
from functions.alert.correlation.storm import bucket_of, scope_of, storm_alert, summary_due
from functions.alert.correlation.timers import Timer
from functions.alert.rules import Rule
from shared.broker.keys import CorrelationKeys
from shared.dynconfig import DynamicConfig
from shared.lua import LuaScript
from shared.metrics import ALERTMANAGER_RESOLUTIONS, CORRELATION
from shared.models import Alert, Event, Severity

log = logging.getLogger(__name__)

# The batch script: a helper, each idea's functions, then the driver.
SCRIPT = LuaScript.from_files(
    *(
        f"functions/alert/correlation/{name}.lua"
        for name in ("ms", "dedup_window", "pairing", "flapping", "storm", "correlate")
    )
)


@dataclass(frozen=True)
class Knobs:
    """The live settings a batch runs with (read once per batch)."""

    dedup_ms: int = 0
    flap_threshold: int = 5
    flap_window_ms: int = 600_000
    settle_ms: int = 300_000
    host_cap: int = 0
    global_cap: int = 0
    open_ttl_ms: int = 7 * 86_400_000

    @classmethod
    def read(cls, dyn: DynamicConfig) -> Knobs:
        return cls(
            dedup_ms=dyn.get("alert_dedup_seconds") * 1000,
            flap_threshold=dyn.get("flap_threshold"),
            flap_window_ms=dyn.get("flap_window_seconds") * 1000,
            settle_ms=dyn.get("flap_settle_seconds") * 1000,
            host_cap=dyn.get("storm_host_per_minute"),
            global_cap=dyn.get("storm_global_per_minute"),
            open_ttl_ms=dyn.get("pair_open_days") * 86_400_000,
        )

    @property
    def stateless(self) -> bool:
        """True when an unpaired trigger needs no Redis (no dedup window, no storm caps)."""
        return self.dedup_ms == 0 and self.host_cap == 0 and self.global_cap == 0


@dataclass
class Result:
    """What correlation decided for one item."""

    alerts: list[Alert] = field(default_factory=list)  # to deliver
    timers: list[Timer] = field(default_factory=list)  # to park
    note: str | None = None  # for the audit record (None: delivered as raised)
    delivered: bool = False  # the item's own alert (or its resolve) goes out


@dataclass
class _Item:
    # t trigger, r clear, s flapping timer, S storm timer; without Redis: = deliver, 0 no-op clear
    op: str
    key: str = ""
    storm_key: str = ""
    id: str = ""
    json: str = ""
    severity: int = 4
    paired: bool = False
    alert: Alert | None = None
    event: Event | None = None
    timer: Timer | None = None


class Correlator:
    """Holds the applied pairs and silences (re-read within a second); opens batches."""

    def __init__(
        self,
        r: redis.Redis | None,
        namespace: str,
        dyn: DynamicConfig,
        default_team: str,
        *,
        clock: Callable[[], float] = time.time,
        refresh_seconds: float = 1.0,
    ) -> None:
        self.keys = CorrelationKeys(namespace)
        self.dyn = dyn
        self.default_team = default_team
        self.clock = clock
        self._r = r  # None: correlation off (no pairs, silences, windows or caps)
        self._refresh_seconds = refresh_seconds
        self._loaded_at = -1e9
        self._lock = threading.Lock()
        self._raw_config: bytes | None = None
        self._raw_silences: dict[Any, Any] | None = None
        self.pairs = PairIndex(CorrelationDoc())
        self.silences = SilenceBook()
        self.last_error: str | None = None
        self._config_error: str | None = None

    @property
    def stateful(self) -> bool:
        """True when correlation has Redis (always, in the stages; not for embedders):
        without it nothing can be open, nothing tracked."""
        return self._r is not None

    def begin(self) -> Batch:
        """A batch seeing the current pairs, silences and knobs."""
        now_ms = int(self.clock() * 1000)
        if self._r is None:
            return Batch(self, Knobs(), now_ms)
        self._refresh()
        return Batch(self, Knobs.read(self.dyn), now_ms)

    def _refresh(self) -> None:
        if self._r is None or time.monotonic() - self._loaded_at < self._refresh_seconds:
            return
        with self._lock:
            if time.monotonic() - self._loaded_at < self._refresh_seconds:
                return
            self._loaded_at = time.monotonic()
            try:
                pipe = self._r.pipeline(transaction=False)
                pipe.get(self.keys.config)
                pipe.hgetall(self.keys.silences)
                raw_config, raw_silences = pipe.execute()
            except redis.RedisError as exc:  # keep serving what we have
                self.last_error = f"cannot read correlation config: {exc}"
                return
            if raw_config != self._raw_config:
                self._raw_config = raw_config
                try:
                    doc = parse_correlation(orjson.loads(raw_config) if raw_config else None)
                    self.pairs = PairIndex(doc)
                    self._config_error = None
                except (ValueError, orjson.JSONDecodeError) as exc:
                    self._config_error = f"stored correlation config ignored: {exc}"
                    log.error("%s; keeping the last good one", self._config_error)
            self.last_error = self._config_error
            if raw_silences != self._raw_silences:
                self.silences = SilenceBook(decode_silences(raw_silences))
                self._raw_silences = raw_silences

    def run(self, items: Sequence[_Item], knobs: Knobs, now_ms: int) -> list[Any]:
        """The batch script over ``items``: one round trip."""
        if self._r is None:  # off: only timers parked while it was on get here
            return [[b"gone"] for _ in items]
        keys: list[str] = []
        args: list[str | int] = [
            now_ms,
            knobs.dedup_ms,
            knobs.flap_threshold,
            knobs.flap_window_ms,
            knobs.settle_ms,
            knobs.host_cap,
            knobs.global_cap,
            knobs.open_ttl_ms,
        ]
        for item in items:
            keys += [item.key, item.storm_key or item.key]
            args += [item.op, item.id, item.json, item.severity, 1 if item.paired else 0]
        keys.append(self.keys.storm_global(bucket_of(now_ms)))
        answers: list[Any] = SCRIPT.run(self._r, keys, args)
        return answers


class Batch:
    """One batch's correlation: add items in event order, then ``run()`` once."""

    def __init__(self, owner: Correlator, knobs: Knobs, now_ms: int) -> None:
        self._owner = owner
        self.knobs = knobs
        self.now_ms = now_ms
        self.now = datetime.fromtimestamp(now_ms / 1000, UTC)
        self.bucket = bucket_of(now_ms)
        self.pairs = owner.pairs
        self.silences = owner.silences
        self._items: list[_Item] = []

    # ------------------------------------------------------------ what the rules decided

    def dedup_key(self, rule: Rule, event: Event) -> str:
        """The alert's dedup key: the Alertmanager alert's identity for its notifications,
        per instance for paired rules, per rule and host otherwise."""
        fingerprint = alertmanager.fingerprint(event)
        if fingerprint is not None:
            return alertmanager.alert_key(fingerprint)
        if self.pairs:
            key = self.pairs.problem_key(rule.id, event)
            if key is not None:
                return key
        return default_key(rule.id, event.hostname)

    def clears(self, event: Event) -> list[ClearMatch]:
        """What this event clears: an Alertmanager resolution its alert, else the pairs
        whose clear pattern it matches (empty, at no cost, when nothing is paired)."""
        if alertmanager.is_resolution(event):
            fingerprint = alertmanager.fingerprint(event)
            assert fingerprint is not None
            return [ClearMatch(alertmanager.alert_key(fingerprint), None)]
        return self.pairs.clears(event) if self.pairs else []

    def alarm_clear(self, rule: Rule, event: Event) -> ClearMatch:
        """What an X.733 "cleared" event matching ``rule`` ends: the key its alarm had.

        The alarm and its clear are the same notification with another
        severity, so they match the same rule and yield the same key (per
        rule and host, or per instance for a paired rule: the instance is read
        from the clear as from a problem message).
        """
        return ClearMatch(self.dedup_key(rule, event), rule.id)

    def silenced(self, alert: Alert) -> Silence | None:
        """The silence covering ``alert`` now, if any."""
        if not self.silences:
            return None
        found = self.silences.match(alert, self.now)
        if found is not None:
            CORRELATION.labels("silenced").inc()
        return found

    def trigger(self, alert: Alert, *, clearable: bool = False) -> int:
        """Add a raised alert; returns its handle for ``run()``'s results.

        Paired rules' alerts and Alertmanager alerts are kept open in Redis, so
        that their clear (resolution) finds them and resolves them.
        ``clearable``: the alert is an X.733 alarm, which a later "cleared"
        event may end, so it is kept open like a paired rule's alert (and can
        flap like one) even when its rule has no pair.
        """
        paired = (isinstance(alert.rule_id, int) and alert.rule_id in self.pairs.by_rule) or (
            self._owner.stateful
            and (clearable or alertmanager.fingerprint(alert.event) is not None)
        )
        if not paired and self.knobs.stateless:
            return self._add(_Item("=", alert=alert))
        keys = self._owner.keys
        host_window = (
            keys.storm_host(alert.event.hostname, self.bucket) if self.knobs.host_cap else ""
        )
        return self._add(
            _Item(
                "t",
                key=keys.state(alert.dedup_key),
                storm_key=host_window,
                id=str(alert.alert_id),
                json=alert.model_dump_json() if paired else "",
                severity=int(alert.severity),
                paired=paired,
                alert=alert,
            )
        )

    def clear(self, match: ClearMatch, event: Event) -> int:
        """Add a clear of ``match.key`` caused by ``event``."""
        if not self._owner.stateful:  # correlation off: nothing was kept open
            return self._add(_Item("0", event=event))
        return self._add(
            _Item(
                "r",
                key=self._owner.keys.state(match.key),
                id=str(event.event_id),
                json=event.model_dump_json(),
                paired=True,
                event=event,
            )
        )

    def timer(self, timer: Timer) -> int:
        """Add a timer that came due."""
        keys = self._owner.keys
        if timer.kind == "flapping":
            return self._add(
                _Item("s", key=keys.state(timer.key), id=str(timer.due_ms), timer=timer)
            )
        scope = timer.key
        key = (
            keys.storm_host(scope[5:], timer.bucket)
            if scope.startswith("host:")
            else keys.storm_global(timer.bucket)
        )
        return self._add(_Item("S", key=key, timer=timer))

    def _add(self, item: _Item) -> int:
        self._items.append(item)
        return len(self._items) - 1

    # ------------------------------------------------------------ deciding

    def run(self) -> list[Result]:
        """Decide every item: no Redis call when no item needs state, else exactly one."""
        results = [Result() for _ in self._items]
        stateful = []
        for n, item in enumerate(self._items):
            if item.op == "=":
                assert item.alert is not None
                results[n] = Result([item.alert], delivered=True)
            elif item.op == "0":
                results[n] = Result(note="clear:nothing-open")
            else:
                stateful.append(n)
        if stateful:
            items = [self._items[n] for n in stateful]
            answers = self._owner.run(items, self.knobs, self.now_ms)
            seen: dict[str, int] = {}
            for n, answer in zip(stateful, answers, strict=True):
                verdict = [a.decode() if isinstance(a, bytes) else a for a in answer]
                seen[verdict[0]] = seen.get(verdict[0], 0) + 1
                results[n] = self._result(self._items[n], verdict)
            for name, count in seen.items():  # one metric update per verdict, not per item
                CORRELATION.labels(name).inc(count)
        return results

    def _result(self, item: _Item, verdict: list[Any]) -> Result:
        name = verdict[0]
        if item.op == "t":
            return self._triggered(item, name, verdict)
        if item.op == "r":
            return self._cleared(item, name, verdict)
        if item.op == "s":
            return self._settled(item, name, verdict)
        return self._summarized(item, name, verdict)

    def _triggered(self, item: _Item, name: str, verdict: list[Any]) -> Result:
        alert = item.alert
        assert alert is not None
        if name == "emit":
            return Result([alert], delivered=True)
        if name == "dup":
            return Result(note="deduplicated")
        if name == "held":
            return Result(note="flapping:held")
        if name == "onset":
            return self._onset(verdict)
        if name in ("storm", "gstorm"):
            host = alert.event.hostname if name == "storm" else None
            timers = []
            if verdict[1] == "1":
                bucket = self.bucket
                cap = self.knobs.host_cap if host else self.knobs.global_cap
                timers.append(
                    Timer(
                        "storm",
                        scope_of(host),
                        summary_due(bucket),
                        bucket=bucket,
                        sample=alert.model_dump(mode="json"),
                        cap=cap,
                    )
                )
            return Result(timers=timers, note="storm:host" if host else "storm:global")
        raise RuntimeError(f"correlation: unexpected verdict {name!r} for a trigger")

    def _cleared(self, item: _Item, name: str, verdict: list[Any]) -> Result:
        event = item.event
        assert event is not None
        if name == "resolve":
            opened = Alert.model_validate_json(verdict[1])
            result = Result(
                [resolve_alert(opened, event, self.now)], delivered=True, note="resolved"
            )
        elif name in ("noop", "gone"):  # gone: no Redis (embedders), so nothing is open
            result = Result(note="clear:nothing-open")
        elif name == "held":
            result = Result(note="flapping:held")
        elif name == "onset":
            result = self._onset(verdict)
        else:
            raise RuntimeError(f"correlation: unexpected verdict {name!r} for a clear")
        if alertmanager.is_resolution(event):
            _count_resolution(event, result)
        return result

    def _onset(self, verdict: list[Any]) -> Result:
        """The key began flapping: its flapping alert, and the timer that will settle it."""
        basis = Alert.model_validate_json(verdict[1])
        onset, due = int(verdict[2]), int(verdict[3])
        alert = flapping_alert(
            basis,
            onset,
            self.knobs.flap_threshold,
            self.knobs.flap_window_ms // 1000,
            self.knobs.settle_ms // 1000,
            self.now,
        )
        timer = Timer("flapping", basis.dedup_key, due)
        return Result([alert], [timer], note="flapping:began")

    def _settled(self, item: _Item, name: str, verdict: list[Any]) -> Result:
        timer = item.timer
        assert timer is not None
        if name == "wait":
            return Result(timers=[Timer("flapping", timer.key, int(verdict[1]))])
        if name != "settled":
            return Result()
        basis = Alert.model_validate_json(verdict[1])
        alerts = [flapping_resolved(basis, int(verdict[5]), self.now)]
        final, kind, closes = verdict[2] or "", verdict[3] or "", verdict[4] or ""
        if kind == "t":
            held = Alert.model_validate_json(final)
            if self.silenced(held) is None:
                alerts.append(held)
        elif kind == "r":
            opened = Alert.model_validate_json(closes)
            alerts.append(resolve_alert(opened, Event.model_validate_json(final), self.now))
        return Result(alerts, delivered=True, note="flapping:settled")

    def _summarized(self, item: _Item, name: str, verdict: list[Any]) -> Result:
        timer = item.timer
        assert timer is not None and timer.sample is not None
        if name != "summary" or int(verdict[1]) <= 0:
            return Result()
        sample = Alert.model_validate(timer.sample)
        worst = Severity(int(verdict[2])) if verdict[2] else None
        team = sample.team if timer.key.startswith("host:") else self._owner.default_team
        alert = storm_alert(
            sample, timer.key, timer.bucket, int(verdict[1]), worst, timer.cap, team, self.now
        )
        return Result([alert], delivered=True, note="storm:summary")


def _count_resolution(event: Event, result: Result) -> None:
    """Count an Alertmanager resolution's outcome; say so when it resolved nothing."""
    if result.note == "resolved":
        ALERTMANAGER_RESOLUTIONS.labels("resolved").inc()
    elif result.note == "clear:nothing-open":
        ALERTMANAGER_RESOLUTIONS.labels("nothing_open").inc()
        log.info(
            "alertmanager resolution of %s dropped: no alert of it is open (its firing"
            " raised none: no rule, Ignore, silenced; or its state expired: pair_open_days)",
            event.attributes.get("fingerprint"),
            extra={"event_id": str(event.event_id)},
        )
    else:
        ALERTMANAGER_RESOLUTIONS.labels("flapping").inc()
