"""Every Redis key name MUTT uses, built here and nowhere else.

One module so every function agrees on the names, and so the names are
checked: ``tests/shared/test_keys.py`` fails on a key name formatted
anywhere else. The names are deployed data: changing one orphans what
running installations stored under it.

Hash tags and Redis Cluster. Redis Cluster runs a script or a
``MULTI/EXEC`` only when all its keys hash to one slot, and a key's slot is
that of its hash tag (the part in braces) when it has one. So every key used
together with another in one script or transaction carries the same tag; a
key only ever used alone carries none, and spreads over the cluster.

family (<ns> = the namespace)          type    tag            owner (the only writer)
-------------------------------------  ------  -------------  ------------------------------------
<ns>:{p}:events|alerts|audit           stream  {p}            the stage before publishes, the stage
<ns>:{p}:delivered|dlq:<stage>                                named by the group consumes
<stream>:scheduled, <stream>:...:body  zset,   the stream's   shared/broker/ (the settle parks,
                                       hash                   schedule.Promoter promotes)
<ns>:{p}:rl:ingest                     hash    {p}            functions/ingest/admission.py
<ns>:{p}:dedup:<event id>              string  {p}            functions/ingest/admission.py
<ns>:{p}:breaker:<sink>                hash    {p}            functions/forward/breaker.py
<ns>:{p}:rl:sink:<sink>                hash    {p}            functions/forward/breaker.py
<ns>:{p}:delivered:<sink>:<alert id>   string  {p}            functions/forward/breaker.py
<ns>:{unhandled}:<host>:<bucket>,      hash,   {unhandled}    functions/alert/unhandled.py
<ns>:{unhandled}!top|samples:<bucket>  zset
<ns>:{corr}:k:<dedup key>,             hash    {corr}         functions/alert/correlation/
<ns>:{corr}:storm:h|g:<bucket>...
<ns>:correlation, <ns>:silences        string, none           functions/alert/correlation/
                                       hash
<ns>:rules:version                     string  none           functions/alert/cache.py
<ns>:rules:literals:<fingerprint>      hash    none           functions/alert/literal_cache.py
<ns>:rules:index:<fingerprint>         string  none           functions/alert/index_cache.py
<ns>:config                            hash    none           shared/dynconfig.py
<ns>:hb:<group>:<consumer>             string  none           shared/broker/heartbeat.py
<ns>:janitor:lock:<task>               string  none           functions/janitor/lock.py

Why each tag (the method of each family says it again):

- ``{p}``, the pipeline: the worker's settle ``MULTI`` publishes replies
  and dead letters, parks copies in schedules and acknowledges the input
  stream in one transaction; ``promote.lua`` moves parked copies back into
  their stream; ingest's ``admit.lua`` takes rate-limit permits, sets dedup
  marks and appends to the events stream in one script; DLQ replay moves
  an entry from a DLQ to its input stream in one script. Forward's
  ``gate.lua``/``finish.lua`` use the breaker, the sink's rate limit and
  the delivered markers together, but no stream: that family could take a
  tag of its own (per sink, even) when the pipeline is spread over slots.
- ``{unhandled}``: ``unhandled.lua`` counts a whole batch of hosts and
  updates the window's top list and samples in one call.
- ``{corr}``: one correlation script per batch touches every state hash
  and storm window of the batch.
- no tag: read or written one key per command (or in a pipeline without
  ``MULTI``, which a cluster client splits by slot).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.models import TYPE_ACCEPTED, TYPE_ALERT, TYPE_AUDIT, TYPE_DELIVERED


def schedule_keys(stream: str) -> tuple[str, str]:
    """The ZSET of due times and the HASH of bodies of ``stream``'s parked entries.

    Named after the stream, so they carry its hash tag: the settle parks and
    acknowledges in one ``MULTI``, and ``promote.lua`` moves them back.
    """
    return f"{stream}:scheduled", f"{stream}:scheduled:body"


@dataclass(frozen=True)
class Keys:
    """Names of streams and side keys under one namespace."""

    namespace: str = "mutt"
    tag: str = "p"

    @property
    def base(self) -> str:
        """The prefix of every ``{p}`` key: ``<ns>:{p}``."""
        return f"{self.namespace}:{{{self.tag}}}"

    def relative(self, key: str) -> str:
        """``key`` without ``<ns>:{p}:`` (a short name for people to read)."""
        return key.removeprefix(f"{self.base}:")

    # ------------------------------------------------------------------ streams, {p}

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

    # ------------------------------------------------------------ ingest admission, {p}

    @property
    def ingest_rate_limit(self) -> str:
        """The global ingest rate limit's window counters (``shared/sliding_window.lua``).

        ``{p}``: ``admit.lua`` takes permits and appends to ``events`` in one script.
        """
        return f"{self.base}:rl:ingest"

    def dedup(self, event_id: str) -> str:
        """Set while an event's source+id counts as seen (``dedup_window_seconds``).

        ``{p}``: ``admit.lua`` sets it and appends to ``events`` in one script.
        """
        return f"{self.base}:dedup:{event_id}"

    # ---------------------------------------------------------------- forward, {p}

    def breaker(self, sink: str) -> str:
        """The circuit breaker of one sink (hash: state, failures, opened_at, probe_until).

        ``{p}``, like the sink's rate limit and markers: ``gate.lua`` and
        ``finish.lua`` use the three together.
        """
        return f"{self.base}:breaker:{sink}"

    def breaker_pattern(self) -> str:
        """A ``SCAN`` pattern matching every sink's breaker."""
        return self.breaker("*")

    def breaker_sink(self, key: str) -> str:
        """The sink a breaker key (from ``breaker_pattern``) belongs to."""
        return key.removeprefix(self.breaker(""))

    def sink_rate_limit(self, sink: str) -> str:
        """The window counters of one sink's rate limit (``shared/sliding_window.lua``)."""
        return f"{self.base}:rl:sink:{sink}"

    def delivered_marker(self, sink: str, alert_id: str) -> str:
        """Set once ``sink`` accepted the alert, so a redelivered entry is not sent again."""
        return f"{self.base}:delivered:{sink}:{alert_id}"

    # ------------------------------------------------------------- alert, {unhandled}

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

    # ------------------------------------------------------------ untagged, one at a time

    @property
    def config(self) -> str:
        """The hash of dynamic settings."""
        return f"{self.namespace}:config"

    def heartbeat(self, group: str, consumer: str) -> str:
        """Present while a consumer lives; its absence lets others claim its work."""
        return f"{self.namespace}:hb:{group}:{consumer}"

    def heartbeat_pattern(self, group: str) -> str:
        return self.heartbeat(group, "*")

    @property
    def rules_version(self) -> str:
        """Bumped after every committed rule change; instances reload when it moves."""
        return f"{self.namespace}:rules:version"

    def rule_literals(self, fingerprint: str) -> str:
        """Regex literal analyses (pattern -> JSON) of one analysis code and Python."""
        return f"{self.namespace}:rules:literals:{fingerprint}"

    def rule_index(self, fingerprint: str) -> str:
        """The compiled rule index (digest of its rules + data) of one engine code version."""
        return f"{self.namespace}:rules:index:{fingerprint}"

    def janitor_lock(self, task: str) -> str:
        """Held while one janitor runs ``task``, so two never run it at once."""
        return f"{self.namespace}:janitor:lock:{task}"

    @property
    def correlation(self) -> CorrelationKeys:
        return CorrelationKeys(self.namespace)

    def source(self, kind: str, instance: str) -> str:
        """The last counters a source instance (``mutt syslog``) published, with a TTL."""
        return f"{self.namespace}:source:{kind}:{instance}"

    def source_pattern(self) -> str:
        return f"{self.namespace}:source:*"

    # -------------------------------------------------------------------------------

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


@dataclass(frozen=True)
class CorrelationKeys:
    """Correlation state (``functions/alert/correlation/``).

    Every key a batch touches shares the hash tag ``{corr}``, so the one Lua
    script a batch runs stays legal on Redis Cluster (all keys in one slot);
    the configuration and the silences are read on their own, outside it.
    """

    namespace: str

    @property
    def base(self) -> str:
        return f"{self.namespace}:{{corr}}"

    def state(self, dedup_key: str) -> str:
        """The hash holding one alert key's pairing, flapping and dedup state."""
        return f"{self.base}:k:{dedup_key}"

    def state_pattern(self) -> str:
        return self.state("*")

    def storm_host(self, hostname: str, bucket: int) -> str:
        """Alerts of one host in one minute (``bucket`` = epoch minute)."""
        return f"{self.base}:storm:h:{bucket}:{hostname}"

    def storm_global(self, bucket: int) -> str:
        return f"{self.base}:storm:g:{bucket}"

    @property
    def config(self) -> str:
        """The applied correlation file (JSON)."""
        return f"{self.namespace}:correlation"

    @property
    def silences(self) -> str:
        """Silences by id (JSON per field)."""
        return f"{self.namespace}:silences"


# Group that consumes each input stream: the stage's name.
GROUP_ALERT = "alert"
GROUP_FORWARD = "forward"
GROUP_AUDIT = "audit"
DELIVERED_MAXLEN = 100_000
