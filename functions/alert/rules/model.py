"""The ``Rule`` model: one validated row of ``alert_rules``.

Every problem v2.5 discovered late (an invalid regex silently dropped, an
OID with a wildcard that never matched, a severity ``"3"`` that never equals
``3``, a handling typo that quietly meant "ignore") is refused here, when the
rule is loaded, with the rule and the field named.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from shared.models import Handling, Severity, parse_severity

from .oid import normalize_oid
from .regex import check_regex, compile_regex

TEAM_MAX = 128  # Alert.team's limit: a longer team could never be raised.


class MatchType(StrEnum):
    """How a rule looks at an event."""

    CONTAINS = "contains"
    REGEX = "regex"
    OID_PREFIX = "oid_prefix"


_HANDLING_BY_TEXT = {h.value.lower(): h for h in Handling} | {h.name.lower(): h for h in Handling}


class Rule(BaseModel):
    """A routing rule; frozen, so a compiled ``RuleSet`` can never drift from it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: StrictInt
    match_type: MatchType
    match_string: Annotated[str | None, Field(validate_default=True)] = None
    trap_oid: Annotated[str | None, Field(validate_default=True)] = None
    syslog_severity: Severity | None = None
    # PostgreSQL's INTEGER: a larger priority could be validated but never stored.
    priority: Annotated[StrictInt, Field(ge=-(2**31), le=2**31 - 1)] = 100
    prod_handling: Handling
    dev_handling: Handling
    team_assignment: str
    is_active: bool = True

    @field_validator("match_type", mode="before")
    @classmethod
    def _match_type(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip().lower()
            if text not in MatchType.__members__.values():
                raise ValueError(
                    f"unknown match_type {value[:40]!r}: use contains, regex or oid_prefix"
                )
            return text
        return value

    @field_validator("match_string", "trap_oid", "team_assignment", mode="before")
    @classmethod
    def _storable(cls, value: object) -> object:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters (PostgreSQL text cannot hold them)")
        return value

    @field_validator("match_string")
    @classmethod
    def _match_string(cls, value: str | None, info: ValidationInfo) -> str | None:
        match_type = info.data.get("match_type")
        if match_type is None:  # match_type itself is invalid; reported there
            return value
        if match_type is MatchType.OID_PREFIX:
            return value if value else None  # optional: used when an event has no OID
        if value is None or not value.strip():
            raise ValueError(f"a {match_type.value} rule needs a non-blank match_string")
        if match_type is MatchType.REGEX:
            check_regex(value)
        return value

    @field_validator("trap_oid")
    @classmethod
    def _trap_oid(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and value.strip():
            return normalize_oid(value)
        if info.data.get("match_type") is MatchType.OID_PREFIX:
            raise ValueError("an oid_prefix rule needs a trap_oid")
        return None

    @field_validator("syslog_severity", mode="before")
    @classmethod
    def _severity(cls, value: object) -> Severity | None:
        if value is None or value == "":
            return None
        return parse_severity(value)

    @field_validator("prod_handling", "dev_handling", mode="before")
    @classmethod
    def _handling(cls, value: object) -> object:
        if isinstance(value, str):
            found = _HANDLING_BY_TEXT.get(value.strip().lower())
            if found is None:
                accepted = ", ".join(h.value for h in Handling)
                raise ValueError(f"unknown handling {value[:40]!r}: use one of {accepted}")
            return found
        return value

    @field_validator("team_assignment")
    @classmethod
    def _team(cls, value: str) -> str:
        team = value.strip()
        if not team:
            raise ValueError("team_assignment must not be blank")
        if len(team) > TEAM_MAX:
            raise ValueError(f"team_assignment is longer than {TEAM_MAX} characters")
        return team

    @property
    def rank(self) -> tuple[int, int]:
        """Evaluation order: lower priority first, then lower id (deterministic ties)."""
        return (self.priority, self.id)

    @cached_property
    def needle(self) -> str | None:
        """The lower-cased match_string used for substring tests."""
        return self.match_string.lower() if self.match_string is not None else None

    @cached_property
    def regex(self) -> Any:
        """The compiled RE2 pattern of a regex rule (``None`` for other types)."""
        if self.match_type is not MatchType.REGEX or self.match_string is None:
            return None
        return compile_regex(self.match_string)


_RULE_FIELDS = frozenset(Rule.model_fields)  # read once: the class property is slow
_set = object.__setattr__
# One "fields set" for every trusted rule (a set of 10 names is 730 bytes: 7 MB for
# 10,000 rules). Pydantic adds to it only in __setattr__, which a frozen model refuses,
# and model_copy copies it first.
_ALL_SET = set(_RULE_FIELDS)


def trusted_rule(values: dict[str, Any]) -> Rule:
    """A ``Rule`` holding ``values`` exactly, without validating them.

    Only for values ``validate_rule`` produced earlier under the same code
    (a stored compiled index, whose key names that code): field names and
    types are taken as they are. It is what ``Rule.model_construct`` does,
    without walking every field's default (5x faster: 10,000 rules in 15 ms).
    Every field counts as set, as for a database row.
    """
    rule: Rule = object.__new__(Rule)
    _set(rule, "__dict__", values)
    _set(rule, "__pydantic_fields_set__", _ALL_SET)
    _set(rule, "__pydantic_extra__", None)
    _set(rule, "__pydantic_private__", None)
    return rule


class RuleError(ValueError):
    """A rule that cannot be loaded: names the rule, the field and why."""

    def __init__(self, rule: str, problems: list[tuple[str, str]]) -> None:
        self.rule = rule
        self.problems = tuple(problems)
        self.field, self.reason = self.problems[0]
        text = "; ".join(f"{field}: {reason}" for field, reason in self.problems)
        super().__init__(f"rule {rule}: {text}")


def _describe(error: Mapping[str, Any]) -> tuple[str, str]:
    loc = error.get("loc") or ()
    field = ".".join(str(part) for part in loc) or "rule"
    kind = error.get("type", "")
    message = str(error.get("msg", "invalid"))
    if kind == "missing":
        return field, "is required"
    if kind == "extra_forbidden":
        return field, "is not a rule field"
    return field, message.removeprefix("Value error, ")


def validate_rule(
    raw: Mapping[str, Any], *, where: str | None = None, ignore_unknown: bool = True
) -> Rule:
    """Turn a DB row or YAML entry into a ``Rule`` or raise ``RuleError``.

    ``ignore_unknown`` drops columns that are not rule fields (timestamps of a
    DB row); pass ``False`` for hand-written YAML so a typo is an error.
    ``where`` names the rule when it has no usable id (``"rules.yaml #3"``).
    """
    data = dict(raw)
    if ignore_unknown:
        data = {k: v for k, v in data.items() if k in _RULE_FIELDS}
    rule_id = raw.get("id")
    name = str(rule_id) if isinstance(rule_id, int | str) and str(rule_id) else (where or "?")
    try:
        rule = Rule.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(err) for err in exc.errors(include_url=False)]
        raise RuleError(name, problems) from None
    if rule.__pydantic_fields_set__ == _ALL_SET:  # every field given, as in a DB row:
        _set(rule, "__pydantic_fields_set__", _ALL_SET)  # share one set (see _ALL_SET)
    return rule
