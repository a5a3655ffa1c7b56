"""Every HTTP route MUTT serves, found by probing the real apps, has an auth decision.

The functions dispatch inside one functions-framework view, so their routes
are not in Flask's URL map: they are found by asking. Candidate paths are
every path-like string constant in MUTT's source, the OpenAPI paths and a
few guesses; each app (the four functions, and the ops server of workers,
the relay and the sources) is asked each candidate with every method, and a
route is whatever does not answer "no such route" (404, 405, 501; Flask's
automatic empty OPTIONS answer does not count either). A route
that is not in ``DECISIONS`` fails the test, as does a decision for a route
that no longer exists; then each decision is checked against the app.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import functions_framework
import pytest
import requests
from flask.testing import FlaskClient

import functions
from functions.ingest import app as ingest_app
from functions.ingest import auth
from functions.ingest.contract import openapi
from mutt.runtime.ops_server import start_ops_server
from mutt.stages import HTTP_FUNCTIONS
from shared.config import Settings
from shared.context import Context, set_context
from tests.support import kube
from tests.support.processes import free_port

ROOT = Path(functions.__file__).resolve().parent.parent
KEY = "route-test-key-0123456789abcdef"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
NO_ROUTE = {404, 405, 501}
GUESSES = ("/admin", "/debug", "/api", "/api/v1/alertmanager", "/static/x", "/.env", "/config")

KEY_REQUIRED = "a key of ingest_api_keys"
PUBLIC = "anyone who reaches the port (reveals no secret)"
CLUSTER_LOCAL = "no key; cluster-local service only"
NOT_EXPOSED = "no key; on Knative a worker Deployment without a Service (mutt serve audit is local)"

OPS = {("GET", "/healthz"): PUBLIC, ("GET", "/readyz"): PUBLIC, ("GET", "/metrics"): PUBLIC}
INGEST_POSTS = (
    "/",
    "/ingest",
    "/api/v1/ingest",
    "/api/v2/ingest",
    "/alertmanager",
    "/api/v2/alertmanager",
)
DECISIONS: dict[str, dict[tuple[str, str], str]] = {
    "ingest": {
        **OPS,
        ("GET", "/openapi.json"): PUBLIC,
        **{("POST", path): KEY_REQUIRED for path in INGEST_POSTS},
    },
    **{name: {**OPS, ("POST", "/"): CLUSTER_LOCAL} for name in ("alert", "forward", "janitor")},
    "audit": {**OPS, ("POST", "/"): NOT_EXPOSED},
    "ops server": dict(OPS),
}
# What functions-framework itself registers; any other Flask rule is a new route.
FRAMEWORK_RULES = {
    "/": "run",
    "/<path:path>": "run",
    "/robots.txt": "error",
    "/favicon.ico": "error",
    "/static/<path:filename>": "static",
}


def path_constants() -> set[str]:
    """Every string constant in MUTT's source that looks like a URL path."""
    found: set[str] = set()
    pattern = re.compile(r"^/[A-Za-z0-9_.\-/]*$")
    for package in ("functions", "shared", "mutt"):
        for file in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(file.read_text())):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and pattern.match(node.value)
                    and len(node.value) < 80
                ):
                    found.add(node.value)
    return found


def candidates() -> list[str]:
    paths = path_constants() | set(openapi()["paths"]) | set(GUESSES)
    for rules in DECISIONS.values():
        paths |= {path for _, path in rules}
    # "//..." is a protocol-relative URL (the console refuses such redirects), not a path
    return sorted(p for p in paths if not p.startswith("//"))


@pytest.fixture
def apps(settings: Settings, tmp_path: Path) -> Iterator[dict[str, FlaskClient]]:
    """The four functions as Knative serves them; ingest with keys, bound off loopback."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "ingest_api_keys").write_text(KEY)
    set_context(Context(settings.model_copy(update={"secrets_dir": secrets})))
    ingest_app._ingest = None
    auth.allow_keyless(False)
    clients = {
        name: functions_framework.create_app(name, str(ROOT / source), "http").test_client()
        for name, source in HTTP_FUNCTIONS.items()
    }
    yield clients
    set_context(None)
    ingest_app._ingest = None


def flask_routes(client: FlaskClient) -> dict[str, str]:
    return {rule.rule: rule.endpoint for rule in client.application.url_map.iter_rules()}


def probe_app(client: FlaskClient) -> set[tuple[str, str]]:
    found = set()
    for path in candidates():
        for method in METHODS:
            answer = client.open(path, method=method, headers={"X-API-KEY": KEY})
            automatic = method == "OPTIONS" and not answer.data
            if answer.status_code not in NO_ROUTE and not automatic:  # Flask's own OPTIONS
                found.add((method, path))
    return found


def probe_ops_server() -> set[tuple[str, str]]:
    port = free_port()
    server = start_ops_server("127.0.0.1", port, lambda: True, lambda: {"redis": "ok"})
    found = set()
    try:
        with requests.Session() as session:
            for path in candidates():
                for method in METHODS:
                    answer = session.request(method, f"http://127.0.0.1:{port}{path}", timeout=10)
                    if answer.status_code not in NO_ROUTE:
                        found.add((method, path))
    finally:
        server.shutdown()
    return found


def admin_route_problems(client: FlaskClient) -> list[str]:
    """The operator API keeps its own table (functions/admin/routing.py ROUTES): every
    route it answers is in it, and every entry names its role (None = public, ops only)."""
    from werkzeug.exceptions import HTTPException
    from werkzeug.routing import Map, Rule

    from functions.admin.routing import ROUTES

    probed = sorted(probe_app(client))  # the first request registers the views
    table = Map([Rule(r.path, methods=[r.method], endpoint=r.endpoint) for r in ROUTES])
    urls = table.bind("admin")
    problems = [
        f"{r.endpoint}: public outside the ops surface"
        for r in ROUTES
        if r.role is None
        and r.surface not in ("ops", "console", "v1-public")
        and not r.path.startswith(("/health", "/metrics", "/api/v1/version", "/api/v1/openapi"))
    ]
    for method, path in probed:
        if method in ("HEAD", "OPTIONS"):
            continue
        try:  # the API answers a trailing slash as the route without it
            urls.match(path.rstrip("/") or "/", method=method)
        except HTTPException:
            problems.append(f"{method} {path}: answered but not in the route table")
    return problems


def test_every_route_has_an_auth_decision(apps: dict[str, FlaskClient]) -> None:
    admin = apps.pop("admin")
    assert admin_route_problems(admin) == []
    served = {name: probe_app(client) for name, client in apps.items()}
    served["ops server"] = probe_ops_server()
    for name, routes in served.items():
        undecided = routes - set(DECISIONS[name])
        assert not undecided, f"{name}: routes without an auth decision: {sorted(undecided)}"
        gone = set(DECISIONS[name]) - routes
        assert not gone, f"{name}: decisions for routes it no longer serves: {sorted(gone)}"
    for name, client in apps.items():
        assert flask_routes(client) == FRAMEWORK_RULES, f"{name}: a Flask route was added"
        static = client.application.static_folder
        assert static is None or not Path(static).exists(), f"{name} serves files from {static}"


def test_key_routes_refuse_a_request_without_the_key(apps: dict[str, FlaskClient]) -> None:
    ingest = apps["ingest"]
    for (method, path), decision in DECISIONS["ingest"].items():
        if decision != KEY_REQUIRED:
            continue
        for headers in ({}, {"X-API-KEY": "wrong"}, {"Authorization": "Bearer wrong"}):
            answer = ingest.open(path, method=method, json={}, headers=headers)
            assert answer.status_code == 401, (method, path, headers, answer.status_code)


def test_public_routes_answer_without_a_key_and_reveal_no_secret(
    apps: dict[str, FlaskClient],
) -> None:
    for name, client in apps.items():
        for (method, path), decision in DECISIONS.get(name, {}).items():
            if decision != PUBLIC:
                continue
            answer = client.open(path, method=method)
            assert answer.status_code in (200, 503), (name, path, answer.status_code)
            assert KEY.encode() not in answer.data


def test_keyless_routes_belong_to_cluster_local_services() -> None:
    for directory in kube.KUSTOMIZATIONS.values():
        docs = kube.render(directory)
        for name, rules in DECISIONS.items():
            if CLUSTER_LOCAL not in rules.values():
                continue
            svc = kube.one(docs, "Service", name)
            labels = svc["metadata"].get("labels", {})
            assert labels.get("networking.knative.dev/visibility") == "cluster-local", name


def test_the_security_doc_lists_every_decision() -> None:
    text = (ROOT / "docs" / "security.md").read_text()
    table = text[text.index("## Every route and what it requires") :]
    for rules in DECISIONS.values():
        for _, path in rules:
            assert f"`{path}`" in table or f"{path}`" in table or f" {path}" in table, path
