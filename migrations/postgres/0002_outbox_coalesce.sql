-- nudged schema, version 2.
-- A row that only asks for something to be redrawn from the store at send
-- time (a prompt after a click) carries a coalesce key while it waits: a
-- second request for the same redraw is then already covered by it. The
-- key is cleared when a worker claims the row, so a request made after that
-- queues a new row, drawn from what is stored by then.

ALTER TABLE outbox ADD COLUMN coalesce_key TEXT COLLATE "C";
CREATE UNIQUE INDEX outbox_coalesce ON outbox (coalesce_key);
