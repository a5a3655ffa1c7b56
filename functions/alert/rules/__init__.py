"""The alert function's rule engine: pure, in-memory, no I/O.

Load rules with ``validate_rule`` / ``RuleSet.from_rows``, compile once with
``RuleSet.compile``, then ``match`` each event. ``reference_match`` is the
plain loop the engine is tested and benchmarked against. Semantics and what
changed from v2.5: ``docs/rules.md``.
"""

from .engine import RuleSet, RuleSetStats
from .environment import DevHosts, Environment
from .explain import Explanation
from .fingerprint import FingerprintMode, fingerprint, mask_message
from .model import MatchType, Rule, RuleError, validate_rule
from .oid import normalize_oid
from .reference import ReferenceMatcher, reference_match
from .semantics import EventLike, Verdict

__all__ = [
    "DevHosts",
    "Environment",
    "EventLike",
    "Explanation",
    "FingerprintMode",
    "MatchType",
    "ReferenceMatcher",
    "Rule",
    "RuleError",
    "RuleSet",
    "RuleSetStats",
    "Verdict",
    "fingerprint",
    "mask_message",
    "normalize_oid",
    "reference_match",
    "validate_rule",
]
