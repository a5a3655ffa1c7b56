"""Silences (maintenance windows): alerts that are audited but not delivered, for a while.

A silence matches alerts by host (glob, e.g. ``core-rtr-*``), team and rule
id (all given conditions must hold) and is either one-off (``start`` to
``end``) or recurring: a 5-field cron expression (evaluated in ``timezone``)
opening a window of ``duration_seconds`` at each fire time, between
``start`` and an optional ``end``. ``mutt silence add|list|remove`` manage
them (audited to ``config_audit_log``); they live in one Redis hash and the
alert stage re-reads it within a second.

Matching is in-process: the active silences are computed once and cached
until the next start or end of any window (croniter costs about a
millisecond per evaluation, far too much per alert), so an alert costs a
few comparisons per active silence. Resolves are never silenced: a resolve
only ever closes an alert that was delivered.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import redis
from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.broker.keys import CorrelationKeys
from shared.models import Alert

log = logging.getLogger(__name__)

RuleRef = int | Literal["unhandled", "storm"]


@lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern))


def new_id() -> str:
    return f"s-{uuid.uuid4().hex[:8]}"


class Silence(BaseModel):
    """One silence; validated so a stored one can always be evaluated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64)
    host: str | None = Field(default=None, description="host name glob, case-insensitive")
    team: str | None = Field(default=None, description="team, case-insensitive")
    rule: RuleRef | None = Field(default=None, description="rule id, unhandled or storm")
    start: datetime
    end: datetime | None = Field(default=None, description="one-off: end; recurring: last day")
    cron: str | None = Field(default=None, description="recurring: 5-field cron expression")
    duration_seconds: int | None = Field(default=None, gt=0, le=366 * 86_400)
    timezone: str = "UTC"
    reason: str = Field(min_length=1, max_length=1000)
    created_by: str = Field(min_length=1, max_length=200)
    created_at: datetime

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = value.strip().lower()
        if not text:
            raise ValueError("host glob must not be blank")
        return text

    @field_validator("team")
    @classmethod
    def _team(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise ValueError("team must not be blank")
        return value.strip()

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = " ".join(value.split())
        if len(text.split(" ")) != 5 or not croniter.is_valid(text):
            raise ValueError(
                f"{value!r} is not a 5-field cron expression (minute hour day month weekday)"
            )
        return text

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. UTC, Europe/Paris)") from None
        return value

    @model_validator(mode="after")
    def _complete(self) -> Silence:
        if self.host is None and self.team is None and self.rule is None:
            raise ValueError("a silence needs at least one of host, team or rule")
        if self.cron is None:
            if self.end is None:
                raise ValueError("a one-off silence needs an end (or a duration)")
            if self.duration_seconds is not None:
                raise ValueError("duration_seconds belongs to recurring (cron) silences")
        elif self.duration_seconds is None:
            raise ValueError("a recurring silence needs duration_seconds (each window's length)")
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def matches(self, hostname: str, team: str, rule: RuleRef) -> bool:
        """All the silence's conditions hold for this alert's host, team and rule."""
        if self.rule is not None and self.rule != rule:
            return False
        if self.team is not None and self.team.lower() != team.lower():
            return False
        return self.host is None or _glob(self.host).match(hostname.lower()) is not None

    def state_at(self, now: datetime) -> tuple[bool, datetime | None]:
        """(active at ``now``, until when that stays true; ``None`` = for ever)."""
        if now < self.start:
            return False, self.start
        if self.end is not None and now >= self.end:
            return False, None
        if self.cron is None:
            return True, self.end
        assert self.duration_seconds is not None
        zone = ZoneInfo(self.timezone)
        local = now.astimezone(zone)
        # get_prev is strictly before its base: nudge the base so a window opening now counts
        opened: datetime = croniter(self.cron, local + timedelta(microseconds=1)).get_prev(datetime)
        closes = opened + timedelta(seconds=self.duration_seconds)
        if local < closes:
            return True, _earliest(closes, self.end)
        upcoming: datetime = croniter(self.cron, local).get_next(datetime)
        return False, _earliest(upcoming, self.end)

    def describe_match(self) -> str:
        parts = []
        if self.host is not None:
            parts.append(f"host {self.host}")
        if self.team is not None:
            parts.append(f"team {self.team}")
        if self.rule is not None:
            parts.append(f"rule {self.rule}")
        return ", ".join(parts)

    def describe_schedule(self) -> str:
        if self.cron is None:
            return f"{_iso(self.start)} → {_iso(self.end)}"
        text = f"cron '{self.cron}' {self.timezone} for {_duration(self.duration_seconds or 0)}"
        return text + (f" until {_iso(self.end)}" if self.end is not None else "")


def _earliest(a: datetime, b: datetime | None) -> datetime:
    return a if b is None or a <= b else b


def _iso(when: datetime | None) -> str:
    return "-" if when is None else when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours and minutes:
        return f"{hours}h{minutes:02d}m"
    return f"{hours}h" if hours else f"{minutes}m"


class _Active:
    """The silences active over one stretch of time, indexed for per-alert checks.

    Silences without a host condition are checked directly (team and rule are
    cheap); those with one are looked up per host name, cached, because a
    glob per silence per alert would cost more than the rest of correlation
    and host names repeat.
    """

    HOSTS_CACHED = 10_000

    def __init__(self, silences: tuple[Silence, ...]) -> None:
        self.silences = silences
        self._hostless = tuple(s for s in silences if s.host is None)
        self._by_host = tuple(s for s in silences if s.host is not None)
        self._hosts: dict[str, tuple[Silence, ...]] = {}

    def match(self, hostname: str, team: str, rule: RuleRef) -> Silence | None:
        for silence in self._hostless:
            if silence.matches(hostname, team, rule):
                return silence
        if not self._by_host:
            return None
        host = hostname.lower()
        hits = self._hosts.get(host)
        if hits is None:
            hits = tuple(s for s in self._by_host if _glob(s.host or "").match(host))
            if len(self._hosts) >= self.HOSTS_CACHED:
                self._hosts.clear()
            self._hosts[host] = hits
        for silence in hits:
            if silence.matches(hostname, team, rule):
                return silence
        return None


class SilenceBook:
    """The silences in force, cached until the next window opens or closes."""

    def __init__(self, silences: Iterable[Silence] = ()) -> None:
        self.silences = tuple(silences)
        self._cache: tuple[_Active, datetime | None] | None = None

    def __len__(self) -> int:
        return len(self.silences)

    def _current(self, now: datetime) -> _Active:
        cache = self._cache  # one read: threads may swap it meanwhile
        if cache is not None and (cache[1] is None or now < cache[1]):
            return cache[0]
        active = []
        until: datetime | None = None
        for silence in self.silences:
            on, changes = silence.state_at(now)
            if on:
                active.append(silence)
            if changes is not None and (until is None or changes < until):
                until = changes
        current = _Active(tuple(active))
        self._cache = (current, until)
        return current

    def active(self, now: datetime) -> tuple[Silence, ...]:
        """The silences active at ``now``."""
        return self._current(now).silences

    def match(self, alert: Alert, now: datetime) -> Silence | None:
        """The first active silence that covers ``alert`` (resolves are never silenced)."""
        if not self.silences or alert.action == "resolve":
            return None
        return self._current(now).match(alert.event.hostname, alert.team, alert.rule_id)


def decode_silences(raw: dict[Any, Any]) -> list[Silence]:
    """The silences of the Redis hash; a damaged entry is logged and skipped, never fatal."""
    found = []
    for field, value in raw.items():
        try:
            found.append(Silence.model_validate(orjson.loads(value)))
        except (ValidationError, orjson.JSONDecodeError) as exc:
            name = field.decode() if isinstance(field, bytes) else str(field)
            log.error("silence %s ignored: %s", name, exc)
    return sorted(found, key=lambda s: (s.start, s.id))


def load_silences(r: redis.Redis, keys: CorrelationKeys) -> list[Silence]:
    raw: Any = r.hgetall(keys.silences)
    return decode_silences(raw)


def save_silence(r: redis.Redis, keys: CorrelationKeys, silence: Silence) -> None:
    r.hset(keys.silences, silence.id, silence.model_dump_json())


def delete_silence(r: redis.Redis, keys: CorrelationKeys, silence_id: str) -> bool:
    return bool(r.hdel(keys.silences, silence_id))
