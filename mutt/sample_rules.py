"""The sample rules a fresh ``mutt run`` starts with.

On a fresh data directory the rule table is empty, so the README's first
event would be silently unhandled. ``mutt run`` on its embedded database
(and ``--demo`` anywhere) loads the sample rules into an EMPTY rule table,
once per data directory, and says so. An operator's rules are never touched,
and rules the operator deleted on purpose do not come back on a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path

import yaml

from functions.alert.catalog import insert_catalog, parse_catalog, rule_count
from shared.db.connection import connect_pg
from shared.redis_client import connect_redis

MARKER = "sample-rules-loaded"


def load_text() -> str:
    return resources.files("mutt.demo_data").joinpath("rules.yaml").read_text()


def seed(
    redis_url: str,
    database_url: str,
    schema: str,
    namespace: str,
    say: Callable[[str], None],
    once_in: Path | None = None,
) -> int:
    """Load the samples into an empty rule table; return how many were loaded.

    With ``once_in``, a marker file there makes it happen at most once.
    """
    marker = once_in / MARKER if once_in is not None else None
    if marker is not None and marker.exists():
        return 0
    conn = connect_pg(database_url, schema)
    r = connect_redis(redis_url)
    try:
        existing = rule_count(conn)
        if existing:
            say(f"using the {existing} rules already in the database")
            return 0
        catalog = parse_catalog(yaml.safe_load(load_text()), "sample rules")
        insert_catalog(conn, r, namespace, catalog)
    finally:
        conn.close()
        r.close()
    if marker is not None:
        marker.write_text("the sample rules were loaded into the empty rule table once\n")
    say(
        f"the rule table was empty: loaded {len(catalog.rules)} sample rules"
        " (mutt rules list; replace them with mutt rules apply FILE)"
    )
    return len(catalog.rules)
