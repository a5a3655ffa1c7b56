-- Correlation in the alert stage (docs/correlation.md): what happened to an
-- event's alert after the rules decided. NULL = delivered as raised; otherwise
-- e.g. 'silenced:s-1a2b3c4d', 'deduplicated', 'flapping:held', 'storm:host',
-- 'resolved', 'clear:nothing-open'. Added to the partitioned parent, so every
-- partition (and the DEFAULT one) gets it; old rows stay NULL.
ALTER TABLE event_audit_log ADD COLUMN IF NOT EXISTS correlation TEXT;
