"""The rule catalog: rules, development hosts and device teams, and their one owner.

The alert function owns these tables. Everything that reads or writes them
goes through this package: the alert stage's rule cache
(``functions.alert.store``), ``mutt rules`` and the admin API.

- ``document``: validating rules files and single rules (the engine's model);
- ``tables``: the SQL, the column list, the rules version;
- ``plan``: changes as a plan, applied under a lock with one audit row each.
"""

from functions.alert.catalog.document import (
    Catalog,
    CatalogInvalid,
    catalog_document,
    check_catalog,
    check_rule_entry,
    parse_catalog,
    rule_document,
    rule_values,
)
from functions.alert.catalog.plan import (
    CatalogMoved,
    Desired,
    NotInCatalog,
    PlanError,
    UnknownRuleIds,
    apply_plan,
    build_plan,
    commit_plan,
    desired_from,
    etag,
    insert_catalog,
    render_plan,
    summarize,
)
from functions.alert.catalog.tables import (
    RULE_COLUMNS,
    TABLE_HOSTS,
    TABLE_RULES,
    TABLE_TEAMS,
    VALUE_KEYS,
    State,
    bump_version,
    read_rule,
    read_state,
    rule_count,
    rule_history,
    version_key,
)
from functions.alert.rules import RuleError

__all__ = [
    "RULE_COLUMNS",
    "TABLE_HOSTS",
    "TABLE_RULES",
    "TABLE_TEAMS",
    "VALUE_KEYS",
    "Catalog",
    "CatalogInvalid",
    "CatalogMoved",
    "Desired",
    "NotInCatalog",
    "PlanError",
    "RuleError",
    "State",
    "UnknownRuleIds",
    "apply_plan",
    "build_plan",
    "bump_version",
    "catalog_document",
    "check_catalog",
    "check_rule_entry",
    "commit_plan",
    "desired_from",
    "etag",
    "insert_catalog",
    "parse_catalog",
    "read_rule",
    "read_state",
    "render_plan",
    "rule_count",
    "rule_document",
    "rule_history",
    "rule_values",
    "summarize",
    "version_key",
]
