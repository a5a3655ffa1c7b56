"""Adding and removing silences, audited: ``mutt silence`` and the admin API.

Each change writes a ``config_audit_log`` row (table ``silences``) in the
PostgreSQL transaction that brackets the Redis write; when the audit cannot
be recorded the Redis write is undone, so no unaudited silence is left.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from typing import Any

import pg8000.native
import redis

from functions.alert.correlation.silences import (
    Silence,
    delete_silence,
    load_silences,
    save_silence,
)
from shared.broker.keys import CorrelationKeys
from shared.config_audit import ConfigChange, write_config_audit

TABLE = "silences"


class UnknownSilences(LookupError):
    """Silence ids that name no silence."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids = list(ids)
        super().__init__(f"no silence {', '.join(ids)}")


def silence_values(silence: Silence) -> dict[str, Any]:
    """What the audit row records (everything but the id, which is the record id)."""
    return silence.model_dump(mode="json", exclude={"id"})


def add_silence(
    r: redis.Redis, conn: pg8000.native.Connection, keys: CorrelationKeys, silence: Silence
) -> None:
    """Store ``silence`` and its audit row (who and why are the silence's own)."""
    conn.run("BEGIN")
    try:
        save_silence(r, keys, silence)
        write_config_audit(
            conn,
            [ConfigChange("CREATE", TABLE, silence.id, None, silence_values(silence))],
            changed_by=silence.created_by,
            reason=silence.reason,
            correlation_id=str(uuid.uuid4()),
        )
        conn.run("COMMIT")
    except BaseException:
        conn.run("ROLLBACK")
        with contextlib.suppress(redis.RedisError):  # undo the write the audit could not record
            delete_silence(r, keys, silence.id)
        raise


def remove_silences(
    r: redis.Redis,
    conn: pg8000.native.Connection,
    keys: CorrelationKeys,
    ids: Sequence[str],
    *,
    changed_by: str,
    reason: str,
) -> None:
    """End the named silences now; ``UnknownSilences`` (nothing changed) if one is missing."""
    existing = {s.id: s for s in load_silences(r, keys)}
    missing = [i for i in ids if i not in existing]
    if missing:
        raise UnknownSilences(missing)
    conn.run("BEGIN")
    try:
        for silence_id in ids:
            delete_silence(r, keys, silence_id)
        write_config_audit(
            conn,
            [ConfigChange("DELETE", TABLE, i, silence_values(existing[i]), None) for i in ids],
            changed_by=changed_by,
            reason=reason,
            correlation_id=str(uuid.uuid4()),
        )
        conn.run("COMMIT")
    except BaseException:
        conn.run("ROLLBACK")
        with contextlib.suppress(redis.RedisError):  # put back what the audit could not record
            for silence_id in ids:
                save_silence(r, keys, existing[silence_id])
        raise
