"""Static settings read from ``MUTT_*`` environment variables, validated at start.

A bad value must stop the process with one line that names the variable
(``ConfigError``), never a traceback and never a silent default. Dynamic
settings (rate limits, thresholds) live in Redis and are not here.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.broker.partitions import MAX_PARTITIONS
from shared.db.tls import MODES as TLS_MODES
from shared.errors import ConfigError

ENV_PREFIX = "MUTT_"


class Settings(BaseModel):
    """Every static setting; the env name is ``MUTT_`` + the upper-cased field name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    redis_url: str | None = Field(
        default=None,
        description="redis://, rediss:// or unix:// URL, or redis+cluster://host:port"
        " (rediss+cluster:// with TLS) naming any node of a Redis Cluster;"
        " unset = embedded (mutt run)",
    )
    database_url: str | None = Field(
        default=None,
        description="postgresql://user@host:port/db URL; TLS by libpq's ?sslmode="
        " (disable, prefer = default, require, verify-ca, verify-full) and ?sslrootcert=;"
        " unset = embedded (mutt run)",
    )
    database_schema: str = Field(
        default="public",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL schema holding MUTT's tables",
    )
    namespace: str = Field(
        default="mutt",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="prefix of every Redis key (streams are <namespace>:{p}:events ...)",
    )
    partitions: int = Field(
        default=1,
        ge=1,
        le=MAX_PARTITIONS,
        description="stream partitions, to spread the pipeline over a Redis Cluster's primaries;"
        " the same in every process (docs/operations.md#stream-partitions)",
    )
    data_dir: Path = Field(default=Path(".mutt"), description="embedded servers' data and sinks")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="DEBUG, INFO, WARNING or ERROR"
    )
    log_format: Literal["json", "text"] = Field(
        default="json", description="json (one object per line) or text"
    )

    health_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="workers and the relay serve /healthz, /readyz, /metrics on this port",
    )
    # Every interface: kubelet and Prometheus reach a pod's probes and metrics from outside it.
    health_host: str = Field(default="0.0.0.0", description="address of that small server")  # noqa: S104 - see above
    worker_batch_size: int = Field(
        default=100, ge=1, le=10_000, description="entries a stream worker takes per read"
    )
    worker_block_ms: int = Field(
        default=1000,
        ge=10,
        le=60_000,
        description="how long a worker read blocks waiting for entries",
    )
    heartbeat_interval_seconds: float = Field(
        default=5.0, gt=0, le=300, description="how often a consumer refreshes its heartbeat"
    )
    heartbeat_ttl_seconds: float = Field(
        default=15.0, gt=0, le=3600, description="a consumer without a beat for this long is dead"
    )
    claim_min_idle_seconds: float = Field(
        default=60.0, gt=0, description="pending this long on a dead consumer = reclaimed"
    )
    retry_delay_seconds: float = Field(
        default=5.0, gt=0, description="a transient failure is retried after this long"
    )
    max_deliveries: int = Field(default=5, ge=1, le=1000, description="then the entry is DLQ'd")
    relay_window: int = Field(
        default=8,
        ge=1,
        le=256,
        description="requests the relay keeps in flight per stage (Knative scales on them)",
    )
    relay_batch_size: int = Field(
        default=100,
        ge=1,
        le=1000,
        description="entries per request to MUTT's own functions (foreign targets: one)",
    )

    secrets_dir: Path | None = Field(
        default=None, description="directory of mounted secret files (Kubernetes / Knative secrets)"
    )
    ingest_max_body_bytes: int = Field(
        default=1_048_576, ge=1024, le=64 * 1_048_576, description="larger requests answer 413"
    )
    ingest_max_batch: int = Field(
        default=1000, ge=1, le=100_000, description="events in one request (array, batch mode)"
    )
    ingest_cloudevents_batch: bool = Field(
        default=True,
        description="accept application/cloudevents-batch+json at POST / (false: refuse it, 415)",
    )
    ingest_auth: Literal["on", "off"] = Field(
        default="on",
        description="on: requests need a key of the secret ingest_api_keys, and without one"
        " ingest starts only on a loopback address; off: no authentication (logged at every"
        " start)",
    )
    ingest_auth_failure_limit: int = Field(
        default=20,
        ge=1,
        le=100_000,
        description="failed authentications per client address and window; then 429",
    )
    ingest_auth_failure_window_seconds: float = Field(
        default=60.0, gt=0, le=86_400, description="that window, in seconds"
    )
    ingest_trusted_proxies: str = Field(
        default="",
        description="comma-separated networks of proxies in front of ingest (Knative's"
        " queue-proxy, activator, ingress): the client address is the last X-Forwarded-For"
        " entry outside them; empty = the TCP peer",
    )
    forward_config: Path | None = Field(
        default=None,
        description="YAML file of sinks and routes; unset = every alert to the file sink",
    )
    vault_addr: str | None = Field(default=None, description="Vault address; unset = no Vault")
    vault_role_id: str | None = Field(default=None, description="AppRole role id")
    vault_secret_id_file: Path | None = Field(
        default=None, description="file holding the AppRole secret id"
    )
    vault_mount: str = Field(default="secret", description="KV v2 mount")
    vault_path: str = Field(default="mutt", description="KV v2 entry holding MUTT's secrets")
    sink_file: Path | None = Field(
        default=None, description="file sink path (JSON lines); default <data_dir>/alerts.jsonl"
    )
    unhandled_fingerprint: Literal["masked", "exact"] = Field(
        default="masked",
        description="masked: numbers, addresses, interfaces ignored when grouping unhandled events",
    )
    default_team: str = Field(
        default="NETO",
        min_length=1,
        max_length=128,
        description="team of alerts no rule or device assigns",
    )
    audit_retention_days: int = Field(
        default=90, ge=1, le=36_500, description="audit partitions older than this are dropped"
    )
    audit_retention_mode: Literal["drop", "detach"] = Field(
        default="drop",
        description="drop old partitions, or detach them (kept as tables to archive)",
    )
    config_audit_retention_days: int = Field(
        default=365, ge=1, le=36_500, description="config_audit_log rows kept this long"
    )
    stream_keep_minutes: int = Field(
        default=60,
        ge=0,
        le=10_080,
        description="processed stream entries kept this long for inspection",
    )
    janitor_lock_seconds: int = Field(
        default=300, ge=5, le=86_400, description="a janitor task's lock expires after this long"
    )
    janitor_interval_seconds: float = Field(
        default=30.0, gt=0, description="janitor period inside mutt run"
    )
    partitions_ahead_months: int = Field(
        default=3, ge=1, le=24, description="audit partitions kept created ahead"
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        schemes = ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")
        if value is not None and not value.startswith(schemes):
            raise ValueError(
                "must start with redis://, rediss://, unix://, redis+cluster:// or rediss+cluster://"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _pg_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql://")
        if value is not None:
            modes = parse_qs(urlsplit(value).query).get("sslmode", [])
            if any(mode not in TLS_MODES for mode in modes):
                raise ValueError(f"sslmode must be one of {', '.join(TLS_MODES)}")
        return value

    @field_validator("ingest_trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for item in split_networks(value):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item[:50]!r} is not a network (10.0.0.0/8, ::1)") from None
        return value

    @property
    def trusted_proxies(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """The networks of ``MUTT_INGEST_TRUSTED_PROXIES``, parsed."""
        return tuple(
            ipaddress.ip_network(item, strict=False)
            for item in split_networks(self.ingest_trusted_proxies)
        )

    @property
    def sink_path(self) -> Path:
        """Where the file sink writes alerts."""
        return self.sink_file if self.sink_file is not None else self.data_dir / "alerts.jsonl"

    def require_urls(self) -> tuple[str, str]:
        """Both server URLs, or a clear error for a process that cannot embed them."""
        if not self.redis_url:
            raise ConfigError(
                "MUTT_REDIS_URL is not set (only `mutt run` starts an embedded Redis)"
            )
        if not self.database_url:
            raise ConfigError(
                "MUTT_DATABASE_URL is not set (only `mutt run` starts an embedded PostgreSQL)"
            )
        return self.redis_url, self.database_url


def split_networks(value: str) -> list[str]:
    """The items of a comma-separated list of networks."""
    return [item.strip() for item in value.split(",") if item.strip()]


def env_name(field: str) -> str:
    """The environment variable behind a settings field."""
    return ENV_PREFIX + field.upper()


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Read and validate settings; raise ``ConfigError`` naming the first bad variable.

    Unknown ``MUTT_*`` variables are refused too: a typo must not silently
    leave a default in force.
    """
    env = os.environ if environ is None else environ
    known = {env_name(name): name for name in Settings.model_fields}
    values: dict[str, object] = {}
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        if key not in known:
            if key in _FOREIGN_VARIABLES or key.startswith("MUTT_SECRET_"):
                continue
            raise ConfigError(f"{key}: unknown setting (see `mutt config env` for the list)")
        if raw.strip() == "":
            continue
        values[known[key]] = raw.strip()
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        from shared.redis_client import redact  # only on this error path

        shown = redact(str(values.get(field, "")))  # a URL's password never reaches a log
        raise ConfigError(f"{env_name(field)}={shown[:80]!r}: {err['msg']}") from None


# MUTT_* variables read by other parts than Settings (tests, failpoints).
_FOREIGN_VARIABLES = frozenset({"MUTT_FAILPOINTS", "MUTT_TEST_KEEP"})
