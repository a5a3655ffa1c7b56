"""The admin API's OpenAPI 3.1 document and its docs page, both made from the route table."""

from __future__ import annotations

import re
from html import escape
from typing import Any

import flask

from functions.admin import routing
from functions.admin.app import json_response
from functions.admin.routing import Call, Route, route

ERROR_V1 = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
    "required": ["error"],
}
ERROR_V2 = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "status": {"type": "integer"},
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string"},
            },
            "required": ["status", "code", "message"],
        }
    },
    "required": ["error"],
}
AUTH_RESPONSES = {
    401: "no valid key",
    403: "the key's role is too low, or a CSRF token is missing",
    429: "too many failed logins from this client",
}
COMMON_RESPONSES = {
    400: "a parameter or field is invalid (the answer names it)",
    503: "Redis or PostgreSQL is unavailable",
    404: "no such route",
    405: "method not allowed",
}


def _path(werkzeug_path: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", werkzeug_path)


def _operation(r: Route) -> dict[str, Any]:
    error = ERROR_V2 if r.surface == "v2" else ERROR_V1
    responses: dict[str, Any] = {}
    codes = {**COMMON_RESPONSES, **(AUTH_RESPONSES if r.role else {}), **r.responses}
    if r.body is not None:
        codes.setdefault(400, "invalid input")
        codes.setdefault(415, "not JSON")
    for code, text in sorted(codes.items()):
        if code == 204:
            responses[str(code)] = {"description": text}
        elif code < 400:
            responses[str(code)] = {"description": text, "content": {r.produces: {"schema": {}}}}
        else:
            responses[str(code)] = {
                "description": text,
                "content": {"application/json": {"schema": error}},
            }
    op: dict[str, Any] = {
        "operationId": re.sub(r"\W+", "_", f"{r.method.lower()}{_path(r.path)}").strip("_"),
        "summary": r.summary,
        "tags": [r.surface],
        "responses": responses,
    }
    if r.params:
        op["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.required or p.where == "path",
                "schema": p.schema,
                **({"description": p.description} if p.description else {}),
            }
            for p in r.params
        ]
    if r.body is not None:
        op["requestBody"] = {"required": False, "content": {"application/json": {"schema": r.body}}}
    if r.role is None:
        op["security"] = []
    else:
        op["description"] = f"Needs the {r.role} role (viewer < operator < admin)."
    return op


def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for r in routing.ROUTES:
        if r.surface == "console":
            continue
        paths.setdefault(_path(r.path), {})[r.method.lower()] = _operation(r)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "MUTT admin API",
            "version": "2.0",
            "description": "v1: the MUTT v2.5 Web UI API, compatible. v2: consistent errors,"
            " cursor pagination, ETag/If-Match, DLQ, silences, status. Send X-API-KEY.",
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-KEY"}}
        },
        "security": [{"apiKey": []}],
        "paths": paths,
    }


@route(
    "/api/v1/openapi.json",
    "GET",
    role=None,
    surface="ops",
    summary="this API's OpenAPI 3.1 document",
    responses={200: "the document"},
)
def openapi_v1(call: Call) -> flask.Response:
    return json_response(document())


@route(
    "/api/v2/openapi.json",
    "GET",
    role=None,
    surface="ops",
    summary="this API's OpenAPI 3.1 document",
    responses={200: "the document"},
)
def openapi_v2(call: Call) -> flask.Response:
    return json_response(document())


@route(
    "/api/docs",
    "GET",
    role=None,
    surface="ops",
    summary="the API's operations as a page",
    responses={200: "HTML"},
    produces="text/html",
)
def docs(call: Call) -> flask.Response:
    rows = []
    for r in routing.ROUTES:
        if r.surface == "console":
            continue
        params = ", ".join(p.name for p in r.params)
        rows.append(
            f"<tr><td>{escape(r.method)}</td><td><code>{escape(_path(r.path))}</code></td>"
            f"<td>{escape(r.role or 'none')}</td><td>{escape(r.summary)}</td>"
            f"<td>{escape(params)}</td></tr>"
        )
    html = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>MUTT admin API</title>"
        "<link rel='stylesheet' href='/static/console.css'></head><body><main>"
        "<h1>MUTT admin API</h1><p>Send the key in <code>X-API-KEY</code>. The machine-readable"
        " document: <a href='/api/v1/openapi.json'>/api/v1/openapi.json</a>.</p>"
        "<table><thead><tr><th>method</th><th>path</th><th>role</th><th>what</th>"
        "<th>parameters</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></main></body></html>"
    )
    return flask.Response(html, 200, mimetype="text/html")
