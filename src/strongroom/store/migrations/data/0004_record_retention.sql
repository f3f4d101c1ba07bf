-- Per-collection record retention: records are deleted retention_days after their last update
-- (NULL: kept until deleted), except those of subjects under legal hold.
ALTER TABLE collections
    ADD COLUMN retention_days integer CHECK (retention_days BETWEEN 1 AND 36500);
CREATE INDEX records_collection_updated ON records (collection_id, updated_at);

-- A subject's access history (export) and its erasure mark are looked up by pseudonym.
CREATE INDEX audit_events_subject ON audit_events (tenant_id, subject_ref, seq)
    WHERE subject_ref IS NOT NULL;
