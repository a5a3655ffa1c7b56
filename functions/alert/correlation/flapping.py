"""Flapping: a paired alert that keeps going down and up becomes one "flapping" alert.

A state change is a trigger while the key is closed or a clear while it is
open. More than ``flap_threshold`` changes within ``flap_window_seconds``
and the key flaps: one flapping alert is delivered (its own dedup key,
``<key>:flapping``) and the individual triggers and resolves are held. The
last held change is remembered; once the key has been quiet for
``flap_settle_seconds`` (a parked timer checks), the flapping alert is
resolved and, if the final state differs from what the sink last heard,
the held change is delivered, so the sink ends in the true state.
The state machine is ``flapping.lua``.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from functions.alert.correlation.dedup_keys import bounded
from shared.models import Alert


def flapping_key(dedup_key: str) -> str:
    return bounded(f"{dedup_key}:flapping")


def flapping_alert(
    basis: Alert, onset_ms: int, threshold: int, window_s: int, settle_s: int, now: datetime
) -> Alert:
    """The one alert a flapping key raises (unique per flapping episode)."""
    summary = (
        f"[MUTT] flapping: {basis.event.hostname} changed state more than {threshold} times"
        f" within {window_s}s ({basis.dedup_key}); individual alerts are held until it is"
        f" quiet for {settle_s}s. Latest: {basis.summary[:300]}"
    )
    return basis.model_copy(
        update={
            "alert_id": uuid.uuid5(basis.alert_id, f"flapping:{onset_ms}"),
            "dedup_key": flapping_key(basis.dedup_key),
            "summary": summary,
            "raised_at": now,
            "action": "trigger",
        }
    )


def flapping_resolved(basis: Alert, onset_ms: int, now: datetime) -> Alert:
    """The resolve of the flapping alert, once the key has settled."""
    summary = f"[MUTT] stopped flapping: {basis.event.hostname} ({basis.dedup_key})"
    return basis.model_copy(
        update={
            "alert_id": uuid.uuid5(basis.alert_id, f"flapping-settled:{onset_ms}"),
            "dedup_key": flapping_key(basis.dedup_key),
            "summary": summary,
            "raised_at": now,
            "action": "resolve",
        }
    )
