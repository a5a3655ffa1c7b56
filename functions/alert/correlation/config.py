"""The correlation file: which rules pair with a clear, as code.

Numbers (windows, thresholds, caps) are live knobs (``mutt config set``);
this file holds the structure that deserves review and an audit trail:
which rule's alerts are closed by which clear message, and how the instance
(interface, peer...) is found in both. ``mutt correlation apply`` validates
it with the same RE2 the alert stage runs, stores it in Redis and every
alert instance picks it up within a second::

    pairs:
      - rule: 12
        clear: 'changed state to up'
        instance: 'Interface (?P<instance>[^,\\s]+)'
        description: link down / up per interface
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import re2
import redis
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from functions.alert.rules.regex import compile_regex, error_text
from shared.broker.keys import CorrelationKeys

INSTANCE_GROUP = "instance"
INSTANCE_MODES = ("masked", "none")


def compile_instance(pattern: str) -> Any:
    """An instance pattern (case-insensitive, with captures); it must name ``instance``."""
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    try:
        compiled = re2.compile(pattern, options)
    except re2.error as exc:
        raise ValueError(f"regex does not compile under RE2: {error_text(exc)}") from None
    if INSTANCE_GROUP not in compiled.groupindex:
        raise ValueError(f"needs a named group (?P<{INSTANCE_GROUP}>...), or 'masked' or 'none'")
    return compiled


def _instance(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if not text:
        raise ValueError("must not be blank")
    if text.lower() in INSTANCE_MODES:
        return text.lower()
    compile_instance(text)
    return text


class PairSpec(BaseModel):
    """One rule whose alerts a clear message resolves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: int = Field(gt=0, strict=True, description="id of the rule that raises the problem")
    clear: str = Field(min_length=1, description="RE2, case-insensitive: the clearing message")
    instance: str = Field(
        default="masked",
        description="named group (?P<instance>...) in the problem message, 'masked' or 'none'",
    )
    clear_instance: str | None = Field(
        default=None, description="the same for the clear message (default: instance)"
    )
    description: str | None = None

    @field_validator("clear")
    @classmethod
    def _clear(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        compile_regex(value)
        return value

    @field_validator("instance")
    @classmethod
    def _instance_of_problem(cls, value: str) -> str:
        checked = _instance(value)
        assert checked is not None
        return checked

    @field_validator("clear_instance")
    @classmethod
    def _instance_of_clear(cls, value: str | None) -> str | None:
        return _instance(value)


class CorrelationDoc(BaseModel):
    """The whole file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pairs: tuple[PairSpec, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> CorrelationDoc:
        seen: set[int] = set()
        for pair in self.pairs:
            if pair.rule in seen:
                raise ValueError(f"rule {pair.rule} is paired twice")
            seen.add(pair.rule)
        return self

    def document(self) -> dict[str, Any]:
        """The file form: unset optional fields left out."""
        return {
            "pairs": [p.model_dump(exclude_none=True, exclude_defaults=False) for p in self.pairs]
        }


def parse_correlation(doc: object, origin: str = "correlation file") -> CorrelationDoc:
    """Validate a loaded YAML document; ``ValueError`` lists every problem, one per line."""
    if doc is None:
        return CorrelationDoc()
    if not isinstance(doc, Mapping):
        raise ValueError(f"{origin}: expected a mapping with 'pairs'")
    try:
        return CorrelationDoc.model_validate(dict(doc))
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            loc = err.get("loc") or ()
            where = ".".join(f"#{p + 1}" if isinstance(p, int) else str(p) for p in loc) or "file"
            message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            if err.get("type") == "extra_forbidden":
                message = "is not a correlation field"
            lines.append(f"{origin}: {where}: {message}")
        raise ValueError("\n".join(lines)) from None


def load_doc(r: redis.Redis, keys: CorrelationKeys) -> tuple[CorrelationDoc, bytes | None]:
    """The applied document and its raw bytes (``None`` when nothing was applied)."""
    raw: Any = r.get(keys.config)
    if raw is None:
        return CorrelationDoc(), None
    return CorrelationDoc.model_validate(orjson.loads(raw)), bytes(raw)


def store_doc(r: redis.Redis, keys: CorrelationKeys, doc: CorrelationDoc) -> None:
    r.set(keys.config, orjson.dumps(doc.model_dump(mode="json")))
