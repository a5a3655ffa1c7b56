"""Reading the alert stage's reference data from PostgreSQL.

The SQL lives with the rest of the catalog's (``functions.alert.catalog.tables``);
rows come back as plain dicts and validation is the rule engine's job
(``RuleSet.from_rows``), so a bad row written behind MUTT's back is rejected
with a reason instead of crashing the loader.
"""

from __future__ import annotations

from functions.alert.catalog.tables import (
    RULE_COLUMNS,
    load_dev_hosts,
    load_rules,
    load_rules_document,
    load_teams,
    parse_rules,
    rules_digest,
)

__all__ = [
    "RULE_COLUMNS",
    "load_dev_hosts",
    "load_rules",
    "load_rules_document",
    "load_teams",
    "parse_rules",
    "rules_digest",
]
