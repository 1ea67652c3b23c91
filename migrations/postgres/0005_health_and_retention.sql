-- nudged schema, version 5.
-- /readyz proves that the store takes a write by upserting the one row of
-- this table (id 1) with the time of the probe.
CREATE TABLE readiness_probe (
    id         INTEGER PRIMARY KEY,
    written_at BIGINT NOT NULL
);

-- Pruning deletes the oldest rows in small batches, and /readyz reads the
-- oldest undelivered message: each finds its rows in index order instead
-- of scanning the table.
CREATE INDEX seen_events_by_time ON seen_events (seen_at);
CREATE INDEX outbox_by_age ON outbox (status, created_at);
CREATE INDEX assessments_by_time ON assessments (assessed_at);
