-- patrol-sync schema v2 (SQLite): hazard rectification and alerts.
-- Mirrors migrations/postgres/0002_hazards.sql.

-- An estate's hazard rules (due dates by grade, evidence, escalation); absent = defaults.
CREATE TABLE hazard_policies (
    estate_id  TEXT PRIMARY KEY REFERENCES estates(id),
    policy     TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Every hazard event, pushed (then also in facts) or posted online: the fold's input.
-- Events whose report has not arrived yet are held here until it does.
CREATE TABLE hazard_events (
    id          TEXT PRIMARY KEY,
    hazard_id   TEXT NOT NULL,
    estate_id   TEXT NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('push', 'online')),
    device_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    roles       TEXT NOT NULL,
    hlc         TEXT NOT NULL,
    trusted_at  INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    data        TEXT NOT NULL
);
CREATE INDEX hazard_events_hazard ON hazard_events (hazard_id);
CREATE INDEX hazard_events_estate ON hazard_events (estate_id, received_at);

-- Photo metadata attached to a hazard event (evidence counts these, not the bytes).
CREATE TABLE hazard_photos (
    id          TEXT PRIMARY KEY,
    event_id    TEXT NOT NULL,
    role        TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX hazard_photos_event ON hazard_photos (event_id);

-- Tickets: the fold of their events, rewritten (with a new feed position) when one arrives.
CREATE TABLE hazards (
    id           TEXT PRIMARY KEY,
    estate_id    TEXT NOT NULL,
    code         TEXT NOT NULL,
    state        TEXT NOT NULL,
    grade        TEXT NOT NULL,
    category     TEXT NOT NULL,
    reporter_id  TEXT NOT NULL,
    assignee_id  TEXT,
    reported_at  INTEGER NOT NULL,
    due_at       INTEGER NOT NULL,
    closed_at    INTEGER,
    reopen_count INTEGER NOT NULL,
    ticket       TEXT NOT NULL,
    updated_at   INTEGER NOT NULL,
    feed_txid    INTEGER NOT NULL,
    feed_seq     INTEGER NOT NULL
);
-- Codes are numbered per estate and day, so unique within an estate.
CREATE UNIQUE INDEX hazards_code ON hazards (estate_id, code);
CREATE INDEX hazards_list ON hazards (estate_id, reported_at, id);
CREATE INDEX hazards_feed ON hazards (estate_id, feed_txid, feed_seq);
CREATE INDEX hazards_open_due ON hazards (state, due_at);

-- Ticket numbers per estate and estate-local day (YH-20261122-0007).
CREATE TABLE hazard_codes (
    estate_id TEXT NOT NULL,
    day       TEXT NOT NULL,
    last      INTEGER NOT NULL,
    PRIMARY KEY (estate_id, day)
);

-- Alerts the server raises (hazard escalation; missed visits later). Closed only with a comment.
CREATE TABLE alerts (
    id            TEXT PRIMARY KEY,
    estate_id     TEXT NOT NULL,
    kind          TEXT NOT NULL,
    subject_id    TEXT NOT NULL,
    dedupe_key    TEXT NOT NULL UNIQUE,
    target        TEXT NOT NULL,
    recipient_id  TEXT,
    raised_at     INTEGER NOT NULL,
    data          TEXT NOT NULL,
    closed_at     INTEGER,
    closed_by     TEXT,
    close_comment TEXT,
    feed_txid     INTEGER NOT NULL,
    feed_seq      INTEGER NOT NULL
);
CREATE INDEX alerts_estate ON alerts (estate_id, raised_at);
CREATE INDEX alerts_feed ON alerts (estate_id, feed_txid, feed_seq);
