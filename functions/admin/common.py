"""What the API versions and the console share: rule payloads, reasons, refusals."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from functions.admin.errors import ApiError, bad
from functions.admin.routing import Call
from functions.alert.catalog import (
    CatalogMoved,
    NotInCatalog,
    RuleError,
    UnknownRuleIds,
    check_rule_entry,
    etag,
)
from functions.alert.catalog.edits import AlreadyInCatalog, clean_host, clean_team
from functions.alert.catalog.tables import VALUE_KEYS

RULE_FIELDS = VALUE_KEYS  # the catalog's one column list (catalog/tables.py)
# A rule in a request body, for the OpenAPI document of /api/v1 and /api/v2.
RULE_PROPERTIES: dict[str, Any] = {
    "match_string": {"type": ["string", "null"]},
    "trap_oid": {"type": ["string", "null"]},
    "syslog_severity": {"type": ["integer", "string", "null"]},
    "match_type": {"type": "string", "enum": ["contains", "regex", "oid_prefix"]},
    "priority": {"type": "integer"},
    "prod_handling": {"type": "string"},
    "dev_handling": {"type": "string"},
    "team_assignment": {"type": "string"},
    "is_active": {"type": "boolean"},
    "description": {"type": ["string", "null"]},
    "reason": {"type": "string"},
}
RULE_DEFAULTS: dict[str, Any] = {"match_type": "contains", "priority": 100, "is_active": True}
REASON_MAX = 1000


def rule_values(entry: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a rule exactly as ``mutt rules apply`` does; 400 names the first bad field."""
    try:
        return check_rule_entry(entry)
    except RuleError as exc:
        field, reason = exc.problems[0]
        raise ApiError(400, f"{field}: {reason}", field=field, problems=exc.problems) from None


def rule_doc(rule_id: int, values: Mapping[str, Any]) -> dict[str, Any]:
    """A rule as the API shows it: id, every column, its ETag."""
    doc = {"id": rule_id, **{k: values.get(k) for k in RULE_FIELDS}}
    for stamp in ("created_at", "updated_at"):
        if stamp in values:
            doc[stamp] = values[stamp]
    doc["etag"] = etag({k: values.get(k) for k in RULE_FIELDS})
    return doc


def reason_of(call: Call, *, required: bool, default: str) -> str:
    """Why: the body's ``reason``, else the ``reason`` query parameter or ``X-MUTT-Reason``."""
    raw = call.body.get("reason") if call.request.method not in ("GET", "DELETE") else None
    if raw is None:
        raw = call.query("reason") or call.request.headers.get("X-MUTT-Reason")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if required:
            raise bad("reason", "say why (it is written to config_audit_log)")
        return default
    if not isinstance(raw, str) or len(raw) > REASON_MAX or "\x00" in raw:
        raise bad("reason", f"must be text of at most {REASON_MAX} characters")
    return raw.strip()


def host_of(value: object, field: str = "hostname") -> str:
    try:
        return clean_host(value)
    except ValueError as exc:
        raise bad(field, str(exc).removeprefix("hostname: ")) from None


def team_of(host: object, team: object) -> tuple[str, str]:
    try:
        return clean_team(host, team)
    except ValueError as exc:
        text = str(exc)
        field = (
            "team_assignment"
            if text.startswith(("team_assignment", "device_teams"))
            else "hostname"
        )
        raise bad(field, text.removeprefix(f"{field}: ")) from None


@contextmanager
def catalog_refusals(v1: bool = False) -> Iterator[None]:
    """The catalog's refusals as answers (v1 keeps the original's messages)."""
    try:
        yield
    except NotInCatalog as exc:
        raise ApiError(404, str(exc)) from None
    except AlreadyInCatalog as exc:
        raise ApiError(409, str(exc)) from None
    except CatalogMoved as exc:
        raise ApiError(412, str(exc), field="If-Match") from None
    except UnknownRuleIds as exc:
        raise ApiError(404, str(exc)) from None


def set_setting(call: Call, key: str, value: object, reason: str) -> dict[str, Any]:
    """Change one dynamic setting as ``mutt config set`` does (validated, audited): v1 and v2."""
    from shared.dynconfig import set_audited

    if isinstance(value, bool) or not isinstance(value, int | str):
        raise bad("value", "must be an integer")
    ctx = call.ctx
    try:
        old, new = set_audited(
            ctx.redis,
            ctx.keys.config,
            call.conn,
            key,
            str(value),
            changed_by=call.who,
            reason=reason,
        )
    except ValueError as exc:
        raise bad("value", str(exc)) from None
    return {"key": key, "old_value": old, "new_value": new}
