-- nudged schema, version 9.
-- Each channel's pace, shared by every process delivering from this
-- database (ARCHITECTURE.md, "Outbox"): `key` is a row's pacing key (its
-- kind and channel), `next_free` the first instant, in microseconds since
-- the epoch, at which another message may go into it. A worker reserves
-- the channels of the rows it claims for their send slots in one statement
-- per batch; a 429 on a channel moves its `next_free` to the end of the
-- pause. Rows long past are pruned.
CREATE TABLE channel_pace (
    key       TEXT PRIMARY KEY,
    next_free BIGINT NOT NULL
);
CREATE INDEX channel_pace_next_free ON channel_pace (next_free);
