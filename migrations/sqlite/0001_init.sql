-- nudged schema, version 1.
-- Timestamps are INTEGER Unix milliseconds (BIGINT on PostgreSQL); weeks are
-- TEXT ISO weeks ('2026-W47'), which sort in time order.

CREATE TABLE people (
    id           TEXT PRIMARY KEY,
    name         TEXT,
    tz           TEXT,
    enrolled     INTEGER NOT NULL,
    paused_until BIGINT,
    created_at   BIGINT NOT NULL
);

CREATE TABLE answers (
    person      TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    week        TEXT NOT NULL,
    question    TEXT NOT NULL,
    option      TEXT NOT NULL,
    source      TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    -- Writes of this row: 1 when inserted, +1 per change.
    revision    INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (person, week, question)
);

-- Inbound chat events and actions already handled (Slack event ids).
CREATE TABLE seen_events (
    key     TEXT PRIMARY KEY,
    seen_at BIGINT NOT NULL
);

CREATE TABLE checkins (
    id         INTEGER PRIMARY KEY,
    person     TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    schedule   TEXT NOT NULL,
    period     BIGINT NOT NULL,
    week       TEXT NOT NULL,
    channel    TEXT,
    message_ts TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (person, schedule, period)
);
CREATE INDEX checkins_by_message ON checkins (channel, message_ts);

CREATE TABLE schedule_runs (
    person     TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    schedule   TEXT NOT NULL,
    period     BIGINT NOT NULL,
    claimed_at BIGINT NOT NULL,
    PRIMARY KEY (person, schedule, period)
);

CREATE TABLE assessments (
    id          INTEGER PRIMARY KEY,
    person      TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    week        TEXT NOT NULL,
    state       TEXT NOT NULL,
    ewma        DOUBLE PRECISION,
    detail      TEXT NOT NULL,
    assessed_at BIGINT NOT NULL
);
CREATE INDEX assessments_by_person ON assessments (person, assessed_at);

CREATE TABLE nudges (
    person  TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    week    TEXT NOT NULL,
    sent_at BIGINT NOT NULL,
    reasons TEXT NOT NULL,
    PRIMARY KEY (person, week)
);

CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY,
    dedupe_key  TEXT UNIQUE,
    person      TEXT,
    kind        TEXT NOT NULL,
    channel     TEXT NOT NULL,
    payload     TEXT NOT NULL,
    status      TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    not_before  BIGINT NOT NULL,
    lease_until BIGINT,
    last_error  TEXT,
    response    TEXT,
    created_at  BIGINT NOT NULL,
    sent_at     BIGINT
);
CREATE INDEX outbox_due ON outbox (status, not_before);
CREATE INDEX outbox_by_person ON outbox (person);
