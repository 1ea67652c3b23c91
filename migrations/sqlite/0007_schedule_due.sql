-- nudged schema, version 7: each (person, schedule)'s next due time, so a
-- scheduler tick reads only the rows due by now instead of every person.

-- When the dispatcher must next look at a schedule for a person: the first
-- occurrence after their last claimed run (or after they were added), read
-- in `zone`. NULL: the schedule never fires again. A row exists only for an
-- enrolled person in the schedule's audience.
CREATE TABLE schedule_due (
    person   TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    schedule TEXT NOT NULL,
    zone     TEXT NOT NULL,
    due_at   BIGINT,
    PRIMARY KEY (person, schedule)
);
CREATE INDEX schedule_due_by_time ON schedule_due (due_at, person, schedule);

-- People whose due rows must be recomputed: added, or their zone,
-- enrolment or pause changed. `stamp` changes at every mark, so a
-- recomputation started before a newer change does not settle it.
CREATE TABLE due_pending (
    person TEXT PRIMARY KEY REFERENCES people(id) ON DELETE CASCADE,
    stamp  BIGINT NOT NULL
);

-- The schedule set the due rows were computed for (one row, id 1): a
-- different fingerprint at start recomputes everyone.
CREATE TABLE schedule_set (
    id          INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL
);

-- Marks kept by the database itself, so every writer of `people` (roster,
-- /pulse, CLI, profile zones) is covered without a hook of its own.
CREATE TRIGGER people_due_on_insert AFTER INSERT ON people
BEGIN
    INSERT INTO due_pending (person, stamp) VALUES (NEW.id, random())
    ON CONFLICT (person) DO UPDATE SET stamp = excluded.stamp;
END;

CREATE TRIGGER people_due_on_change AFTER UPDATE OF tz, enrolled, paused_until ON people
WHEN OLD.tz IS NOT NEW.tz
  OR OLD.enrolled IS NOT NEW.enrolled
  OR OLD.paused_until IS NOT NEW.paused_until
BEGIN
    INSERT INTO due_pending (person, stamp) VALUES (NEW.id, random())
    ON CONFLICT (person) DO UPDATE SET stamp = excluded.stamp;
END;

-- Everyone already known is recomputed by the first tick.
INSERT INTO due_pending (person, stamp) SELECT id, random() FROM people;
