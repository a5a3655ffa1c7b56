"""Correlation in the alert stage: pairing, flapping, dedup window, silences, storm control.

One idea per module (``pairing``, ``flapping``, ``dedup_window``,
``silences``, ``storm``), each with the Lua of its state beside it; the
``correlator`` runs them over a batch in one Redis round trip. Operator
guide: ``docs/correlation.md``.
"""

from functions.alert.correlation.correlator import Batch, Correlator, Knobs, Result
from functions.alert.correlation.timers import TYPE_TIMER, Timer, parse_timer

__all__ = ["TYPE_TIMER", "Batch", "Correlator", "Knobs", "Result", "Timer", "parse_timer"]
