-- MUTT data model (docs/architecture.md, 'Data'): rules, reference data, audit trails.

CREATE TABLE alert_rules (
    id              SERIAL PRIMARY KEY,
    match_string    TEXT,
    trap_oid        TEXT,
    syslog_severity SMALLINT CHECK (syslog_severity BETWEEN 0 AND 7),
    match_type      TEXT NOT NULL DEFAULT 'contains'
                    CHECK (match_type IN ('contains', 'regex', 'oid_prefix')),
    priority        INTEGER NOT NULL DEFAULT 100,
    prod_handling   TEXT NOT NULL
                    CHECK (prod_handling IN ('Page_and_ticket', 'Page_only', 'Ticket_only', 'Ignore')),
    dev_handling    TEXT NOT NULL
                    CHECK (dev_handling IN ('Page_and_ticket', 'Page_only', 'Ticket_only', 'Ignore')),
    team_assignment TEXT NOT NULL CHECK (team_assignment <> ''),
    is_active       BOOLEAN NOT NULL DEFAULT TRUE,
    description     TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT chk_match_criteria CHECK (match_string IS NOT NULL OR trap_oid IS NOT NULL)
);
CREATE INDEX alert_rules_active_priority ON alert_rules (priority, id) WHERE is_active;

CREATE TABLE development_hosts (
    hostname    TEXT PRIMARY KEY CHECK (hostname = lower(hostname) AND hostname <> ''),
    description TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE device_teams (
    hostname        TEXT PRIMARY KEY CHECK (hostname = lower(hostname) AND hostname <> ''),
    team_assignment TEXT NOT NULL CHECK (team_assignment <> ''),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per handled event, partitioned by month on the event's own time.
-- The primary key includes the partition key, as PostgreSQL requires; since
-- an event's time is fixed by its id, (event_id, event_time) is still one row
-- per event and makes redelivered writes idempotent (ON CONFLICT DO NOTHING).
CREATE TABLE event_audit_log (
    event_id          UUID NOT NULL,
    event_time        TIMESTAMPTZ NOT NULL,
    received_at       TIMESTAMPTZ NOT NULL,
    hostname          TEXT NOT NULL,
    matched_rule_id   INTEGER,
    handling_decision TEXT NOT NULL,
    environment       TEXT NOT NULL CHECK (environment IN ('prod', 'dev')),
    team              TEXT,
    severity          SMALLINT,
    forwarded         BOOLEAN NOT NULL DEFAULT FALSE,
    alert_id          UUID,
    event             JSONB NOT NULL,
    written_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, event_time)
) PARTITION BY RANGE (event_time);

-- No event is ever refused for its date: rows outside every month land here
-- and the janitor moves them once their month's partition exists.
CREATE TABLE event_audit_log_default PARTITION OF event_audit_log DEFAULT;

CREATE INDEX event_audit_log_time ON event_audit_log (event_time);
CREATE INDEX event_audit_log_host_time ON event_audit_log (hostname, event_time);
CREATE INDEX event_audit_log_rule ON event_audit_log (matched_rule_id);

CREATE TABLE config_audit_log (
    id             BIGSERIAL PRIMARY KEY,
    changed_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    changed_by     TEXT NOT NULL,
    operation      TEXT NOT NULL CHECK (operation IN ('CREATE', 'UPDATE', 'DELETE')),
    table_name     TEXT NOT NULL,
    record_id      TEXT NOT NULL,
    old_values     JSONB,
    new_values     JSONB,
    reason         TEXT,
    correlation_id TEXT
);
CREATE INDEX config_audit_log_record ON config_audit_log (table_name, record_id);
CREATE INDEX config_audit_log_changed_at ON config_audit_log (changed_at DESC);
CREATE INDEX config_audit_log_changed_by ON config_audit_log (changed_by);

-- Create the monthly partition holding `month` if it is missing; returns its
-- name. Rows already in DEFAULT for that month must be moved first (janitor).
CREATE FUNCTION mutt_ensure_audit_partition(month DATE) RETURNS TEXT
LANGUAGE plpgsql AS $$
DECLARE
    start_ts DATE := date_trunc('month', month)::date;
    end_ts   DATE := (date_trunc('month', month) + INTERVAL '1 month')::date;
    part     TEXT := format('event_audit_log_%s', to_char(start_ts, 'YYYY_MM'));
BEGIN
    IF to_regclass(format('%I.%I', current_schema(), part)) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE %I.%I PARTITION OF %I.event_audit_log FOR VALUES FROM (%L) TO (%L)',
            current_schema(), part, current_schema(), start_ts, end_ts);
    END IF;
    RETURN part;
END;
$$;

SELECT mutt_ensure_audit_partition((date_trunc('month', now()) + make_interval(months => m))::date)
FROM generate_series(-1, 3) AS m;
