-- nudged schema, version 8.
-- The workspace's send rate, shared by every process delivering from this
-- database (ARCHITECTURE.md, "Outbox"): `next_free` is the first send slot
-- not yet handed out, in microseconds since the epoch. A worker takes a few
-- slots at a time by moving it on in one statement; a 429 that pauses the
-- workspace moves it to the end of the pause.
CREATE TABLE delivery_rate (
    scope     TEXT PRIMARY KEY,
    next_free BIGINT NOT NULL
);
