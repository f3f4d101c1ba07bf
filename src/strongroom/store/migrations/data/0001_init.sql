-- Tenants, API keys, collections, records, blind index and the audit trail.
-- Sensitive values never appear here in plaintext: record fields marked sensitive hold
-- AES-256-GCM envelopes, subjects appear only as keyed pseudonyms (subject_ref).

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    purposes    text[] NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id           text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{16}$'),
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         text NOT NULL DEFAULT '',
    secret_hash  bytea NOT NULL,
    scopes       text[] NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE collections (
    id          bigserial PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    fields      jsonb NOT NULL,
    version     integer NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

CREATE TABLE records (
    id             uuid PRIMARY KEY,
    seq            bigserial NOT NULL UNIQUE,
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    collection_id  bigint NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    subject_ref    bytea NOT NULL,
    subject_ct     text NOT NULL,
    dek_version    integer NOT NULL,
    data           jsonb NOT NULL,
    version        integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX records_collection_seq ON records (collection_id, seq);
CREATE INDEX records_subject ON records (tenant_id, subject_ref);

CREATE TABLE record_index (
    record_id      uuid NOT NULL REFERENCES records (id) ON DELETE CASCADE,
    collection_id  bigint NOT NULL,
    field          text NOT NULL,
    digest         bytea NOT NULL,
    seq            bigint NOT NULL,
    PRIMARY KEY (record_id, field)
);
CREATE INDEX record_index_lookup ON record_index (collection_id, field, digest, seq);

CREATE TABLE audit_events (
    id           uuid PRIMARY KEY,
    seq          bigserial NOT NULL UNIQUE,
    occurred_at  timestamptz NOT NULL,
    tenant_id    uuid,
    actor        text,
    action       text NOT NULL,
    resource     text,
    subject_ref  bytea,
    fields       text[] NOT NULL DEFAULT '{}',
    purpose      text,
    outcome      text NOT NULL,
    request_id   text,
    trace_id     text,
    client       text
);
CREATE INDEX audit_events_tenant_time ON audit_events (tenant_id, occurred_at);
