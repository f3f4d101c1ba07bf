-- The sealer keeps its place inside a transaction as well as between transactions.
--
-- A batch seals the unsealed events above the horizon, and until this migration the horizon only
-- moved once a batch had taken every one of them. While a backlog drained (a bulk load, a sealer
-- that was down, a restore) every batch read the backlog's sealed events again to skip them:
-- sealing a million events in batches of 5 000 read about a hundred million rows.
--
-- Batches now take events in (xact, seq) order and the head keeps the last one taken as a cursor
-- (horizon, horizon_seq): every event at or before it, ordered by (xact, seq), is sealed. A full
-- batch moves the cursor to its last event when that event's transaction had ended before the
-- batch's snapshot (so all its events were visible), and otherwise to the snapshot's xmin; a batch
-- that took everything moves it to the xmin. The next batch starts after the cursor, through the
-- index on (xact, seq), and reads about as many rows as it seals.
ALTER TABLE audit_chain_head ADD COLUMN horizon_seq bigint NOT NULL DEFAULT 0;
CREATE INDEX audit_events_xact_seq ON audit_events (xact, seq);
DROP INDEX audit_events_xact;
