"""Alertmanager alerts: the resolved notification resolves what the firing one raised.

Unlike a syslog line, an Alertmanager alert says when it ends: with
``send_resolved`` the webhook repeats the alert with ``status: resolved``.
Ingest turns each notification into an event (``source_type``
``alertmanager``, ``attributes.status``, ``attributes.fingerprint``); here
the firing event's alert is keyed by the alert's identity and the resolved
event becomes a *clear* of that key, handled by the pairing machinery
(``pairing.lua``): it resolves the open alert with the trigger's routing,
never raises one of its own, and resolves nothing when nothing is open.

Identity: Alertmanager's ``fingerprint``, a hash of the alert's label set
(ingest derives one from the labels when a sender has none). It is the same
on every member of an Alertmanager cluster and for every notification of
the alert, whatever rule matched it or whichever peer sent it, so the
dedup key ``mutt:am:<fingerprint>`` (PagerDuty's ``dedup_key``, Moogsoft's
``dedupe_key``, ServiceNow's ``message_key``, the Alertmanager sink's
``mutt_dedup_key`` label) names one alert across firing and resolution.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from functions.alert.correlation.dedup_keys import bounded
from shared.models import Event

SOURCE_TYPE = "alertmanager"  # what ingest's Alertmanager route sets
FIRING = "firing"
RESOLVED = "resolved"


def fingerprint(event: Event) -> str | None:
    """The Alertmanager alert ``event`` is a notification of, ``None`` for other events."""
    return fingerprint_of(event.source_type, event.attributes)


def fingerprint_of(source_type: object, attributes: Mapping[str, Any]) -> str | None:
    """``fingerprint`` from an event's fields (an audited event's JSON, for backtests)."""
    if source_type != SOURCE_TYPE:
        return None
    found = attributes.get("fingerprint")
    if not isinstance(found, str) or not found:
        return None
    return found if attributes.get("status") in (FIRING, RESOLVED) else None


def alert_key(fingerprint: str) -> str:
    """The dedup key of the alert raised for an Alertmanager alert, firing or resolved."""
    return bounded(f"mutt:am:{fingerprint}")


def is_resolution(event: Event) -> bool:
    """True for the notification saying an Alertmanager alert stopped firing."""
    return resolution_of(event.source_type, event.attributes)


def resolution_of(source_type: object, attributes: Mapping[str, Any]) -> bool:
    """``is_resolution`` from an event's fields."""
    found = fingerprint_of(source_type, attributes)
    return found is not None and attributes.get("status") == RESOLVED
