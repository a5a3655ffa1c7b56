"""Sinks from routing configuration: one validated pydantic model per sink type.

Configuration names credentials, it never holds them: ``*_secret`` fields are
secret *names*, resolved through the ``resolve_secret`` callable handed to
``build_sink`` (the secrets provider chain), so routing config can live in
Git, Redis or a ConfigMap. Example::

    {"type": "pagerduty", "name": "pd-netops", "routing_key_secret": "pd_netops_key"}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from functions.forward.sinks import moogsoft, pagerduty
from functions.forward.sinks.alertmanager import AlertmanagerSink
from functions.forward.sinks.base import Sink
from functions.forward.sinks.file import FileSink
from functions.forward.sinks.http import HttpSession
from functions.forward.sinks.moogsoft import MoogsoftSink
from functions.forward.sinks.pagerduty import PagerDutySink
from functions.forward.sinks.servicenow import ServiceNowSink
from functions.forward.sinks.stdout import StdoutSink
from functions.forward.sinks.webhook import SIGNATURE_HEADER, WebhookSink

SecretResolver = Callable[[str], str]


class SinkConfigError(ValueError):
    """A sink cannot be built from its (already valid) configuration."""


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not embed credentials; use a *_secret field")
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]
SecretName = Annotated[str, Field(min_length=1, max_length=256)]


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$",
        description="unique; used in metrics, delivery reports and DLQ entries",
    )
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)


class MoogsoftConfig(_Common):
    type: Literal["moogsoft"]
    url: HttpUrl = moogsoft.DEFAULT_URL
    api_key_secret: SecretName
    auth: moogsoft.AuthMode = "apikey"


class PagerDutyConfig(_Common):
    type: Literal["pagerduty"]
    url: HttpUrl = pagerduty.DEFAULT_URL
    routing_key_secret: SecretName


class ServiceNowConfig(_Common):
    type: Literal["servicenow"]
    url: HttpUrl = Field(description="the instance, e.g. https://acme.service-now.com")
    username: str = Field(min_length=1, max_length=256)
    password_secret: SecretName
    source: str = Field(default="MUTT", min_length=1, max_length=100)
    event_class: str = Field(default="MUTT", min_length=1, max_length=100)


class AlertmanagerConfig(_Common):
    type: Literal["alertmanager"]
    url: HttpUrl = Field(description="the Alertmanager base URL, e.g. http://am:9093")
    resolve_after_seconds: float = Field(default=3600, gt=0, le=30 * 86400)
    generator_url: HttpUrl | None = None
    bearer_token_secret: SecretName | None = None


class WebhookConfig(_Common):
    type: Literal["webhook"]
    url: HttpUrl
    signing_key_secret: SecretName | None = None
    bearer_token_secret: SecretName | None = None
    headers: dict[str, str] = Field(default_factory=dict, description="static, non-secret")

    @field_validator("headers")
    @classmethod
    def _no_reserved_headers(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = {"authorization", "content-type", "idempotency-key", SIGNATURE_HEADER.lower()}
        clash = sorted(h for h in value if h.lower() in reserved)
        if clash:
            raise ValueError(f"headers set by the sink cannot be configured: {', '.join(clash)}")
        return value


class StdoutConfig(_Common):
    type: Literal["stdout"]


class FileConfig(_Common):
    type: Literal["file"]
    path: Path = Field(description="JSON-lines file; idempotent by alert_id")


SinkConfig = Annotated[
    MoogsoftConfig
    | PagerDutyConfig
    | ServiceNowConfig
    | AlertmanagerConfig
    | WebhookConfig
    | StdoutConfig
    | FileConfig,
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[SinkConfig] = TypeAdapter(SinkConfig)


def parse_sink_config(data: object) -> SinkConfig:
    """Validate one sink's configuration (raises ``pydantic.ValidationError``)."""
    return _ADAPTER.validate_python(data)


def _secret(config: _Common, name: str, resolve: SecretResolver) -> str:
    try:
        value = resolve(name)
    except Exception as exc:
        raise SinkConfigError(
            f"sink {config.name}: secret {name!r} cannot be resolved ({type(exc).__name__})"
        ) from None
    if not value:
        raise SinkConfigError(f"sink {config.name}: secret {name!r} is empty")
    return value


def _optional_secret(config: _Common, name: str | None, resolve: SecretResolver) -> str | None:
    return None if name is None else _secret(config, name, resolve)


def build_sink(config: SinkConfig, *, session: HttpSession, resolve_secret: SecretResolver) -> Sink:
    """The sink a configuration describes, its credentials resolved now."""
    timeout = config.timeout_seconds
    match config:
        case MoogsoftConfig():
            key = _secret(config, config.api_key_secret, resolve_secret)
            return MoogsoftSink(
                config.name, key, session=session, url=config.url, auth=config.auth, timeout=timeout
            )
        case PagerDutyConfig():
            routing_key = _secret(config, config.routing_key_secret, resolve_secret)
            return PagerDutySink(
                config.name, routing_key, session=session, url=config.url, timeout=timeout
            )
        case ServiceNowConfig():
            return ServiceNowSink(
                config.name,
                config.url,
                config.username,
                _secret(config, config.password_secret, resolve_secret),
                session=session,
                timeout=timeout,
                source=config.source,
                event_class=config.event_class,
            )
        case AlertmanagerConfig():
            return AlertmanagerSink(
                config.name,
                config.url,
                session=session,
                timeout=timeout,
                resolve_after=timedelta(seconds=config.resolve_after_seconds),
                generator_url=config.generator_url,
                bearer_token=_optional_secret(config, config.bearer_token_secret, resolve_secret),
            )
        case WebhookConfig():
            return WebhookSink(
                config.name,
                config.url,
                session=session,
                timeout=timeout,
                signing_secret=_optional_secret(config, config.signing_key_secret, resolve_secret),
                bearer_token=_optional_secret(config, config.bearer_token_secret, resolve_secret),
                headers=config.headers,
            )
        case StdoutConfig():
            return StdoutSink(config.name)
        case FileConfig():
            sink = FileSink(config.path)
            sink.name = config.name
            return sink


def build_sinks(
    configs: Iterable[SinkConfig | Mapping[str, object]],
    *,
    session: HttpSession,
    resolve_secret: SecretResolver,
) -> dict[str, Sink]:
    """Sinks by name; raises ``SinkConfigError`` when two share a name."""
    sinks: dict[str, Sink] = {}
    for raw in configs:
        config = parse_sink_config(raw) if isinstance(raw, Mapping) else raw
        if config.name in sinks:
            raise SinkConfigError(f"two sinks are named {config.name!r}")
        sinks[config.name] = build_sink(config, session=session, resolve_secret=resolve_secret)
    return sinks
