-- nudged schema, version 3, PostgreSQL: as migrations/sqlite/0003_opt_outs.sql.
-- People who asked to be forgotten (`/pulse forget`, `nudged forget`): the
-- id only, nothing else about them. The roster does not enrol them again
-- while their id is here; their own `/pulse join` removes it.

CREATE TABLE opt_outs (
    person TEXT COLLATE "C" PRIMARY KEY
);
