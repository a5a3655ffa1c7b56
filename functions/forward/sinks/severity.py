"""Syslog severity (0-7) on each vendor's scale, in one table so they stay consistent.

v2.5 sent every alert as "Warning"; the alert's own severity now travels.
Every triggered alert is something operators must act on, so no map ever
emits a vendor's "clear" / "OK" / "indeterminate": those are reserved for
resolves (``MOOGSOFT_CLEAR``, ``SERVICENOW_CLEAR``, sent only for alerts whose
``action`` is ``resolve``) and unknowns. Syslog's eight levels are spread
monotonically over each vendor's problem levels:

=========  ====================  ==================  ===========  =============
syslog     Moogsoft (0-5)        ServiceNow (1-5)    PagerDuty    Alertmanager
=========  ====================  ==================  ===========  =============
0 emerg    5 critical            "1" critical        critical     critical
1 alert    5 critical            "1" critical        critical     critical
2 crit     5 critical            "1" critical        critical     critical
3 err      4 major               "2" major           error        error
4 warning  3 minor               "3" minor           warning      warning
5 notice   2 warning             "4" warning         info         info
6 info     2 warning             "4" warning         info         info
7 debug    2 warning             "4" warning         info         info
=========  ====================  ==================  ===========  =============

Moogsoft and ServiceNow have four problem levels to PagerDuty's three
above info. Syslog "warning" ("action may be needed before it becomes an
error") is X.733's *minor*; notice and below become the vendor's lowest
problem level. A side effect worth keeping: a syslog warning arrives in
Moogsoft as 3, the number v2.5 sent for every alert, so existing Moogsoft
filters on 3 keep matching.
"""

from __future__ import annotations

from shared.models import Severity

# The vendors' "clear" level: what a resolve (a paired clear event) is sent as.
MOOGSOFT_CLEAR = 0
SERVICENOW_CLEAR = "0"

_MOOGSOFT = (5, 5, 5, 4, 3, 2, 2, 2)
_SERVICENOW = ("1", "1", "1", "2", "3", "4", "4", "4")
_PAGERDUTY = ("critical", "critical", "critical", "error", "warning", "info", "info", "info")


def moogsoft(severity: Severity) -> int:
    """Moogsoft's integer scale: 5 critical, 4 major, 3 minor, 2 warning."""
    return _MOOGSOFT[severity]


def servicenow(severity: Severity) -> str:
    """ServiceNow's string scale: "1" critical, "2" major, "3" minor, "4" warning."""
    return _SERVICENOW[severity]


def pagerduty(severity: Severity) -> str:
    """PagerDuty's ``critical`` / ``error`` / ``warning`` / ``info``."""
    return _PAGERDUTY[severity]


def alertmanager(severity: Severity) -> str:
    """The ``severity`` label: the PagerDuty words, the common Prometheus convention."""
    return _PAGERDUTY[severity]
