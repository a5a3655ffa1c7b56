"""audit: the audit writer, a function of its own.

alert records one decision per handled event in the ``audit`` stream; this
function writes them to PostgreSQL's ``event_audit_log`` in big batches
(``COPY``). It owns that table: its columns (``writer.COLUMNS``), its encoding
(``encode``) and the queries that read it back (``query``, used by
``mutt audit events`` and the operator API). It never dead-letters for an
outage: entries wait in the stream until PostgreSQL is back.
"""
