-- nudged schema, version 4.
-- A readiness nudge can be answered ("Interested", "Not now", "Not for me"):
-- the latest answer and when it was given are kept with the nudge, beside
-- the nudge as it was posted (its text and blocks, less the buttons), so
-- the message can be redrawn to show the answer. Nudges sent before this
-- version have neither.
-- A person can turn nudges off ("Not for me", `/pulse nudge off`); from
-- then on none is sent until they turn them back on (`/pulse nudge on`).

ALTER TABLE nudges ADD COLUMN message TEXT;
ALTER TABLE nudges ADD COLUMN response TEXT;
ALTER TABLE nudges ADD COLUMN answered_at BIGINT;
ALTER TABLE people ADD COLUMN nudges_off_since BIGINT;
