-- Tamper evidence for the audit trail (see strongroom.audit.chain).
--
-- The sealer links committed events into a hash chain in seal order: chain_position counts from 1
-- without gaps, hash = SHA-256(prev_hash || canonical event). The three chain columns are NULL
-- until the event is sealed and are written exactly once. audit_chain_head is the end of the
-- chain (the sealer's lock and its record of how far it went); audit_anchor is where the chain
-- starts after retention cut its beginning; audit_checkpoints are signed (position, hash) pairs
-- meant to be exported and kept elsewhere.

ALTER TABLE audit_events
    ADD COLUMN chain_position  bigint UNIQUE,
    ADD COLUMN prev_hash       bytea,
    ADD COLUMN hash            bytea,
    ADD CONSTRAINT audit_events_sealed_together CHECK (
        (chain_position IS NULL AND prev_hash IS NULL AND hash IS NULL)
        OR (chain_position > 0 AND length(prev_hash) = 32 AND length(hash) = 32)
    );

-- The sealer's work queue: only unsealed rows, in insertion order.
CREATE INDEX audit_events_unsealed ON audit_events (seq) WHERE chain_position IS NULL;

CREATE TABLE audit_chain_head (
    id         integer PRIMARY KEY CHECK (id = 1),
    position   bigint NOT NULL CHECK (position >= 0),
    hash       bytea NOT NULL CHECK (length(hash) = 32),
    sealed_at  timestamptz
);
INSERT INTO audit_chain_head (id, position, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

-- Absent until retention first cuts the chain. Signed, so the start of the chain cannot be
-- moved forward (hiding deleted events) without the signing key.
CREATE TABLE audit_anchor (
    id         integer PRIMARY KEY CHECK (id = 1),
    position   bigint NOT NULL CHECK (position > 0),
    hash       bytea NOT NULL CHECK (length(hash) = 32),
    cut_at     timestamptz NOT NULL,
    key_id     text NOT NULL,
    signature  bytea NOT NULL
);

CREATE TABLE audit_checkpoints (
    position   bigint PRIMARY KEY CHECK (position > 0),
    hash       bytea NOT NULL CHECK (length(hash) = 32),
    signed_at  timestamptz NOT NULL,
    key_id     text NOT NULL,
    signature  bytea NOT NULL
);

-- Public halves of the keys that signed checkpoints, published with exports. Verification trusts
-- the keys derived from the configured master keys (or given by the operator), never this table.
CREATE TABLE audit_signing_keys (
    key_id         text PRIMARY KEY,
    algorithm      text NOT NULL,
    public_key     bytea NOT NULL,
    first_used_at  timestamptz NOT NULL DEFAULT now()
);

-- Events are written once. The only update allowed is sealing (chain columns from NULL to set,
-- nothing else changed); an unsealed event cannot be deleted, because nothing would show that it
-- ever existed. Deleting sealed events (retention) is allowed: the chain shows the gap unless the
-- anchor was moved past it.
CREATE FUNCTION audit_events_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.chain_position IS NULL THEN
            RAISE EXCEPTION 'audit event % is not sealed yet and cannot be deleted', OLD.id
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.chain_position IS NOT NULL
       OR NEW.chain_position IS NULL
       OR (NEW.id, NEW.seq, NEW.occurred_at, NEW.tenant_id, NEW.actor, NEW.action, NEW.resource,
           NEW.subject_ref, NEW.fields, NEW.purpose, NEW.outcome, NEW.request_id, NEW.trace_id,
           NEW.client)
          IS DISTINCT FROM
          (OLD.id, OLD.seq, OLD.occurred_at, OLD.tenant_id, OLD.actor, OLD.action, OLD.resource,
           OLD.subject_ref, OLD.fields, OLD.purpose, OLD.outcome, OLD.request_id, OLD.trace_id,
           OLD.client)
    THEN
        RAISE EXCEPTION 'audit event % is immutable', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER audit_events_guard
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_guard();
