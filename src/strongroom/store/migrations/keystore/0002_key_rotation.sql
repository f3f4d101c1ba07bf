-- Master key rotation. The wrapped keys themselves say which master key version wraps them
-- (kek_version), so re-wrapping is resumable by construction: the job re-wraps whatever is not
-- at the target version yet. This table records each rotation and its outcome; retired versions
-- may no longer unwrap anything.

CREATE TABLE kek_rotations (
    id              bigserial PRIMARY KEY,
    target_version  integer NOT NULL,
    requested_by    text NOT NULL,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    rewrapped       bigint NOT NULL DEFAULT 0
);
-- At most one rotation runs at a time.
CREATE UNIQUE INDEX kek_rotations_one_running ON kek_rotations ((true)) WHERE finished_at IS NULL;

CREATE TABLE kek_retired (
    version     integer PRIMARY KEY,
    retired_at  timestamptz NOT NULL DEFAULT now(),
    retired_by  text NOT NULL
);

CREATE INDEX tenant_keys_kek_version ON tenant_keys (kek_version);
