-- The hash chain moves out of audit_events into audit_chain, a table that is only ever appended to.
--
-- Sealing used to UPDATE each event to set its chain columns. chain_position is indexed, so every
-- such update wrote a new version of the row and a new entry in every index of audit_events,
-- fired the guard trigger, and left a dead row for autovacuum: each event was written twice, and
-- PostgreSQL's cost per request grew as the table did. Now an event is inserted once and never
-- touched again, and sealing inserts one narrow row (position, event seq, prev_hash, hash).
--
-- What is left to seal is found without a flag on the event. Each event records the transaction
-- that wrote it (xact, a 64-bit transaction id). The chain head records a horizon: a transaction
-- id below which every committed event is sealed. A sealing batch reads the xmin of its snapshot
-- (every transaction below it had ended when the snapshot was taken, so its events are visible),
-- seals every unsealed event visible at or above the old horizon, and when it took them all moves
-- the horizon up to that xmin. The sealer's work queue is therefore "xact >= horizon and not in
-- audit_chain": the events of the last round or so, found through the index on xact.
--
-- Events written before this migration keep xact NULL: they are all sealed here (the unsealed ones
-- get this migration's transaction id, above the horizon of 0, so the sealer picks them up).

CREATE TABLE audit_chain (
    position   bigint PRIMARY KEY CHECK (position > 0),
    event_seq  bigint NOT NULL UNIQUE,
    prev_hash  bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash       bytea NOT NULL CHECK (length(hash) = 32)
);

INSERT INTO audit_chain (position, event_seq, prev_hash, hash)
SELECT chain_position, seq, prev_hash, hash FROM audit_events WHERE chain_position IS NOT NULL;

DROP TRIGGER audit_events_guard ON audit_events;

ALTER TABLE audit_events ADD COLUMN xact xid8;
ALTER TABLE audit_events ALTER COLUMN xact SET DEFAULT pg_current_xact_id();
UPDATE audit_events SET xact = pg_current_xact_id() WHERE chain_position IS NULL;
CREATE INDEX audit_events_xact ON audit_events (xact);

DROP INDEX audit_events_unsealed;
ALTER TABLE audit_events
    DROP CONSTRAINT audit_events_sealed_together,
    DROP COLUMN chain_position,
    DROP COLUMN prev_hash,
    DROP COLUMN hash;

ALTER TABLE audit_chain_head ADD COLUMN horizon xid8 NOT NULL DEFAULT '0';

-- Events are written once and never changed. An event that is not sealed cannot be deleted,
-- because nothing would show that it ever existed; deleting sealed events (retention) is allowed:
-- the chain shows the gap unless the anchor was moved past it.
CREATE OR REPLACE FUNCTION audit_events_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF NOT EXISTS (SELECT 1 FROM audit_chain WHERE event_seq = OLD.seq) THEN
            RAISE EXCEPTION 'audit event % is not sealed yet and cannot be deleted', OLD.id
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit event % is immutable', OLD.id
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;

CREATE TRIGGER audit_events_guard
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_guard();

-- A link, once written, is never changed. Retention deletes the links it cuts with their events.
CREATE FUNCTION audit_chain_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit chain at position % cannot be changed', OLD.position
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;

CREATE TRIGGER audit_chain_guard
    BEFORE UPDATE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION audit_chain_guard();
