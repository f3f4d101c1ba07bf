-- Legal holds: while a hold is active, retention keeps the tenant's (or one subject's) audit
-- events, and erasure of a held subject is refused. The subject appears only as its pseudonym.

CREATE TABLE legal_holds (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    subject_ref  bytea,
    reason       text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    released_at  timestamptz,
    released_by  text
);
CREATE INDEX legal_holds_active ON legal_holds (tenant_id, subject_ref) WHERE released_at IS NULL;
