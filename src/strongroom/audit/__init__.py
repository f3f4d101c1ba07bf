"""The audit trail: event model, writers and the SQL that stores events."""
