"""The web console: server-rendered pages over the same code as the API.

Pages render with Jinja2 (autoescaped) and one small script of our own
(``static/console.js``, the rule form's live preview); nothing is fetched
from elsewhere at run time. An operator logs in with an API key and gets a
session cookie (``session``); every form carries the CSRF token. Writes go
through the same owners as the API (``functions.alert.catalog.edits``,
``silence_edits``, DLQ replay) and need a reason.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import flask
from jinja2 import Environment, PackageLoader, select_autoescape

from functions.admin import status as admin_status
from functions.admin.api_v2 import build_silence
from functions.admin.app import check_key
from functions.admin.common import (
    RULE_DEFAULTS,
    catalog_refusals,
    host_of,
    rule_doc,
    rule_values,
    team_of,
)
from functions.admin.errors import ApiError, bad
from functions.admin.preview import preview
from functions.admin.queries import (
    config_after,
    config_filters,
    event_filters,
    event_rates,
    events_after,
)
from functions.admin.routing import Call, route
from functions.admin.session import (
    CSRF_COOKIE,
    CSRF_FIELD,
    LIFETIME_SECONDS,
    SESSION_COOKIE,
    csrf_ok,
    new_session,
    random_token,
)
from functions.admin.slo import report
from functions.alert.catalog import (
    build_plan,
    desired_from,
    edits,
    read_rule,
    read_state,
    render_plan,
)
from functions.alert.catalog.plan import changed_fields, describe_rule
from functions.alert.catalog.tables import VALUE_KEYS
from functions.alert.correlation.silence_edits import UnknownSilences, add_silence, remove_silences
from functions.alert.correlation.silences import load_silences
from shared.broker import dlq
from shared.broker.keys import CorrelationKeys
from shared.config_audit import ConfigChange, write_config_audit
from shared.models import Handling

_env = Environment(
    loader=PackageLoader("functions.admin", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
NOTICES = {
    "saved": "Rule {id} saved; alert instances use it within a second.",
    "deleted": "Rule {id} deleted.",
    "hosts": "Saved; alert instances use it within a second.",
    "silenced": "Silence added.",
    "unsilenced": "Silence ended.",
    "replayed": "{id} dead letters replayed.",
}
FORM_FIELDS = VALUE_KEYS  # the rule form's fields: the catalog's column list


def page(call: Call, template: str, code: int = 200, **values: Any) -> flask.Response:
    principal = call.principal
    notice = None
    done = call.request.args.get("done")
    if done in NOTICES:
        ident = call.request.args.get("id", "")
        notice = NOTICES[done].format(id=ident if ident.isdigit() else "")
    html = _env.get_template(template).render(
        who=principal.name if principal else None,
        role=principal.role if principal else None,
        csrf=call.session.csrf if call.session else "",
        page=values.pop("current", call.request.path),
        can_admin=bool(principal and principal.can("admin")),
        can_operate=bool(principal and principal.can("operator")),
        notice=notice,
        **values,
    )
    return flask.Response(html, code, mimetype="text/html")


def back(path: str, **query: object) -> flask.Response:
    target = path + ("?" + urlencode(query) if query else "")
    return flask.Response(b"", 303, {"Location": target})


def error_page(err: ApiError) -> flask.Response:
    html = _env.get_template("error.html").render(
        title=str(err.status), status_code=err.status, message=err.message
    )
    return flask.Response(html, err.status, err.headers, mimetype="text/html")


def _form(call: Call, name: str) -> str:
    value = call.request.form.get(name, "")
    if "\x00" in value:
        raise bad(name, "must not contain NUL characters")
    return value.strip()


def _reason(call: Call) -> str:
    reason = _form(call, "reason")
    if not reason:
        raise bad("reason", "say why: it is written to the audit trail")
    return reason[:1000]


# ---------------------------------------------------------------- login


def _cookie(response: flask.Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, secure=True, httponly=True, samesite="Strict", path="/"
    )


def _next(text: str | None) -> str:
    """Only a path of this site: never an open redirect."""
    if (
        text
        and len(text) <= 2000
        and text.startswith("/")
        and not text.startswith("//")
        and all(c.isprintable() and not c.isspace() and c != "\\" for c in text)
    ):
        return text
    return "/"


@route(
    "/login", "GET", role=None, surface="console", summary="the login page", produces="text/html"
)
def login_page(call: Call) -> flask.Response:
    token = random_token()
    response = page(
        call,
        "login.html",
        title="Log in",
        login_csrf=token,
        next=_next(call.request.args.get("next")),
    )
    _cookie(response, CSRF_COOKIE, token, 3600)
    return response


@route(
    "/login",
    "POST",
    role=None,
    surface="console",
    summary="log in with an API key",
    produces="text/html",
)
def login(call: Call) -> flask.Response:
    sent = call.request.form.get(CSRF_FIELD)
    cookie = call.request.cookies.get(CSRF_COOKIE)
    if not sent or not csrf_ok(sent, cookie, sent):
        raise ApiError(403, "the login form expired: reload the page", field=CSRF_FIELD)
    try:
        key = check_key(call, call.request.form.get("api_key", "").strip())
    except ApiError as err:
        if err.status != 401:
            raise
        token = random_token()
        response = page(
            call,
            "login.html",
            401,
            title="Log in",
            login_csrf=token,
            next=_next(call.request.form.get("next")),
            error="That key is not valid.",
        )
        _cookie(response, CSRF_COOKIE, token, 3600)
        return response
    session, value = new_session(key)
    response = back(_next(call.request.form.get("next")))
    _cookie(response, SESSION_COOKIE, value, LIFETIME_SECONDS)
    _cookie(response, CSRF_COOKIE, session.csrf, LIFETIME_SECONDS)
    return response


@route("/logout", "POST", role="viewer", surface="console", summary="log out", produces="text/html")
def logout(call: Call) -> flask.Response:
    response = back("/login")
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    response.delete_cookie(CSRF_COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    return response


# ---------------------------------------------------------------- overview


def _chart(data: list[float], labels: list[str]) -> dict[str, Any]:
    width, height, gap = 24 * 28, 120, 4
    top = max(data) or 1.0
    bars = []
    for i, (value, label) in enumerate(zip(data, labels, strict=True)):
        h = round(value / top * height, 1)
        bars.append(
            {
                "x": i * 28,
                "y": round(height - h, 1),
                "w": 28 - gap,
                "h": h,
                "label": label,
                "value": value,
            }
        )
    return {"width": width, "height": height, "bars": bars}


@route(
    "/",
    "GET",
    role="viewer",
    surface="console",
    summary="the overview (dashboard)",
    produces="text/html",
)
def overview(call: Call) -> flask.Response:
    status = admin_status.collect(call.ctx)
    rates = event_rates(call.conn)
    backlog = sum(
        g["lag"] or 0
        for s in status["streams"]
        if s["name"] in ("events", "alerts")
        for g in s["groups"]
    )
    return page(
        call,
        "overview.html",
        title="Overview",
        rates=rates,
        chart=_chart(rates["chart_24h"]["data"], rates["chart_24h"]["labels"]),
        backlog=backlog,
        dead=sum(status["dlq"].values()),
        unhandled=status["unhandled"]["top"],
        slo=report(call.ctx.redis, call.ctx.keys),
    )


# ---------------------------------------------------------------- rules


@route(
    "/rules",
    "GET",
    role="viewer",
    surface="console",
    summary="rules, searchable",
    produces="text/html",
)
def rules(call: Call) -> flask.Response:
    q = (call.query("q") or "")[:200]
    rows = []
    for rid, values in read_state(call.conn).rules.items():
        text = " ".join(str(v) for v in values.values()).lower() + f" {rid}"
        if not q or q.lower() in text:
            rows.append(rule_doc(rid, values))
    return page(call, "rules.html", title="Rules", rules=rows, q=q)


def _form_page(
    call: Call,
    values: dict[str, Any],
    rule_id: int | None,
    etag: str | None,
    error: str | None = None,
    status: int = 200,
) -> flask.Response:
    return page(
        call,
        "rule_form.html",
        status,
        title="Rule",
        values=values,
        rule_id=rule_id,
        etag=etag,
        handlings=[h.value for h in Handling],
        error=error,
        current="/rules",
    )


@route(
    "/rules/new",
    "GET",
    role="admin",
    surface="console",
    summary="the new-rule form",
    produces="text/html",
)
def new_rule(call: Call) -> flask.Response:
    values: dict[str, Any] = {
        **RULE_DEFAULTS,
        "prod_handling": "Ticket_only",
        "dev_handling": "Ignore",
    }
    for name in ("match_string", "team_assignment"):
        given = call.query(name)
        if given:
            values[name] = given[:1000]
    return _form_page(call, values, None, None)


@route(
    "/rules/<int:rule_id>/edit",
    "GET",
    role="admin",
    surface="console",
    summary="the edit form of a rule",
    produces="text/html",
)
def edit_rule(call: Call) -> flask.Response:
    found = read_rule(call.conn, call.args["rule_id"])
    if found is None:
        raise ApiError(404, f"no rule with id {call.args['rule_id']}")
    doc = rule_doc(call.args["rule_id"], found)
    return _form_page(call, doc, call.args["rule_id"], doc["etag"])


def _entry(call: Call) -> dict[str, Any]:
    """The rule the form describes, in the API's terms (strings made typed)."""
    entry: dict[str, Any] = {}
    for name in FORM_FIELDS:
        text = _form(call, name)
        if name == "is_active":
            entry[name] = text == "true"
        elif name == "priority":
            try:
                entry[name] = int(text) if text else 100
            except ValueError:
                raise bad("priority", f"{text[:20]!r} is not an integer") from None
        elif name == "syslog_severity":
            entry[name] = (int(text) if text.isdigit() else text) if text else None
        else:
            entry[name] = text or None
    return entry


def _rule_id(call: Call) -> int | None:
    text = _form(call, "rule_id")
    if not text:
        return None
    if not text.isdigit():
        raise bad("rule_id", "must be a rule id")
    return int(text)


@route(
    "/rules/review",
    "POST",
    role="admin",
    surface="console",
    summary="the diff and preview of a rule before saving",
    produces="text/html",
)
def review(call: Call) -> flask.Response:
    rule_id, entry = _rule_id(call), _entry(call)
    etag = _form(call, "etag") or None
    try:
        values = rule_values(entry)
    except ApiError as err:
        return _form_page(call, entry, rule_id, etag, err.message, 400)
    state = read_state(call.conn)
    desired = desired_from(state)
    if rule_id is None:
        desired.rules.append((None, values))
    elif rule_id in state.rules:
        desired.rules = [(rid, values if rid == rule_id else v) for rid, v in desired.rules]
    else:
        raise ApiError(404, f"no rule with id {rule_id}")
    diff = render_plan(build_plan(state, desired, prune=False))
    hidden = {
        k: ("true" if v else "") if k == "is_active" else ("" if v is None else v)
        for k, v in entry.items()
    }
    hidden.update(rule_id=rule_id or "", etag=etag or "")
    return page(
        call,
        "rule_review.html",
        title="Review",
        rule_id=rule_id,
        diff=diff,
        preview=preview(call.ctx, values),
        hidden=hidden,
        current="/rules",
    )


@route(
    "/rules/save",
    "POST",
    role="admin",
    surface="console",
    summary="save a reviewed rule (reason required)",
    produces="text/html",
)
def save(call: Call) -> flask.Response:
    rule_id, values = _rule_id(call), rule_values(_entry(call))
    reason = _reason(call)
    ctx = call.ctx
    with catalog_refusals():
        if rule_id is None:
            rule_id = edits.create_rule(
                call.conn, ctx.redis, ctx.settings.namespace, values, who=call.who, reason=reason
            )
        else:
            edits.update_rule(
                call.conn,
                ctx.redis,
                ctx.settings.namespace,
                rule_id,
                values,
                who=call.who,
                reason=reason,
                if_match=_form(call, "etag") or None,
            )
    return back("/rules", done="saved", id=rule_id)


@route(
    "/rules/<int:rule_id>/delete",
    "POST",
    role="admin",
    surface="console",
    summary="delete a rule (reason required)",
    produces="text/html",
)
def delete(call: Call) -> flask.Response:
    reason = _reason(call)
    ctx = call.ctx
    with catalog_refusals():
        edits.delete_rule(
            call.conn,
            ctx.redis,
            ctx.settings.namespace,
            call.args["rule_id"],
            who=call.who,
            reason=reason,
            if_match=_form(call, "etag") or None,
        )
    return back("/rules", done="deleted", id=call.args["rule_id"])


# ---------------------------------------------------------------- hosts and teams


@route(
    "/hosts",
    "GET",
    role="viewer",
    surface="console",
    summary="development hosts and device teams",
    produces="text/html",
)
def hosts(call: Call) -> flask.Response:
    state = read_state(call.conn)
    return page(
        call,
        "hosts.html",
        title="Hosts and teams",
        hosts=sorted(state.hosts),
        teams=sorted(state.teams.items()),
    )


@route(
    "/hosts/dev",
    "POST",
    role="admin",
    surface="console",
    summary="add a development host",
    produces="text/html",
)
def add_dev(call: Call) -> flask.Response:
    host, reason, ctx = host_of(_form(call, "hostname")), _reason(call), call.ctx
    with catalog_refusals():
        edits.add_dev_host(
            call.conn, ctx.redis, ctx.settings.namespace, host, who=call.who, reason=reason
        )
    return back("/hosts", done="hosts")


@route(
    "/hosts/dev/delete",
    "POST",
    role="admin",
    surface="console",
    summary="remove a development host",
    produces="text/html",
)
def delete_dev(call: Call) -> flask.Response:
    host, reason, ctx = host_of(_form(call, "hostname")), _reason(call), call.ctx
    with catalog_refusals():
        edits.delete_dev_host(
            call.conn, ctx.redis, ctx.settings.namespace, host, who=call.who, reason=reason
        )
    return back("/hosts", done="hosts")


@route(
    "/hosts/teams",
    "POST",
    role="admin",
    surface="console",
    summary="assign a device's team",
    produces="text/html",
)
def set_team(call: Call) -> flask.Response:
    host, team = team_of(_form(call, "hostname"), _form(call, "team_assignment"))
    reason, ctx = _reason(call), call.ctx
    edits.set_team(
        call.conn, ctx.redis, ctx.settings.namespace, host, team, who=call.who, reason=reason
    )
    return back("/hosts", done="hosts")


@route(
    "/hosts/teams/delete",
    "POST",
    role="admin",
    surface="console",
    summary="remove a device's team",
    produces="text/html",
)
def delete_team(call: Call) -> flask.Response:
    host, reason, ctx = host_of(_form(call, "hostname")), _reason(call), call.ctx
    with catalog_refusals():
        edits.delete_team(
            call.conn, ctx.redis, ctx.settings.namespace, host, who=call.who, reason=reason
        )
    return back("/hosts", done="hosts")


# ---------------------------------------------------------------- silences


@route(
    "/silences", "GET", role="viewer", surface="console", summary="silences", produces="text/html"
)
def silences(call: Call) -> flask.Response:
    now = datetime.now(UTC)
    rows = []
    for s in load_silences(call.ctx.redis, CorrelationKeys(call.ctx.settings.namespace)):
        active, until = s.state_at(now)
        state = "active" if active else ("expired" if until is None else "pending")
        rows.append(
            {
                "id": s.id,
                "state": state,
                "match": s.describe_match(),
                "schedule": s.describe_schedule(),
                "created_by": s.created_by,
                "reason": s.reason,
            }
        )
    return page(call, "silences.html", title="Silences", silences=rows)


@route(
    "/silences",
    "POST",
    role="operator",
    surface="console",
    summary="add a silence",
    produces="text/html",
)
def silence(call: Call) -> flask.Response:
    minutes = _form(call, "minutes")
    if minutes and not minutes.isdigit():
        raise bad("minutes", "must be a whole number of minutes")
    body = {
        "host": _form(call, "host") or None,
        "team": _form(call, "team") or None,
        "rule": _form(call, "rule") or None,
        "cron": _form(call, "cron") or None,
        "timezone": _form(call, "timezone") or "UTC",
        "duration_seconds": int(minutes) * 60 if minutes else None,
    }
    new = build_silence(body, call.who, _reason(call))
    add_silence(call.ctx.redis, call.conn, CorrelationKeys(call.ctx.settings.namespace), new)
    return back("/silences", done="silenced")


@route(
    "/silences/<silence_id>/delete",
    "POST",
    role="operator",
    surface="console",
    summary="end a silence",
    produces="text/html",
)
def unsilence(call: Call) -> flask.Response:
    reason = _reason(call)
    try:
        remove_silences(
            call.ctx.redis,
            call.conn,
            CorrelationKeys(call.ctx.settings.namespace),
            [call.args["silence_id"]],
            changed_by=call.who,
            reason=reason,
        )
    except UnknownSilences as exc:
        raise ApiError(404, str(exc)) from None
    return back("/silences", done="unsilenced")


# ---------------------------------------------------------------- audit


@route(
    "/audit",
    "GET",
    role="viewer",
    surface="console",
    summary="the audit viewer: events and configuration changes",
    produces="text/html",
)
def audit(call: Call) -> flask.Response:
    hours = call.query_int("hours", 24, 1, 24 * 366, clamp=True)
    rule = call.query("rule_id")
    if rule is not None and not (rule.isdigit() and int(rule) < 2**31):
        raise bad("rule_id", "must be a rule id")
    now = datetime.now(UTC)
    f: dict[str, Any] = {
        "hostname": call.query("hostname"),
        "rule_id": rule,
        "hours": hours,
        "changed_by": call.query("changed_by"),
        "table_name": call.query("table_name"),
    }
    events, _ = events_after(
        call.conn,
        event_filters(
            hostname=f["hostname"],
            rule_id=int(rule) if rule else None,
            start=now - timedelta(hours=hours),
        ),
        cursor=None,
        limit=200,
    )
    for e in events:
        doc = e["event"] if isinstance(e["event"], dict) else {}
        e["message"] = str(doc.get("message", ""))[:300]
    changes, _ = config_after(
        call.conn,
        config_filters(changed_by=f["changed_by"], table_name=f["table_name"]),
        cursor=None,
        limit=100,
    )
    for c in changes:
        c["summary"] = (
            changed_fields(c["old_values"], c["new_values"])
            if c["operation"] == "UPDATE"
            else describe_rule(c["new_values"] or c["old_values"] or {})
            if c["table_name"] == "alert_rules"
            else ""
        )
    return page(call, "audit.html", title="Audit", events=events, changes=changes, f=f)


# ---------------------------------------------------------------- status


@route(
    "/status",
    "GET",
    role="viewer",
    surface="console",
    summary="backlog, dead letters with replay, breakers",
    produces="text/html",
)
def status(call: Call) -> flask.Response:
    doc = admin_status.collect(call.ctx)
    entries: dict[str, list[dict[str, Any]]] = {}
    for stage in dlq.STAGES:
        rows: Any = call.ctx.redis.xrevrange(call.ctx.keys.dlq(stage), "+", "-", count=50)
        entries[stage] = [
            dlq.DeadLetter(stage, dlq.text_of(eid), fields).as_json(full=False)
            for eid, fields in rows
        ]
    return page(call, "status.html", title="Status", doc=doc, dlq=entries)


@route(
    "/status/replay",
    "POST",
    role="operator",
    surface="console",
    summary="replay a stage's dead letters (reason required)",
    produces="text/html",
)
def replay(call: Call) -> flask.Response:
    stage = _form(call, "stage")
    if stage not in dlq.STAGES:
        raise bad("stage", f"must be one of {', '.join(dlq.STAGES)}")
    reason = _reason(call)
    result = dlq.replay(call.ctx.redis, call.ctx.keys, dlq.Selection(stages=(stage,)))
    conn = call.conn
    conn.run("BEGIN")
    try:
        write_config_audit(
            conn,
            [
                ConfigChange(
                    "UPDATE",
                    "dlq",
                    stage,
                    {"selection": {"all": True}},
                    {"replayed": result.replayed, "skipped": result.skipped},
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
    return back("/status", done="replayed", id=result.replayed)
