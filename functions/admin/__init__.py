"""admin: the operator API (``/api/v1`` as MUTT v2.5 had it, ``/api/v2``) and the web console.

It owns no table and no Redis key family of its own: every write goes
through the owner of what it changes (the rule catalog of
``functions.alert.catalog``, ``shared.dynconfig``, the silences and DLQ
replay), the same code ``mutt`` runs, audited in ``config_audit_log``.
"""
