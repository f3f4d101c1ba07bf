-- Wrapped keys, kept apart from the data they protect: a restored data backup must not bring an
-- erased subject's key back. Every key here is wrapped by the master key (KEK) with AAD binding
-- it to its tenant and subject; nothing here is usable without the KEK.

CREATE TABLE tenant_keys (
    tenant_id    uuid PRIMARY KEY,
    kek_version  integer NOT NULL,
    wrapped      bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE subject_keys (
    tenant_id    uuid NOT NULL,
    subject_ref  bytea NOT NULL,
    dek_version  integer NOT NULL,
    kek_version  integer NOT NULL,
    wrapped      bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, subject_ref, dek_version)
);
CREATE INDEX subject_keys_kek_version ON subject_keys (kek_version);
