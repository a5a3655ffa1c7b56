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
<ns>:{P}:events|alerts|audit           stream  {P}            the stage before publishes, the stage
<ns>:{P}:delivered|dlq:<stage>                                named by the group consumes
<stream>:scheduled, <stream>:...:body  zset,   the stream's   shared/broker/ (the settle parks,
                                       hash                   schedule.Promoter promotes)
<ns>:{P}:dedup:<event id>              string  {P}            functions/ingest/admission.py
<ns>:{p}:rl:ingest                     hash    {p}            functions/ingest/admission.py
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

``{P}`` is the tag of a stream partition (``shared/broker/partitions.py``):
``{p}`` for partition 0, the only one by default, so with ``MUTT_PARTITIONS=1``
every name is what it always was. ``Keys.partition(k)`` names partition k's
keys; ``Keys`` itself names partition 0's.

Why each tag (the method of each family says it again):

- ``{P}``, a partition of the pipeline: the worker's settle ``MULTI``
  publishes replies and dead letters, parks copies in schedules and
  acknowledges the input stream in one transaction, all in the input's
  partition (an event's alert goes to the alerts stream of the event's
  partition); ``promote.lua`` moves parked copies back into their stream;
  ingest's ``admit.lua`` sets dedup marks and appends to the events stream
  in one script; DLQ replay moves an entry from a DLQ to its input stream
  in one script.
- ``{p}`` always, whatever the partition: what all partitions share. The
  global ingest rate limit (taken by ``admit.lua`` inside the script when
  there is one partition, by ``permits.lua`` before the per-partition
  scripts when there are more). Forward's ``gate.lua``/``finish.lua`` use
  the breaker, the sink's rate limit and the delivered markers together,
  and a breaker is one per sink for all partitions: one slot, partition 0's.
- ``{unhandled}``: ``unhandled.lua`` counts a whole batch of hosts and
  updates the window's top list and samples in one call.
- ``{corr}``: one correlation script per batch touches every state hash
  and storm window of the batch.
- no tag: read or written one key per command (or in a pipeline without
  ``MULTI``, which a cluster client splits by slot).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from shared.broker.partitions import TAGS, check_count, partition_of
from shared.models import TYPE_ACCEPTED, TYPE_ALERT, TYPE_AUDIT, TYPE_DELIVERED


def schedule_keys(stream: str) -> tuple[str, str]:
    """The ZSET of due times and the HASH of bodies of ``stream``'s parked entries.

    Named after the stream, so they carry its hash tag: the settle parks and
    acknowledges in one ``MULTI``, and ``promote.lua`` moves them back.
    """
    return f"{stream}:scheduled", f"{stream}:scheduled:body"


PIPELINE_TAG = TAGS[0]


@dataclass(frozen=True)
class Keys:
    """Names of streams and side keys under one namespace, in one stream partition.

    ``partitions`` is how many there are (``MUTT_PARTITIONS``); ``tag`` is
    this one's (partition 0's unless made by ``partition``).
    """

    namespace: str = "mutt"
    tag: str = PIPELINE_TAG
    partitions: int = 1

    def __post_init__(self) -> None:
        check_count(self.partitions)
        if self.tag not in TAGS[: self.partitions]:
            raise ValueError(f"{self.tag!r} is not the tag of one of {self.partitions} partitions")

    @property
    def base(self) -> str:
        """The prefix of every key of this partition: ``<ns>:{P}``."""
        return f"{self.namespace}:{{{self.tag}}}"

    @property
    def shared_base(self) -> str:
        """The prefix of the ``{p}`` keys every partition shares: ``<ns>:{p}``."""
        return f"{self.namespace}:{{{PIPELINE_TAG}}}"

    # ------------------------------------------------------------------ partitions

    @property
    def index(self) -> int:
        """Which partition these keys name (0 .. partitions-1)."""
        return TAGS.index(self.tag)

    def partition(self, index: int) -> Keys:
        """The keys of partition ``index``."""
        if not 0 <= index < self.partitions:
            raise ValueError(f"no partition {index}: there are {self.partitions}")
        return replace(self, tag=TAGS[index])

    def all_partitions(self) -> list[Keys]:
        """The keys of every partition, in order (one item when there is one)."""
        return [self.partition(n) for n in range(self.partitions)]

    def partition_for(self, source: str, hostname: str) -> Keys:
        """The partition of an event (``shared.broker.partitions.partition_of``)."""
        return self.partition(partition_of(source, hostname, self.partitions))

    def relative(self, key: str) -> str:
        """``key`` without ``<ns>:{P}:`` (a short name for people to read)."""
        return key.removeprefix(f"{self.base}:")

    # ------------------------------------------------------------------ streams, {P}

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

    # ------------------------------------------------------------ ingest admission

    @property
    def ingest_rate_limit(self) -> str:
        """The global ingest rate limit's window counters (``shared/sliding_window.lua``).

        ``{p}`` in every partition: one limit for all. With one partition
        ``admit.lua`` takes permits and appends to ``events`` in one script.
        """
        return f"{self.shared_base}:rl:ingest"

    def dedup(self, event_id: str) -> str:
        """Set while an event's source+id counts as seen (``dedup_window_seconds``).

        ``{P}``: ``admit.lua`` sets it and appends to the partition's ``events``
        in one script.
        """
        return f"{self.base}:dedup:{event_id}"

    # ---------------------------------------------------------------- forward, {p}

    def breaker(self, sink: str) -> str:
        """The circuit breaker of one sink (hash: state, failures, opened_at, probe_until).

        ``{p}`` in every partition, like the sink's rate limit and markers:
        ``gate.lua`` and ``finish.lua`` use the three together, and one sink
        has one breaker whichever partition its alerts come from.
        """
        return f"{self.shared_base}:breaker:{sink}"

    def breaker_pattern(self) -> str:
        """A ``SCAN`` pattern matching every sink's breaker."""
        return self.breaker("*")

    def breaker_sink(self, key: str) -> str:
        """The sink a breaker key (from ``breaker_pattern``) belongs to."""
        return key.removeprefix(self.breaker(""))

    def sink_rate_limit(self, sink: str) -> str:
        """The window counters of one sink's rate limit (``shared/sliding_window.lua``)."""
        return f"{self.shared_base}:rl:sink:{sink}"

    def delivered_marker(self, sink: str, alert_id: str) -> str:
        """Set once ``sink`` accepted the alert, so a redelivered entry is not sent again."""
        return f"{self.shared_base}:delivered:{sink}:{alert_id}"

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

    def streams(self) -> list[str]:
        """This partition's streams."""
        return [
            self.events,
            self.alerts,
            self.audit,
            self.delivered,
            self.dlq("alert"),
            self.dlq("forward"),
            self.dlq("audit"),
        ]

    def all_streams(self) -> list[str]:
        """Every partition's streams, partition by partition."""
        return [stream for part in self.all_partitions() for stream in part.streams()]


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
