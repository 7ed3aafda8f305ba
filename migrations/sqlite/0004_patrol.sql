-- patrol-sync schema v4 (SQLite): patrol coverage. Mirrors migrations/postgres/0004_patrol.sql.
-- Zones, checkpoints, routes and rules are not tables of their own: each lives in
-- ref_changes (collections zones, checkpoints, routes, rules), which is both the entity as
-- it stands and the pull feed. Times are epoch milliseconds.

-- Tag key (`nfc:04A2197C`, `qr:<payload>`) -> the live checkpoint of the estate holding it:
-- how scans are resolved. Kept in step with the checkpoints in ref_changes.
CREATE TABLE checkpoint_tags (
    estate_id     TEXT NOT NULL,
    tag_key       TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    PRIMARY KEY (estate_id, tag_key)
);

-- One row per stored `scan` fact: what coverage reads, without parsing fact JSON.
-- checkpoint_id is the tag's checkpoint as the tags stand now (NULL: unknown tag); it is
-- rewritten whenever a tag is added, moved or removed. Clustered by (estate, trusted time):
-- a period's scans are one contiguous range read in order, not a million lookups through a
-- secondary index (fact_id is unique already in facts).
CREATE TABLE scans (
    fact_id       TEXT NOT NULL,
    estate_id     TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    trusted_at    INTEGER NOT NULL,
    verified      INTEGER NOT NULL,
    clock_skew    INTEGER NOT NULL,
    tag_key       TEXT NOT NULL,
    checkpoint_id TEXT,
    run_id        TEXT,
    lat           REAL,
    lng           REAL,
    accuracy_m    REAL,
    mock          INTEGER NOT NULL,
    PRIMARY KEY (estate_id, trusted_at, fact_id)
) WITHOUT ROWID;
CREATE INDEX scans_estate_tag ON scans (estate_id, tag_key);

-- One row per stored `run_event` fact.
CREATE TABLE run_events (
    fact_id    TEXT PRIMARY KEY,
    estate_id  TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    hlc        TEXT NOT NULL,
    trusted_at INTEGER NOT NULL,
    run_id     TEXT NOT NULL,
    action     TEXT NOT NULL CHECK (action IN ('start', 'finish', 'abort')),
    route_id   TEXT,
    reason     TEXT
);
CREATE INDEX run_events_estate_time ON run_events (estate_id, trusted_at);
CREATE INDEX run_events_run ON run_events (run_id);

-- A supervisor's excuse of one visit slot; the first excuse of a slot stands.
CREATE TABLE slot_excuses (
    estate_id     TEXT NOT NULL,
    rule_id       TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    slot_start    INTEGER NOT NULL,
    reason        TEXT NOT NULL,
    by_user       TEXT NOT NULL,
    at            INTEGER NOT NULL,
    PRIMARY KEY (rule_id, checkpoint_id, slot_start)
);
CREATE INDEX slot_excuses_estate_start ON slot_excuses (estate_id, slot_start);

-- patrol_estates: estates with a live rule.
CREATE INDEX ref_changes_estate_collection ON ref_changes (estate_id, collection, op);
