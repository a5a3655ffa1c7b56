"""Fault 7: security. Credentials are enforced, SQL takes values as parameters only.

Proven elsewhere, referenced here (not duplicated):

- secrets never appear in logs, streams, events or error answers:
  ``tests/shared/secrets/test_no_secret_leaks.py``;
- containers run as a numeric non-root user with nothing run after it:
  ``tests/deploy/test_containers.py``; and the image's processes really run as
  a random UID in group 0 on a read-only root: ``tests/deploy/test_image_runtime.py``;
- TLS to PostgreSQL and Redis against real TLS servers:
  ``tests/shared/test_tls_servers.py``; every HTTP route's auth decision:
  ``tests/security/test_routes.py``.

``test_the_referenced_proofs_exist`` fails if either is renamed or removed,
so docs/reliability.md never points at a proof that is gone.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import redis
import requests

from shared.broker.keys import Keys
from shared.config import Settings
from shared.envelope import FIELD, decode
from tests.support.resilience import Pipeline, report

ROOT = Path(__file__).resolve().parents[2]
KEYS = ("old-KEY-1a2b3c", "new-KEY-4d5e6f")  # a rotation: both are valid


# -- authentication -------------------------------------------------------------------

LEGACY = orjson.dumps({"hostname": "r1", "message": "Gi0/1 changed state to down"})
ALERTMANAGER = orjson.dumps(
    {
        "version": "4",
        "status": "firing",
        "receiver": "mutt",
        "groupKey": "{}:{}",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "LinkDown", "instance": "r1"},
                "annotations": {"summary": "Gi0/1 changed state to down"},
                "startsAt": "2025-01-01T00:00:00Z",
                "fingerprint": "0123456789abcdef",
            }
        ],
    }
)


def ce_headers() -> dict[str, str]:
    return {
        "ce-specversion": "1.0",
        "ce-id": "auth-test",
        "ce-source": "/auth",
        "ce-type": "io.mutt.syslog.v1",
        "content-type": "application/json",
    }


ROUTES = {
    "/": (LEGACY, ce_headers()),
    "/api/v2/ingest": (LEGACY, {"content-type": "application/json"}),
    "/alertmanager": (ALERTMANAGER, {"content-type": "application/json"}),
}

REFUSED: dict[str, dict[str, str]] = {
    "no credential": {},
    "key in the query string": {},  # ?api_key=... is not a way to authenticate
    "wrong X-API-KEY": {"X-API-KEY": "not-the-key"},
    "empty X-API-KEY": {"X-API-KEY": ""},
    "a valid key's prefix": {"X-API-KEY": KEYS[1][:-1]},
    "a valid key plus a suffix": {"X-API-KEY": KEYS[1] + "x"},
    "both keys in one header": {"X-API-KEY": ",".join(KEYS)},
    "wrong bearer token": {"Authorization": "Bearer not-the-key"},
    "key under Basic": {"Authorization": f"Basic {KEYS[1]}"},
    "key in another header": {"Api-Key": KEYS[1]},
}
ACCEPTED: dict[str, dict[str, str]] = {
    "X-API-KEY (new)": {"X-API-KEY": KEYS[1]},
    "X-API-KEY (old, still valid)": {"X-API-KEY": KEYS[0]},
    "Bearer": {"Authorization": f"Bearer {KEYS[1]}"},
}


@pytest.mark.slow
def test_ingest_refuses_missing_and_wrong_credentials_with_401(
    settings: Settings, r: redis.Redis, keys: Keys, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "ingest_api_keys").write_text("\n".join(KEYS) + "\n")
    # 30 refusals from one address: above the default throttle (its own test is
    # tests/ingest/test_auth.py), so the limit is raised to see every 401.
    pipeline = Pipeline(
        settings,
        tmp_path / "logs",
        MUTT_SECRETS_DIR=str(secrets),
        MUTT_INGEST_AUTH_FAILURE_LIMIT="1000",
    )
    answers: dict[str, int] = {}
    try:
        url = pipeline.ingest()
        with requests.Session() as session:
            for path, (body, headers) in ROUTES.items():
                for name, creds in REFUSED.items():
                    resp = session.post(
                        url + path + ("?api_key=" + KEYS[1] if "query" in name else ""),
                        data=body,
                        headers={**headers, **creds},
                        timeout=10,
                    )
                    answers[f"{path} {name}"] = resp.status_code
                    assert resp.status_code == 401, (path, name, resp.text)
                    assert not any(k in resp.text for k in KEYS), (path, name)
                    assert not any(k in str(resp.headers) for k in KEYS), (path, name)
                for name, creds in ACCEPTED.items():
                    hdrs = {**headers, **creds}
                    if "ce-id" in hdrs:
                        hdrs["ce-id"] = f"auth-{name}"
                    resp = session.post(url + path, data=body, headers=hdrs, timeout=10)
                    answers[f"{path} {name}"] = resp.status_code
                    assert resp.status_code == 202, (path, name, resp.text)
            ready = session.get(url + "/readyz", timeout=10).json()
        stored = r.xrange(keys.events)
        sources = [decode(f[FIELD]).data["source"] for _, f in stored]
        report(
            "ingest authentication",
            refused=sum(1 for v in answers.values() if v == 401),
            accepted=sum(1 for v in answers.values() if v == 202),
            stored_entries=len(stored),
        )
        assert "on" in ready["checks"]["auth"] and "off" not in ready["checks"]["auth"]
        # Only the authenticated requests reached the stream (legacy requests without an
        # Idempotency-Key are identified by their body, so those dedup to one per route).
        assert len(stored) == len(ACCEPTED) + 1 + 1, sources
    finally:
        pipeline.stop_all()


# -- SQL is built from constants, values go as parameters -------------------------------

SQL_WORDS = re.compile(
    r"\b(SELECT|INSERT|UPDATE|DELETE|DROP|ALTER|CREATE|TRUNCATE|GRANT|REVOKE|COPY|EXECUTE"
    r"|SET\s+search_path|SET\s+ROLE)\b"
)
SCANNED = ("functions", "shared", "mutt")


@dataclass(frozen=True)
class Allowed:
    count: int  # SQL strings built at this location
    placeholders: frozenset[str]  # the exact expressions interpolated into them
    reason: str


# Identifier-only interpolation, by exact location (file, function). Anything else
# that builds SQL dynamically fails the test: values must be bound (:name parameters).
ALLOWED: dict[tuple[str, str], Allowed] = {
    # Partition names, each first passed through PostgreSQL's quote_ident(:n).
    ("functions/janitor/retention.py", "audit"): Allowed(
        3,
        frozenset({"ident", "archived"}),
        "partition names quoted by SELECT quote_ident(:n)",
    ),
    # The schema is Settings.database_schema, validated by ^[a-z_][a-z0-9_]{0,62}$
    # (no quote can occur), and double-quoted.
    ("shared/db/connection.py", "connect_pg"): Allowed(
        2, frozenset({"schema"}), "schema name validated by a regex, double-quoted"
    ),
    # A fixed column list and WHERE clauses chosen from fixed text; every value is a
    # bound parameter (:since, :host, ...).
    ("functions/audit/query.py", "query_events"): Allowed(
        1,
        frozenset({"', '.join(COLUMNS)", "' AND '.join(where)"}),
        "fixed columns and clauses",
    ),
    ("mutt/commands/audit.py", "query_config"): Allowed(
        1,
        frozenset({"', '.join(CONFIG_COLUMNS)", "' AND '.join(where)"}),
        "fixed columns and clauses",
    ),
    # The operator API's audit pages: Filters.add takes literal clauses only, every
    # value is bound (:by, :host, ...); the columns are the owners' constants.
    ("functions/admin/queries.py", "config_page"): Allowed(
        2, frozenset({"f.sql", "', '.join(CONFIG_COLUMNS)"}), "fixed columns and clauses"
    ),
    ("functions/admin/queries.py", "config_after"): Allowed(
        1, frozenset({"f.sql", "', '.join(CONFIG_COLUMNS)"}), "fixed columns and clauses"
    ),
    ("functions/admin/queries.py", "events_page"): Allowed(
        2, frozenset({"f.sql", "', '.join(EVENT_COLUMNS)"}), "fixed columns and clauses"
    ),
    ("functions/admin/queries.py", "events_after"): Allowed(
        1, frozenset({"f.sql", "', '.join(EVENT_COLUMNS)"}), "fixed columns and clauses"
    ),
    # The rule catalog's one column list (VALUE_KEYS, a constant) in its SELECT.
    ("functions/alert/catalog/tables.py", "<module>"): Allowed(
        4,
        frozenset({"', '.join(VALUE_KEYS)", "_RULES_COLUMNS_SQL", "_RULES"}),
        "fixed column names; the rules' digest and document over the same fixed subquery",
    ),
    # Column names from the constant RULE_COLUMNS; the rows travel as one :rows jsonb.
    # The rule catalog (its one owner): column names from the constant VALUE_KEYS or a
    # literal tuple; the rows travel as one :rows jsonb, ids as :id / :rid.
    ("functions/alert/catalog/tables.py", "read_rule"): Allowed(
        1, frozenset({"', '.join(VALUE_KEYS)"}), "fixed column names"
    ),
    ("functions/alert/catalog/tables.py", "rule_history"): Allowed(
        1, frozenset({"', '.join(cols)"}), "a literal tuple of column names"
    ),
    ("functions/alert/catalog/tables.py", "update_rules"): Allowed(
        1, frozenset({"sets"}), "fixed column names"
    ),
    ("functions/alert/catalog/tables.py", "insert_rules"): Allowed(
        1, frozenset({"columns"}), "fixed column names"
    ),
}


@dataclass(frozen=True)
class Built:
    path: str
    function: str
    line: int
    kind: str
    placeholders: frozenset[str]
    text: str


def _module_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level names bound to string constants (static text, not input)."""
    found: dict[str, str] = {}
    for node in tree.body:
        target, value = None, None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        if isinstance(target, ast.Name) and value is not None:
            text = _static(value, found)
            if text is not None:
                found[target.id] = text
    return found


def _static(node: ast.expr, consts: dict[str, str]) -> str | None:
    """The text of a string expression made only of literals and constants, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return consts.get(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _static(node.left, consts), _static(node.right, consts)
        return left + right if left is not None and right is not None else None
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue) and value.format_spec is None:
                text = _static(value.value, consts)
                if text is None:
                    return None
                parts.append(text)
            else:
                return None
        return "".join(parts)
    return None


class _Finder(ast.NodeVisitor):
    """Strings built with f-strings, %, str.format or + that contain SQL keywords."""

    def __init__(self, path: str, consts: dict[str, str]) -> None:
        self.path = path
        self.consts = consts
        self.scope: list[str] = []
        self.found: list[Built] = []

    def _enter(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _enter

    def _literal_text(self, node: ast.expr) -> str:
        text = _static(node, self.consts)
        if text is not None:
            return text
        if isinstance(node, ast.BinOp):
            return f"{self._literal_text(node.left)} {self._literal_text(node.right)}"
        if isinstance(node, ast.JoinedStr):
            return "".join(
                str(v.value) if isinstance(v, ast.Constant) else " {} " for v in node.values
            )
        return " "

    def _holes(self, node: ast.expr) -> frozenset[str]:
        holes: set[str] = set()
        for sub in ast.walk(node):
            if isinstance(sub, ast.FormattedValue) and _static(sub.value, self.consts) is None:
                holes.add(ast.unparse(sub.value))
            elif isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.Add):
                for side in (sub.left, sub.right):
                    if _static(side, self.consts) is None and not isinstance(
                        side, ast.BinOp | ast.JoinedStr
                    ):
                        holes.add(ast.unparse(side))
        return frozenset(holes)

    def _record(self, node: ast.expr, kind: str, text: str, holes: frozenset[str]) -> None:
        if SQL_WORDS.search(text):
            where = ".".join(self.scope) or "<module>"
            self.found.append(Built(self.path, where, node.lineno, kind, holes, text[:120]))

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        if _static(node, self.consts) is None:
            self._record(node, "f-string", self._literal_text(node), self._holes(node))

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.Mod):
            template = _static(node.left, self.consts)
            if template is not None:
                holes = frozenset({ast.unparse(node.right)})
                self._record(node, "% formatting", template, holes)
        elif isinstance(node.op, ast.Add) and _static(node, self.consts) is None:
            self._record(node, "concatenation", self._literal_text(node), self._holes(node))
            return  # one report for the whole chain
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "format":
            template = _static(func.value, self.consts)
            if template is not None:
                holes = frozenset(ast.unparse(a) for a in [*node.args, *node.keywords])
                self._record(node, "str.format", template, holes)
        self.generic_visit(node)


def dynamic_sql() -> Iterator[Built]:
    for base in SCANNED:
        for path in sorted((ROOT / base).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            finder = _Finder(str(path.relative_to(ROOT)), _module_constants(tree))
            finder.visit(tree)
            yield from finder.found


def test_sql_is_built_from_constants_and_values_are_bound_parameters() -> None:
    built = list(dynamic_sql())
    by_place: dict[tuple[str, str], list[Built]] = {}
    for b in built:
        by_place.setdefault((b.path, b.function), []).append(b)
    unexpected = [
        f"{b.path}:{b.line} in {b.function}: {b.kind} with {sorted(b.placeholders)}: {b.text!r}"
        for place, items in by_place.items()
        if place not in ALLOWED
        for b in items
    ]
    assert not unexpected, "SQL built from non-constant parts (bind values as :params):\n" + (
        "\n".join(unexpected)
    )
    for place, allowed in ALLOWED.items():
        items = by_place.get(place, [])
        assert len(items) == allowed.count, (place, items)  # the allow-list stays exact
        holes = frozenset().union(*(b.placeholders for b in items))
        assert holes == allowed.placeholders, (place, holes, allowed.reason)


def test_the_sql_scanner_sees_every_way_of_building_a_string() -> None:
    sample = """
TABLE = "alert_rules"
def bad(conn, name, rows):
    conn.run(f"SELECT * FROM alert_rules WHERE hostname = '{name}'")
    conn.run("DELETE FROM t WHERE id = %s" % name)
    conn.run("UPDATE t SET a = {}".format(name))
    conn.run("INSERT INTO t VALUES ('" + name + "')")
def good(conn, name):
    conn.run("SELECT * FROM alert_rules WHERE hostname = :h", h=name)
    conn.run(f"SELECT * FROM {TABLE}")
    log(f"deleted {name}")
"""
    tree = ast.parse(sample)
    finder = _Finder("sample.py", _module_constants(tree))
    finder.visit(tree)
    assert [(b.function, b.kind) for b in finder.found] == [
        ("bad", "f-string"),
        ("bad", "% formatting"),
        ("bad", "str.format"),
        ("bad", "concatenation"),
    ]
    assert all(b.placeholders == {"name"} for b in finder.found)


# -- proofs kept elsewhere --------------------------------------------------------------


def test_the_referenced_proofs_exist() -> None:
    from tests.deploy import test_containers, test_image_runtime
    from tests.security import test_routes
    from tests.shared import test_tls_servers
    from tests.shared.secrets import test_no_secret_leaks

    assert callable(test_no_secret_leaks.test_secrets_never_leak)
    assert callable(test_containers.test_runtime_runs_as_non_root_with_group_zero_writable_paths)
    assert callable(
        test_image_runtime.test_the_pipeline_runs_as_a_random_uid_in_group_zero_on_a_read_only_root
    )
    assert callable(test_tls_servers.test_verify_full_checks_the_ca_and_the_name)
    assert callable(test_routes.test_every_route_has_an_auth_decision)
