-- nudged schema, version 3.
-- People who asked to be forgotten (`/pulse forget`, `nudged forget`): the
-- id only, nothing else about them. The roster does not enrol them again
-- while their id is here; their own `/pulse join` removes it.

CREATE TABLE opt_outs (
    person TEXT PRIMARY KEY
);
