"""Which stream each consuming stage reads, written once.

The stream worker and the relay (``mutt/stages.py``), the janitor's reclaim,
the lag metrics, ``mutt status``, ``mutt dlq replay`` and the demo all ask
here, so a stage added or a stream renamed is one edit. The consumer group of
a stage is the stage's name. With stream partitions a stage consumes its
stream in every partition (``inputs``).
"""

from __future__ import annotations

from shared.broker.keys import GROUP_ALERT, GROUP_AUDIT, GROUP_FORWARD, Keys

CONSUMING_STAGES = (GROUP_ALERT, GROUP_FORWARD, GROUP_AUDIT)


def input_stream(keys: Keys, stage: str) -> str:
    """The stream ``stage`` consumes in ``keys``' partition (and a replayed dead letter of
    ``stage`` returns to)."""
    if stage == GROUP_ALERT:
        return keys.events
    if stage == GROUP_FORWARD:
        return keys.alerts
    if stage == GROUP_AUDIT:
        return keys.audit
    raise ValueError(f"no stage {stage!r} consumes a stream: use one of {CONSUMING_STAGES}")


def inputs(keys: Keys, stage: str) -> list[tuple[str, Keys]]:
    """``stage``'s input stream in every partition, with that partition's keys."""
    return [(input_stream(part, stage), part) for part in keys.all_partitions()]


def consumed(keys: Keys) -> list[tuple[str, str]]:
    """Every (stream, group) pair of the pipeline, in pipeline order, in every partition."""
    return [(stream, stage) for stage in CONSUMING_STAGES for stream, _ in inputs(keys, stage)]
