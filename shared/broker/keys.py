"""Redis key names, in one place so every function agrees on them.

All pipeline keys share one hash tag (``{p}``) so a publish-and-ack touching
two streams stays atomic on Redis Cluster; more tags is the path to sharding.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.models import TYPE_ACCEPTED, TYPE_ALERT, TYPE_AUDIT, TYPE_DELIVERED


@dataclass(frozen=True)
class Keys:
    """Names of streams and side keys under one namespace."""

    namespace: str = "mutt"
    tag: str = "p"

    @property
    def base(self) -> str:
        return f"{self.namespace}:{{{self.tag}}}"

    @property
    def events(self) -> str:
        """Accepted events, written by ingest, read by alert."""
        return f"{self.base}:events"

    @property
    def alerts(self) -> str:
        """Raised alerts, written by alert, read by forward."""
        return f"{self.base}:alerts"

    @property
    def audit(self) -> str:
        """Audit records from alert, written to PostgreSQL in big batches."""
        return f"{self.base}:audit"

    @property
    def delivered(self) -> str:
        """Delivery reports from forward (capped; for observation, not work)."""
        return f"{self.base}:delivered"

    def dlq(self, stage: str) -> str:
        """Dead letters of a stage (``alert``, ``forward``, ...)."""
        return f"{self.base}:dlq:{stage}"

    @property
    def config(self) -> str:
        """The hash of dynamic settings."""
        return f"{self.namespace}:config"

    def heartbeat(self, group: str, consumer: str) -> str:
        """Present while a consumer lives; its absence lets others claim its work."""
        return f"{self.namespace}:hb:{group}:{consumer}"

    def heartbeat_pattern(self, group: str) -> str:
        return f"{self.namespace}:hb:{group}:*"

    def unhandled_window(self, host: str, bucket: int) -> str:
        """Unhandled counts of one host in one window (fingerprint -> count).

        Every unhandled key shares the tag ``{unhandled}``: one script call
        counts a whole batch of hosts, legally on Redis Cluster.
        """
        return f"{self.namespace}:{{unhandled}}:{host}:{bucket}"

    def unhandled_top(self, bucket: int) -> str:
        """The window's most frequent unhandled fingerprints over all hosts.

        ``!`` right after the tag cannot clash with a host's key, which has ``:`` there.
        """
        return f"{self.namespace}:{{unhandled}}!top:{bucket}"

    def unhandled_samples(self, bucket: int) -> str:
        """One sample ``host<TAB>message`` per fingerprint of ``unhandled_top``."""
        return f"{self.namespace}:{{unhandled}}!samples:{bucket}"

    def source(self, kind: str, instance: str) -> str:
        """The last counters a source instance (``mutt syslog``) published, with a TTL."""
        return f"{self.namespace}:source:{kind}:{instance}"

    def source_pattern(self) -> str:
        return f"{self.namespace}:source:*"

    def stream_for(self, event_type: str) -> str:
        """The stream a reply of this type is published to."""
        try:
            return {
                TYPE_ACCEPTED: self.events,
                TYPE_ALERT: self.alerts,
                TYPE_DELIVERED: self.delivered,
                TYPE_AUDIT: self.audit,
            }[event_type]
        except KeyError:
            raise ValueError(f"no stream carries events of type {event_type!r}") from None

    def all_streams(self) -> list[str]:
        return [
            self.events,
            self.alerts,
            self.audit,
            self.delivered,
            self.dlq("alert"),
            self.dlq("forward"),
            self.dlq("audit"),
        ]


# Group that consumes each input stream: the stage's name.
GROUP_ALERT = "alert"
GROUP_FORWARD = "forward"
GROUP_AUDIT = "audit"
DELIVERED_MAXLEN = 100_000
