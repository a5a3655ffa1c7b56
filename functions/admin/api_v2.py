"""``/api/v2``: one consistent API over everything an operator does.

- Errors are ``{"error": {"status", "code", "message", "field", "problems"}}``.
- Lists are ``{"items": [...], "next_cursor": ...}``; pass ``cursor`` back for
  the next page (stable while rows are added).
- Rules carry an ``ETag``; ``PUT`` and ``DELETE`` need ``If-Match`` (428
  without it, 412 when someone changed the rule since you read it).
- Every write needs a ``reason`` (body, or ``reason`` query parameter /
  ``X-MUTT-Reason`` header for DELETE) and is audited in ``config_audit_log``.
- Unknown fields are refused, naming them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import flask
from pydantic import ValidationError

from functions.admin import status as admin_status
from functions.admin.app import json_response
from functions.admin.common import (
    RULE_DEFAULTS,
    RULE_FIELDS,
    RULE_PROPERTIES,
    catalog_refusals,
    host_of,
    reason_of,
    rule_doc,
    rule_values,
    set_setting,
    team_of,
)
from functions.admin.errors import ApiError, bad
from functions.admin.preview import preview
from functions.admin.queries import (
    config_after,
    config_filters,
    decode_cursor,
    encode_cursor,
    event_filters,
    event_rates,
    events_after,
    parse_time,
)
from functions.admin.routing import Call, Param, route
from functions.admin.slo import report
from functions.alert.catalog import edits, etag, read_rule, read_state
from functions.alert.correlation.config import load_doc
from functions.alert.correlation.silence_edits import (
    UnknownSilences,
    add_silence,
    remove_silences,
)
from functions.alert.correlation.silences import Silence, load_silences, new_id
from functions.alert.unhandled import top_unhandled
from shared.broker import dlq
from shared.broker.keys import CorrelationKeys
from shared.config_audit import ConfigChange, write_config_audit
from shared.dynconfig import KNOBS, DynamicConfig

LIMIT = Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 500})
CURSOR = Param("cursor", "query", {"type": "string"})
REASON_Q = Param("reason", "query", {"type": "string", "minLength": 1}, description="why")
RULE_ID = Param("rule_id", "path", {"type": "integer", "minimum": 1, "maximum": 2147483647}, True)
HOSTNAME = Param("hostname", "path", {"type": "string", "minLength": 1, "maxLength": 255}, True)
IF_MATCH = "If-Match"
CORRELATION_KNOBS = (
    "alert_dedup_seconds",
    "flap_threshold",
    "flap_window_seconds",
    "flap_settle_seconds",
    "storm_host_per_minute",
    "storm_global_per_minute",
    "pair_open_days",
    "audit_unhandled",
)
RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": RULE_PROPERTIES,
    "required": ["prod_handling", "dev_handling", "team_assignment", "reason"],
    "additionalProperties": False,
}


def _items(items: list[Any], next_cursor: str | None) -> flask.Response:
    return json_response({"items": items, "next_cursor": next_cursor})


def _limit(call: Call, default: int = 100) -> int:
    return call.query_int("limit", default, 1, 500, clamp=False)


def _strict(call: Call, allowed: tuple[str, ...]) -> dict[str, Any]:
    unknown = sorted(set(call.body) - set(allowed))
    if unknown:
        raise bad(unknown[0], f"unknown field (known: {', '.join(allowed)})")
    return call.body


def _if_match(call: Call) -> str:
    value = call.request.headers.get(IF_MATCH)
    if not value:
        raise ApiError(428, "send If-Match with the rule's ETag (from GET)", field=IF_MATCH)
    return value


def _rule_entry(call: Call) -> dict[str, Any]:
    body = _strict(call, (*RULE_FIELDS, "reason"))
    return rule_values({**RULE_DEFAULTS, **{k: v for k, v in body.items() if k != "reason"}})


# ---------------------------------------------------------------- rules


@route(
    "/api/v2/rules",
    "GET",
    role="viewer",
    surface="v2",
    summary="rules in evaluation order, searchable, a page at a time",
    params=(LIMIT, CURSOR, Param("q", "query", {"type": "string"}, description="search text")),
    responses={200: "{items, next_cursor}", 400: "invalid parameter"},
)
def list_rules(call: Call) -> flask.Response:
    limit = _limit(call)
    after = decode_cursor(call.query("cursor"), (int, int))
    needle = (call.query("q") or "").lower()
    rows = []
    for rid, values in read_state(call.conn).rules.items():
        if after is not None and (values["priority"], rid) <= (after[0], after[1]):
            continue
        if needle and needle not in " ".join(str(v) for v in values.values()).lower() + f" {rid}":
            continue
        rows.append(rule_doc(rid, values))
        if len(rows) > limit:
            break
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = encode_cursor([rows[-1]["priority"], rows[-1]["id"]]) if more and rows else None
    return _items(rows, cursor)


@route(
    "/api/v2/rules",
    "POST",
    role="admin",
    surface="v2",
    summary="create a rule",
    body=RULE_SCHEMA,
    responses={201: "the rule", 400: "invalid field"},
)
def create_rule(call: Call) -> flask.Response:
    values = _rule_entry(call)
    reason = reason_of(call, required=True, default="")
    ctx = call.ctx
    rule_id = edits.create_rule(
        call.conn, ctx.redis, ctx.settings.namespace, values, who=call.who, reason=reason
    )
    doc = rule_doc(rule_id, values)
    return json_response(doc, 201, {"Location": f"/api/v2/rules/{rule_id}", "ETag": doc["etag"]})


@route(
    "/api/v2/rules/preview",
    "POST",
    role="viewer",
    surface="v2",
    summary="which recent events a rule would match (nothing is written)",
    body={**RULE_SCHEMA, "required": ["prod_handling", "dev_handling", "team_assignment"]},
    responses={200: "{examined, matched, matches, unhandled_matches}", 400: "invalid field"},
)
def preview_rule(call: Call) -> flask.Response:
    return json_response(preview(call.ctx, _rule_entry(call)))


@route(
    "/api/v2/rules/<int:rule_id>",
    "GET",
    role="viewer",
    surface="v2",
    summary="one rule",
    params=(RULE_ID,),
    responses={200: "the rule (ETag header)", 404: "no such rule"},
)
def get_rule(call: Call) -> flask.Response:
    found = read_rule(call.conn, call.args["rule_id"])
    if found is None:
        raise ApiError(404, f"no rule with id {call.args['rule_id']}")
    doc = rule_doc(call.args["rule_id"], found)
    return json_response(doc, 200, {"ETag": doc["etag"]})


@route(
    "/api/v2/rules/<int:rule_id>",
    "PUT",
    role="admin",
    surface="v2",
    summary="replace a rule (If-Match required)",
    params=(RULE_ID,),
    body=RULE_SCHEMA,
    responses={
        200: "the rule",
        400: "invalid field",
        404: "no such rule",
        412: "changed since read",
        428: "If-Match missing",
    },
)
def put_rule(call: Call) -> flask.Response:
    values = _rule_entry(call)
    reason = reason_of(call, required=True, default="")
    tag = _if_match(call)
    ctx = call.ctx
    with catalog_refusals():
        stored = edits.update_rule(
            call.conn,
            ctx.redis,
            ctx.settings.namespace,
            call.args["rule_id"],
            values,
            who=call.who,
            reason=reason,
            if_match=tag,
        )
    doc = rule_doc(call.args["rule_id"], stored)
    return json_response(doc, 200, {"ETag": etag({k: stored.get(k) for k in RULE_FIELDS})})


@route(
    "/api/v2/rules/<int:rule_id>",
    "DELETE",
    role="admin",
    surface="v2",
    summary="delete a rule (If-Match and reason required)",
    params=(RULE_ID, REASON_Q),
    responses={
        204: "deleted",
        404: "no such rule",
        412: "changed since read",
        428: "If-Match missing",
    },
)
def delete_rule(call: Call) -> flask.Response:
    reason = reason_of(call, required=True, default="")
    tag = _if_match(call)
    ctx = call.ctx
    with catalog_refusals():
        edits.delete_rule(
            call.conn,
            ctx.redis,
            ctx.settings.namespace,
            call.args["rule_id"],
            who=call.who,
            reason=reason,
            if_match=tag,
        )
    return flask.Response(b"", 204)


# ---------------------------------------------------------------- hosts and teams


def _page_sorted(call: Call, names: list[str]) -> tuple[list[str], str | None]:
    limit = _limit(call)
    after = decode_cursor(call.query("cursor"), (str,))
    names = sorted(n for n in names if after is None or n > after[0])
    page = names[:limit]
    return page, encode_cursor([page[-1]]) if len(names) > limit and page else None


@route(
    "/api/v2/dev-hosts",
    "GET",
    role="viewer",
    surface="v2",
    summary="development hosts",
    params=(LIMIT, CURSOR),
    responses={200: "{items, next_cursor}"},
)
def list_dev_hosts(call: Call) -> flask.Response:
    page, cursor = _page_sorted(call, list(read_state(call.conn).hosts))
    return _items([{"hostname": h} for h in page], cursor)


@route(
    "/api/v2/dev-hosts",
    "POST",
    role="admin",
    surface="v2",
    summary="add a development host",
    body={
        "type": "object",
        "additionalProperties": False,
        "required": ["hostname", "reason"],
        "properties": {"hostname": {"type": "string"}, "reason": {"type": "string"}},
    },
    responses={201: "added", 400: "invalid", 409: "already there"},
)
def add_dev_host(call: Call) -> flask.Response:
    body = _strict(call, ("hostname", "reason"))
    host = host_of(body.get("hostname"))
    reason = reason_of(call, required=True, default="")
    ctx = call.ctx
    with catalog_refusals():
        edits.add_dev_host(
            call.conn, ctx.redis, ctx.settings.namespace, host, who=call.who, reason=reason
        )
    return json_response({"hostname": host}, 201)


@route(
    "/api/v2/dev-hosts/<hostname>",
    "DELETE",
    role="admin",
    surface="v2",
    summary="remove a development host",
    params=(HOSTNAME, REASON_Q),
    responses={204: "removed", 404: "not a development host"},
)
def delete_dev_host(call: Call) -> flask.Response:
    host = host_of(call.args["hostname"])
    reason = reason_of(call, required=True, default="")
    ctx = call.ctx
    with catalog_refusals():
        edits.delete_dev_host(
            call.conn, ctx.redis, ctx.settings.namespace, host, who=call.who, reason=reason
        )
    return flask.Response(b"", 204)


@route(
    "/api/v2/teams",
    "GET",
    role="viewer",
    surface="v2",
    summary="device teams",
    params=(LIMIT, CURSOR),
    responses={200: "{items, next_cursor}"},
)
def list_teams(call: Call) -> flask.Response:
    teams = read_state(call.conn).teams
    page, cursor = _page_sorted(call, list(teams))
    return _items([{"hostname": h, "team_assignment": teams[h]} for h in page], cursor)


@route(
    "/api/v2/teams/<hostname>",
    "PUT",
    role="admin",
    surface="v2",
    summary="assign a device to a team (creates or changes)",
    params=(HOSTNAME,),
    body={
        "type": "object",
        "additionalProperties": False,
        "required": ["team_assignment", "reason"],
        "properties": {"team_assignment": {"type": "string"}, "reason": {"type": "string"}},
    },
    responses={200: "changed", 201: "created", 400: "invalid"},
)
def put_team(call: Call) -> flask.Response:
    body = _strict(call, ("team_assignment", "reason"))
    host, team = team_of(call.args["hostname"], body.get("team_assignment"))
    reason = reason_of(call, required=True, default="")
    ctx = call.ctx
    created = edits.set_team(
        call.conn, ctx.redis, ctx.settings.namespace, host, team, who=call.who, reason=reason
    )
    return json_response({"hostname": host, "team_assignment": team}, 201 if created else 200)


@route(
    "/api/v2/teams/<hostname>",
    "DELETE",
    role="admin",
    surface="v2",
    summary="remove a device's team",
    params=(HOSTNAME, REASON_Q),
    responses={204: "removed", 404: "no assignment"},
)
def delete_team(call: Call) -> flask.Response:
    host = host_of(call.args["hostname"])
    reason = reason_of(call, required=True, default="")
    ctx = call.ctx
    with catalog_refusals():
        edits.delete_team(
            call.conn, ctx.redis, ctx.settings.namespace, host, who=call.who, reason=reason
        )
    return flask.Response(b"", 204)


# ---------------------------------------------------------------- settings


@route(
    "/api/v2/config",
    "GET",
    role="viewer",
    surface="v2",
    summary="dynamic settings: value in force, default, meaning",
    responses={200: "{items}"},
)
def list_config(call: Call) -> flask.Response:
    r, key = call.ctx.redis, call.ctx.keys.config
    stored = {k.decode(): v.decode() for k, v in r.hgetall(key).items()}  # type: ignore[union-attr]
    values = DynamicConfig(r, key).snapshot()
    items = [
        {
            "key": name,
            "value": values[name],
            "default": KNOBS[name].default,
            "source": "set" if name in stored else "default",
            "help": KNOBS[name].help,
        }
        for name in sorted(KNOBS)
    ]
    return _items(items, None)


@route(
    "/api/v2/config/<key>",
    "PUT",
    role="operator",
    surface="v2",
    summary="change a dynamic setting (validated, audited)",
    params=(Param("key", "path", {"type": "string", "enum": sorted(KNOBS)}, True),),
    body={
        "type": "object",
        "additionalProperties": False,
        "required": ["value", "reason"],
        "properties": {"value": {"type": "integer"}, "reason": {"type": "string"}},
    },
    responses={200: "{key, old_value, new_value}", 400: "invalid", 404: "unknown setting"},
)
def put_config(call: Call) -> flask.Response:
    key = call.args["key"]
    if key not in KNOBS:
        raise ApiError(404, f"unknown setting {key[:64]!r}", field="key")
    body = _strict(call, ("value", "reason"))
    reason = reason_of(call, required=True, default="")
    return json_response(set_setting(call, key, body.get("value"), reason))


@route(
    "/api/v2/correlation",
    "GET",
    role="viewer",
    surface="v2",
    summary="correlation: paired rules and the live settings",
    responses={200: "{pairs, settings}"},
)
def correlation(call: Call) -> flask.Response:
    ctx = call.ctx
    doc, _ = load_doc(ctx.redis, CorrelationKeys(ctx.settings.namespace))
    knobs = DynamicConfig(ctx.redis, ctx.keys.config).snapshot()
    return json_response(
        {
            "pairs": doc.model_dump(mode="json")["pairs"],
            "settings": {name: knobs[name] for name in CORRELATION_KNOBS},
        }
    )


# ---------------------------------------------------------------- audit


@route(
    "/api/v2/audit/config",
    "GET",
    role="viewer",
    surface="v2",
    summary="configuration changes, newest first",
    params=(
        Param("changed_by", "query", {"type": "string"}),
        Param("operation", "query", {"type": "string", "enum": ["CREATE", "UPDATE", "DELETE"]}),
        Param("table_name", "query", {"type": "string"}),
        Param("record_id", "query", {"type": "string"}),
        Param("start", "query", {"type": "string", "format": "date-time"}),
        Param("end", "query", {"type": "string", "format": "date-time"}),
        LIMIT,
        CURSOR,
    ),
    responses={200: "{items, next_cursor}", 400: "invalid filter"},
)
def audit_config(call: Call) -> flask.Response:
    f = config_filters(
        changed_by=call.query("changed_by"),
        operation=call.query("operation"),
        table_name=call.query("table_name"),
        record_id=call.query("record_id"),
        start=parse_time("start", call.query("start")),
        end=parse_time("end", call.query("end")),
    )
    items, cursor = config_after(
        call.conn, f, cursor=decode_cursor(call.query("cursor"), (int,)), limit=_limit(call)
    )
    return _items(items, cursor)


@route(
    "/api/v2/audit/events",
    "GET",
    role="viewer",
    surface="v2",
    summary="decisions taken on events, newest first",
    params=(
        Param("hostname", "query", {"type": "string"}),
        Param("rule_id", "query", {"type": "integer", "minimum": 1}),
        Param("team", "query", {"type": "string"}),
        Param("start", "query", {"type": "string", "format": "date-time"}),
        Param("end", "query", {"type": "string", "format": "date-time"}),
        LIMIT,
        CURSOR,
    ),
    responses={200: "{items, next_cursor}", 400: "invalid filter"},
)
def audit_events(call: Call) -> flask.Response:
    rule = call.query("rule_id")
    if rule is not None and not (rule.isdigit() and int(rule) < 2**31):
        raise bad("rule_id", "must be a rule id")
    f = event_filters(
        hostname=call.query("hostname"),
        rule_id=int(rule) if rule is not None else None,
        team=call.query("team"),
        start=parse_time("start", call.query("start")),
        end=parse_time("end", call.query("end")),
    )
    items, cursor = events_after(
        call.conn, f, cursor=decode_cursor(call.query("cursor"), (str, str)), limit=_limit(call)
    )
    return _items(items, cursor)


# ---------------------------------------------------------------- dead letters


STAGE = Param("stage", "query", {"type": "string", "enum": ["forward", "alert", "audit"]})


def _stage(call: Call, value: object) -> str:
    stage = value if value is not None else "forward"
    if stage not in dlq.STAGES:
        raise bad("stage", f"must be one of {', '.join(dlq.STAGES)}")
    return str(stage)


@route(
    "/api/v2/dlq",
    "GET",
    role="viewer",
    surface="v2",
    summary="dead letters of one stage, newest first",
    params=(STAGE, LIMIT, CURSOR),
    responses={200: "{items, next_cursor}", 400: "invalid parameter"},
)
def list_dlq(call: Call) -> flask.Response:
    stage = _stage(call, call.query("stage"))
    limit = _limit(call)
    after = decode_cursor(call.query("cursor"), (str,))
    upper = f"({after[0]}" if after else "+"
    if after and not dlq.ENTRY_ID.match(after[0]):
        raise bad("cursor", "is not a cursor this API gave out")
    rows: Any = call.ctx.redis.xrevrange(call.ctx.keys.dlq(stage), upper, "-", count=limit + 1)
    entries = [
        dlq.DeadLetter(stage, dlq.text_of(eid), fields).as_json(full=False)
        for eid, fields in rows[:limit]
    ]
    more = len(rows) > limit
    return _items(entries, encode_cursor([entries[-1]["id"]]) if more and entries else None)


@route(
    "/api/v2/dlq/replay",
    "POST",
    role="operator",
    surface="v2",
    summary="put dead letters back into their stage's input (atomic per entry, audited)",
    body={
        "type": "object",
        "additionalProperties": False,
        "required": ["reason"],
        "properties": {
            "stage": {"type": "string", "enum": ["forward", "alert", "audit"]},
            "ids": {"type": "array", "items": {"type": "string"}},
            "reason_contains": {"type": "string"},
            "all": {"type": "boolean"},
            "dry_run": {"type": "boolean"},
            "reason": {"type": "string"},
        },
    },
    responses={200: "{replayed, skipped, vanished}", 400: "invalid selection"},
)
def replay_dlq(call: Call) -> flask.Response:
    body = _strict(call, ("stage", "ids", "reason_contains", "all", "dry_run", "reason"))
    stages = (_stage(call, body["stage"]),) if body.get("stage") is not None else dlq.STAGES
    ids = body.get("ids") or []
    if not isinstance(ids, list) or not all(
        isinstance(i, str) and dlq.ENTRY_ID.match(i) for i in ids
    ):
        raise bad("ids", "must be a list of entry ids like 1714567890123-0")
    contains = body.get("reason_contains")
    if contains is not None and (
        not isinstance(contains, str) or not contains.strip() or "\x00" in contains
    ):
        raise bad("reason_contains", "must be non-blank text without NUL characters")
    everything = body.get("all") is True
    if not (ids or contains or everything):
        raise bad("ids", "say which entries: ids, reason_contains or all: true")
    dry_run = body.get("dry_run") is True
    reason = reason_of(call, required=True, default="")
    ctx = call.ctx
    selection = dlq.Selection(stages=stages, ids=tuple(ids), reason_contains=contains)
    try:
        result = dlq.replay(ctx.redis, ctx.keys, selection, dry_run=dry_run)
    except dlq.DlqInputError as exc:
        raise bad("ids", str(exc)) from None
    done = {
        "replayed": result.replayed,
        "skipped": result.skipped,
        "vanished": result.vanished,
        "dry_run": dry_run,
    }
    if not dry_run:
        conn = call.conn
        conn.run("BEGIN")
        try:
            write_config_audit(
                conn,
                [
                    ConfigChange(
                        "UPDATE",
                        "dlq",
                        ",".join(stages),
                        {"selection": {"ids": ids, "reason_contains": contains, "all": everything}},
                        done,
                    )
                ],
                changed_by=call.who,
                reason=reason,
                correlation_id=str(uuid.uuid4()),
            )
            conn.run("COMMIT")
        except BaseException:
            conn.run("ROLLBACK")
            raise
    return json_response(done)


# ---------------------------------------------------------------- silences


SILENCE_FIELDS = (
    "host",
    "team",
    "rule",
    "start",
    "end",
    "duration_seconds",
    "cron",
    "timezone",
    "reason",
)


def _silence_state(silence: Silence, now: datetime) -> str:
    active, until = silence.state_at(now)
    return "active" if active else ("expired" if until is None else "pending")


@route(
    "/api/v2/silences",
    "GET",
    role="viewer",
    surface="v2",
    summary="silences (maintenance windows); all=true includes expired ones",
    params=(Param("all", "query", {"type": "boolean"}),),
    responses={200: "{items}"},
)
def list_silences(call: Call) -> flask.Response:
    now = datetime.now(UTC)
    show_all = (call.query("all") or "").lower() in ("1", "true", "yes")
    items = []
    for s in load_silences(call.ctx.redis, CorrelationKeys(call.ctx.settings.namespace)):
        state = _silence_state(s, now)
        if state != "expired" or show_all:
            items.append({"id": s.id, "state": state, **s.model_dump(mode="json", exclude={"id"})})
    return _items(items, None)


@route(
    "/api/v2/silences",
    "POST",
    role="operator",
    surface="v2",
    summary="add a silence by host glob, team and/or rule; one-off or cron (audited)",
    body={
        "type": "object",
        "additionalProperties": False,
        "required": ["reason"],
        "properties": {
            "host": {"type": "string"},
            "team": {"type": "string"},
            "rule": {"type": ["integer", "string"]},
            "start": {"type": "string", "format": "date-time"},
            "end": {"type": "string", "format": "date-time"},
            "duration_seconds": {"type": "integer", "minimum": 1},
            "cron": {"type": "string"},
            "timezone": {"type": "string"},
            "reason": {"type": "string"},
        },
    },
    responses={201: "the silence", 400: "invalid field"},
)
def add(call: Call) -> flask.Response:
    body = _strict(call, SILENCE_FIELDS)
    reason = reason_of(call, required=True, default="")
    silence = build_silence(body, call.who, reason)
    ctx = call.ctx
    add_silence(ctx.redis, call.conn, CorrelationKeys(ctx.settings.namespace), silence)
    now = datetime.now(UTC)
    return json_response(
        {
            "id": silence.id,
            "state": _silence_state(silence, now),
            **silence.model_dump(mode="json", exclude={"id"}),
        },
        201,
    )


def build_silence(body: dict[str, Any], who: str, reason: str) -> Silence:
    """A silence from an API body or console form; 400 names the field at fault."""
    if not any(body.get(k) not in (None, "") for k in ("host", "team", "rule")):
        raise bad("host", "say what to silence: host, team and/or rule")
    now = datetime.now(UTC)
    start = (
        parse_time("start", body.get("start") if isinstance(body.get("start"), str) else None)
        or now
    )
    end = parse_time("end", body.get("end") if isinstance(body.get("end"), str) else None)
    for name in ("start", "end"):
        if body.get(name) is not None and not isinstance(body.get(name), str):
            raise bad(name, "must be an ISO time")
    duration = body.get("duration_seconds")
    if duration is not None and (
        isinstance(duration, bool)
        or not isinstance(duration, int)
        or not 0 < duration <= 366 * 86_400
    ):
        raise bad("duration_seconds", "must be a number of seconds, at most a year")
    cron = body.get("cron") or None
    if cron is None and duration is not None:
        if end is not None:
            raise bad("end", "give end or duration_seconds, not both")
        end = start + timedelta(seconds=duration)
    if cron is not None and duration is None:
        raise bad("duration_seconds", "a cron silence needs duration_seconds for each window")
    rule = body.get("rule")
    if isinstance(rule, str) and rule.strip().isdigit():
        rule = int(rule.strip())
    if rule in ("", None):
        rule = None
    try:
        return Silence(
            id=new_id(),
            host=body.get("host") or None,
            team=body.get("team") or None,
            rule=rule,
            start=start,
            end=end,
            cron=cron,
            duration_seconds=duration if cron else None,
            timezone=body.get("timezone") or "UTC",
            reason=reason,
            created_by=who[:200],
            created_at=now,
        )
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = str(err["loc"][0]) if err.get("loc") else "body"
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        raise bad(field, message) from None
    except (TypeError, ValueError) as exc:
        raise bad("body", str(exc)) from None


@route(
    "/api/v2/silences/<silence_id>",
    "DELETE",
    role="operator",
    surface="v2",
    summary="end a silence now (audited)",
    params=(
        Param("silence_id", "path", {"type": "string", "minLength": 1, "maxLength": 64}, True),
        REASON_Q,
    ),
    responses={204: "removed", 404: "no such silence"},
)
def remove(call: Call) -> flask.Response:
    reason = reason_of(call, required=True, default="")
    ctx = call.ctx
    try:
        remove_silences(
            ctx.redis,
            call.conn,
            CorrelationKeys(ctx.settings.namespace),
            [call.args["silence_id"]],
            changed_by=call.who,
            reason=reason,
        )
    except UnknownSilences as exc:
        raise ApiError(404, str(exc)) from None
    return flask.Response(b"", 204)


# ---------------------------------------------------------------- state


@route(
    "/api/v2/status",
    "GET",
    role="viewer",
    surface="v2",
    summary="streams, backlog, dead letters, breakers, rules, partitions (mutt status)",
    responses={200: "the status document"},
)
def status(call: Call) -> flask.Response:
    return json_response(admin_status.collect(call.ctx))


@route(
    "/api/v2/unhandled",
    "GET",
    role="viewer",
    surface="v2",
    summary="the most frequent events no rule matched, this window",
    params=(Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 100}),),
    responses={200: "{window_seconds, items}"},
)
def unhandled(call: Call) -> flask.Response:
    limit = call.query_int("limit", 10, 1, 100, clamp=False)
    ctx = call.ctx
    window = ctx.dynamic.get("unhandled_window_seconds")
    items = [
        {
            "fingerprint": t.fingerprint,
            "count": t.count,
            "hostname": t.hostname,
            "message": t.message,
        }
        for t in top_unhandled(ctx.redis, ctx.settings.namespace, window, limit)
    ]
    return json_response({"window_seconds": window, "items": items})


@route(
    "/api/v2/slo",
    "GET",
    role="viewer",
    surface="v2",
    summary="the SLO report",
    responses={200: "{status, slos}"},
)
def slo(call: Call) -> flask.Response:
    return json_response(report(call.ctx.redis, call.ctx.keys))


@route(
    "/api/v2/metrics",
    "GET",
    role="viewer",
    surface="v2",
    summary="event rates over 1 min, 15 min, 1 h and per hour over 24 h",
    responses={200: "{summary, chart_24h}"},
)
def metrics(call: Call) -> flask.Response:
    return json_response(event_rates(call.conn))
