"""Assemble the audit writer from a process context."""

from __future__ import annotations

from functions.audit.writer import AuditWriter
from shared.context import Context
from shared.db.connection import connect_pg


def make_audit_writer(ctx: Context) -> AuditWriter:
    _, url = ctx.settings.require_urls()
    schema = ctx.settings.database_schema
    return AuditWriter(lambda: connect_pg(url, schema))
