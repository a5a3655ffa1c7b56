"""``/api/v1``: the MUTT v2.5 Web UI's API, same routes, requests and answers.

Automation written for the original keeps working: the same payloads, the
same success bodies (``{"rules": [...]}``, ``201 {"id", "message"}``,
``{"logs", "pagination"}`` ...), errors as ``{"error": "..."}`` (plus
``field`` naming the input at fault). What changed: keys only in the
``X-API-KEY`` header (never ``?api_key=``), roles, validation exactly as
``mutt rules apply`` validates, and every write audited and live within a
second (the original needed up to five minutes or a SIGHUP). A ``reason``
may be given in the body or the ``X-MUTT-Reason`` header; v1 does not
require one.
"""

from __future__ import annotations

from typing import Any

import flask

from functions.admin.app import json_response
from functions.admin.common import (
    RULE_DEFAULTS,
    RULE_FIELDS,
    RULE_PROPERTIES,
    host_of,
    reason_of,
    rule_doc,
    rule_values,
    set_setting,
    team_of,
)
from functions.admin.errors import ApiError, bad
from functions.admin.queries import (
    config_filters,
    config_page,
    event_filters,
    event_rates,
    events_page,
    pagination,
    parse_time,
)
from functions.admin.routing import Call, Param, route
from functions.admin.slo import report
from functions.alert.catalog import NotInCatalog, edits, read_rule, read_state
from shared.dynconfig import CONFIG_TABLE, KNOBS, DynamicConfig

NO_REASON = "(no reason given, /api/v1)"
RULE_ID = Param("rule_id", "path", {"type": "integer", "minimum": 1, "maximum": 2147483647}, True)
HOSTNAME = Param("hostname", "path", {"type": "string", "minLength": 1, "maxLength": 255}, True)
PAGE = Param("page", "query", {"type": "integer", "minimum": 1})
LIMIT = Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 200})
START = Param("start_date", "query", {"type": "string", "format": "date-time"})
END = Param("end_date", "query", {"type": "string", "format": "date-time"})
# v2.5 clients send any subset (a missing field is answered 400 by the checks),
# and unknown fields are ignored, as the original did.
RULE_BODY: dict[str, Any] = {"type": "object", "properties": RULE_PROPERTIES}


def _v1_entry(body: dict[str, Any]) -> dict[str, Any]:
    return {k: body[k] for k in RULE_FIELDS if k in body}


@route(
    "/api/v1/rules",
    "GET",
    role="viewer",
    surface="v1",
    summary="every rule, in evaluation order",
    responses={200: "{rules: [...]}"},
)
def list_rules(call: Call) -> flask.Response:
    state = read_state(call.conn)
    return json_response({"rules": [rule_doc(rid, v) for rid, v in state.rules.items()]})


@route(
    "/api/v1/rules",
    "POST",
    role="admin",
    surface="v1",
    summary="create a rule",
    body=RULE_BODY,
    responses={201: "{id, message}", 400: "a field is missing or invalid"},
)
def create_rule(call: Call) -> flask.Response:
    body = call.body
    missing = [f for f in ("prod_handling", "dev_handling", "team_assignment") if f not in body]
    if missing:
        raise ApiError(400, f"Missing required fields: {missing}", field=missing[0])
    if not body.get("match_string") and not body.get("trap_oid"):
        raise ApiError(400, "Either match_string or trap_oid is required", field="match_string")
    values = rule_values({**RULE_DEFAULTS, **_v1_entry(body)})
    reason = reason_of(call, required=False, default=NO_REASON)
    ctx = call.ctx
    rule_id = edits.create_rule(
        call.conn, ctx.redis, ctx.settings.namespace, values, who=call.who, reason=reason
    )
    return json_response(
        {"id": rule_id, "message": "Rule created successfully"},
        201,
        {"Location": f"/api/v1/rules/{rule_id}"},
    )


@route(
    "/api/v1/rules/<int:rule_id>",
    "GET",
    role="viewer",
    surface="v1",
    summary="one rule",
    params=(RULE_ID,),
    responses={200: "the rule", 404: "no such rule"},
)
def get_rule(call: Call) -> flask.Response:
    found = read_rule(call.conn, call.args["rule_id"])
    if found is None:
        raise ApiError(404, "Rule not found")
    return json_response(rule_doc(call.args["rule_id"], found))


@route(
    "/api/v1/rules/<int:rule_id>",
    "PUT",
    role="admin",
    surface="v1",
    summary="change the fields given of a rule",
    params=(RULE_ID,),
    body=RULE_BODY,
    responses={200: "{message}", 400: "invalid", 404: "no such rule"},
)
def update_rule(call: Call) -> flask.Response:
    given = _v1_entry(call.body)
    if not given:
        raise ApiError(400, "No fields to update", field="body")
    rule_id = call.args["rule_id"]

    def merged(old: Any) -> dict[str, Any]:
        return rule_values({**dict(old), **given})

    reason = reason_of(call, required=False, default=NO_REASON)
    ctx = call.ctx
    try:
        edits.update_rule(
            call.conn,
            ctx.redis,
            ctx.settings.namespace,
            rule_id,
            merged,
            who=call.who,
            reason=reason,
        )
    except NotInCatalog:
        raise ApiError(404, "Rule not found") from None
    return json_response({"message": "Rule updated successfully"})


@route(
    "/api/v1/rules/<int:rule_id>",
    "DELETE",
    role="admin",
    surface="v1",
    summary="delete a rule",
    params=(RULE_ID,),
    responses={200: "{message}", 404: "no such rule"},
)
def delete_rule(call: Call) -> flask.Response:
    reason = reason_of(call, required=False, default=NO_REASON)
    ctx = call.ctx
    try:
        edits.delete_rule(
            call.conn,
            ctx.redis,
            ctx.settings.namespace,
            call.args["rule_id"],
            who=call.who,
            reason=reason,
        )
    except NotInCatalog:
        raise ApiError(404, "Rule not found") from None
    return json_response({"message": "Rule deleted successfully"})


# ---------------------------------------------------------------- development hosts


@route(
    "/api/v1/dev-hosts",
    "GET",
    role="viewer",
    surface="v1",
    summary="development hosts",
    responses={200: "{hosts: [{hostname}]}"},
)
def list_dev_hosts(call: Call) -> flask.Response:
    hosts = sorted(read_state(call.conn).hosts)
    return json_response({"hosts": [{"hostname": h} for h in hosts]})


@route(
    "/api/v1/dev-hosts",
    "POST",
    role="admin",
    surface="v1",
    summary="add a development host",
    body={
        "type": "object",
        "properties": {"hostname": {"type": "string"}, "reason": {"type": "string"}},
        "required": ["hostname"],
    },
    responses={201: "added", 400: "invalid", 409: "already there"},
)
def add_dev_host(call: Call) -> flask.Response:
    if not call.body.get("hostname"):
        raise ApiError(400, "hostname is required", field="hostname")
    host = host_of(call.body["hostname"])
    reason = reason_of(call, required=False, default=NO_REASON)
    ctx = call.ctx
    try:
        edits.add_dev_host(
            call.conn, ctx.redis, ctx.settings.namespace, host, who=call.who, reason=reason
        )
    except edits.AlreadyInCatalog:
        raise ApiError(409, "Hostname already exists", field="hostname") from None
    return json_response({"message": "Dev host added successfully", "hostname": host}, 201)


@route(
    "/api/v1/dev-hosts/<hostname>",
    "DELETE",
    role="admin",
    surface="v1",
    summary="remove a development host",
    params=(HOSTNAME,),
    responses={200: "removed", 404: "not a development host"},
)
def delete_dev_host(call: Call) -> flask.Response:
    host = host_of(call.args["hostname"])
    reason = reason_of(call, required=False, default=NO_REASON)
    ctx = call.ctx
    try:
        edits.delete_dev_host(
            call.conn, ctx.redis, ctx.settings.namespace, host, who=call.who, reason=reason
        )
    except NotInCatalog:
        raise ApiError(404, "Hostname not found") from None
    return json_response({"message": "Dev host deleted successfully"})


# ---------------------------------------------------------------- device teams

TEAM_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "hostname": {"type": "string"},
        "team_assignment": {"type": "string"},
        "reason": {"type": "string"},
    },
}


@route(
    "/api/v1/teams",
    "GET",
    role="viewer",
    surface="v1",
    summary="device teams",
    responses={200: "{teams: [{hostname, team_assignment}]}"},
)
def list_teams(call: Call) -> flask.Response:
    teams = read_state(call.conn).teams
    return json_response(
        {"teams": [{"hostname": h, "team_assignment": teams[h]} for h in sorted(teams)]}
    )


@route(
    "/api/v1/teams",
    "POST",
    role="admin",
    surface="v1",
    summary="assign a device to a team",
    body=TEAM_BODY,
    responses={201: "added", 400: "invalid", 409: "already assigned"},
)
def add_team(call: Call) -> flask.Response:
    body = call.body
    if not body.get("hostname") or not body.get("team_assignment"):
        field = "hostname" if not body.get("hostname") else "team_assignment"
        raise ApiError(400, "hostname and team_assignment are required", field=field)
    host, team = team_of(body["hostname"], body["team_assignment"])
    reason = reason_of(call, required=False, default=NO_REASON)
    ctx = call.ctx
    try:
        edits.set_team(
            call.conn,
            ctx.redis,
            ctx.settings.namespace,
            host,
            team,
            who=call.who,
            reason=reason,
            must_exist=False,
        )
    except edits.AlreadyInCatalog:
        raise ApiError(409, "Hostname already has a team assignment", field="hostname") from None
    return json_response({"message": "Team mapping added successfully"}, 201)


@route(
    "/api/v1/teams/<hostname>",
    "PUT",
    role="admin",
    surface="v1",
    summary="change a device's team",
    params=(HOSTNAME,),
    body=TEAM_BODY,
    responses={200: "changed", 400: "invalid", 404: "no assignment"},
)
def update_team(call: Call) -> flask.Response:
    if not call.body.get("team_assignment"):
        raise ApiError(400, "team_assignment is required", field="team_assignment")
    host, team = team_of(call.args["hostname"], call.body["team_assignment"])
    reason = reason_of(call, required=False, default=NO_REASON)
    ctx = call.ctx
    try:
        edits.set_team(
            call.conn,
            ctx.redis,
            ctx.settings.namespace,
            host,
            team,
            who=call.who,
            reason=reason,
            must_exist=True,
        )
    except NotInCatalog:
        raise ApiError(404, "Hostname not found") from None
    return json_response({"message": "Team mapping updated successfully"})


@route(
    "/api/v1/teams/<hostname>",
    "DELETE",
    role="admin",
    surface="v1",
    summary="remove a device's team",
    params=(HOSTNAME,),
    responses={200: "removed", 404: "no assignment"},
)
def delete_team(call: Call) -> flask.Response:
    host = host_of(call.args["hostname"])
    reason = reason_of(call, required=False, default=NO_REASON)
    ctx = call.ctx
    try:
        edits.delete_team(
            call.conn, ctx.redis, ctx.settings.namespace, host, who=call.who, reason=reason
        )
    except NotInCatalog:
        raise ApiError(404, "Hostname not found") from None
    return json_response({"message": "Team mapping deleted successfully"})


# ---------------------------------------------------------------- dynamic settings


@route(
    "/api/v1/config",
    "GET",
    role="viewer",
    surface="v1",
    summary="dynamic settings in force",
    responses={200: "{config: {key: value}}"},
)
def get_config(call: Call) -> flask.Response:
    return json_response({"config": DynamicConfig(call.ctx.redis, call.ctx.keys.config).snapshot()})


@route(
    "/api/v1/config/history",
    "GET",
    role="viewer",
    surface="v1",
    summary="changes of dynamic settings, newest first",
    params=(PAGE, LIMIT),
    responses={200: "{history, pagination}"},
)
def config_history(call: Call) -> flask.Response:
    page = call.query_int("page", 1, 1, 1_000_000, clamp=True)
    limit = call.query_int("limit", 50, 1, 200, clamp=True)
    rows, total = config_page(
        call.conn, config_filters(table_name=CONFIG_TABLE), page=page, limit=limit
    )
    for row in rows:
        row["created_at"] = row["changed_at"]  # the original's name for it
    return json_response({"history": rows, "pagination": pagination(page, limit, total)})


@route(
    "/api/v1/config/<key>",
    "PUT",
    role="operator",
    surface="v1",
    summary="change a dynamic setting (validated, audited)",
    params=(Param("key", "path", {"type": "string", "enum": sorted(KNOBS)}, True),),
    body={
        "type": "object",
        "properties": {"value": {}, "reason": {"type": "string"}},
        "required": ["value"],
    },
    responses={200: "{key, old_value, new_value}", 400: "invalid value", 404: "unknown setting"},
)
def put_config(call: Call) -> flask.Response:
    key = call.args["key"]
    if key not in KNOBS:
        raise ApiError(404, f"unknown setting {key[:64]!r}; known: {', '.join(sorted(KNOBS))}")
    if "value" not in call.body:
        raise ApiError(400, "Missing 'value' in request body", field="value")
    reason = reason_of(call, required=False, default=NO_REASON)
    return json_response(set_setting(call, key, call.body["value"], reason))


# ---------------------------------------------------------------- audit


@route(
    "/api/v1/audit",
    "GET",
    role="viewer",
    surface="v1",
    summary="configuration audit (who changed what, when, why)",
    params=(
        Param("changed_by", "query", {"type": "string"}),
        Param("operation", "query", {"type": "string", "enum": ["CREATE", "UPDATE", "DELETE"]}),
        Param("table_name", "query", {"type": "string"}),
        Param("record_id", "query", {"type": "string"}),
        START,
        END,
        PAGE,
        LIMIT,
    ),
    responses={200: "{logs, pagination}", 400: "a filter is invalid"},
)
def config_audit(call: Call) -> flask.Response:
    page = call.query_int("page", 1, 1, 1_000_000, clamp=True)
    limit = call.query_int("limit", 50, 1, 200, clamp=True)
    f = config_filters(
        changed_by=call.query("changed_by"),
        operation=call.query("operation"),
        table_name=call.query("table_name"),
        record_id=call.query("record_id"),
        start=parse_time("start_date", call.query("start_date")),
        end=parse_time("end_date", call.query("end_date")),
    )
    rows, total = config_page(call.conn, f, page=page, limit=limit)
    return json_response({"logs": rows, "pagination": pagination(page, limit, total)})


@route(
    "/api/v1/audit-logs",
    "GET",
    role="viewer",
    surface="v1",
    summary="event audit (the decision taken on each handled event)",
    params=(
        Param("hostname", "query", {"type": "string"}),
        Param("rule_id", "query", {"type": "integer"}),
        START,
        END,
        PAGE,
        LIMIT,
    ),
    responses={200: "{logs, pagination}", 400: "a filter is invalid"},
)
def event_audit(call: Call) -> flask.Response:
    page = call.query_int("page", 1, 1, 1_000_000, clamp=True)
    limit = call.query_int("limit", 50, 1, 200, clamp=True)
    rule = call.query("rule_id")
    if rule is not None and not (rule.isdigit() and int(rule) < 2**31):
        raise bad("rule_id", "must be a rule id")
    f = event_filters(
        hostname=call.query("hostname"),
        rule_id=int(rule) if rule is not None else None,
        start=parse_time("start_date", call.query("start_date")),
        end=parse_time("end_date", call.query("end_date")),
    )
    rows, total = events_page(call.conn, f, page=page, limit=limit)
    for row in rows:  # the original's column names, beside ours
        row["event_timestamp"] = row["event_time"]
        row["forwarded_to_moog"] = row["forwarded"]
    return json_response({"logs": rows, "pagination": pagination(page, limit, total)})


# ---------------------------------------------------------------- metrics and SLOs


@route(
    "/api/v1/metrics",
    "GET",
    role="viewer",
    surface="v1",
    summary="event rates over 1 min, 15 min, 1 h and a 24 h chart series",
    responses={200: "{summary, chart_24h}"},
)
def rates(call: Call) -> flask.Response:
    return json_response(event_rates(call.conn))


@route(
    "/api/v1/slo",
    "GET",
    role="viewer",
    surface="v1",
    summary="per-SLO status (ok, warning, breaching, critical) with burn rates",
    responses={200: "{status, slos}"},
)
def slo(call: Call) -> flask.Response:
    return json_response(report(call.ctx.redis, call.ctx.keys))
