-- patrol-sync schema v1 (SQLite). Mirrors migrations/postgres/0001_init.sql.
-- Times are epoch milliseconds (INTEGER); ids are UUID text.

CREATE TABLE estates (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    timezone    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    disabled_at   INTEGER
);

CREATE TABLE memberships (
    user_id   TEXT NOT NULL REFERENCES users(id),
    estate_id TEXT NOT NULL REFERENCES estates(id),
    role      TEXT NOT NULL CHECK (role IN ('guard', 'engineer', 'supervisor', 'manager', 'admin')),
    PRIMARY KEY (user_id, estate_id, role)
);
CREATE INDEX memberships_estate ON memberships (estate_id);

CREATE TABLE devices (
    id                   TEXT PRIMARY KEY,
    name                 TEXT,
    platform             TEXT,
    app_version          TEXT,
    last_user_id         TEXT REFERENCES users(id),
    first_seen_at        INTEGER NOT NULL,
    last_seen_at         INTEGER NOT NULL,
    acked_through_seq    INTEGER NOT NULL DEFAULT 0,
    max_seq              INTEGER NOT NULL DEFAULT 0,
    last_clock_offset_ms INTEGER,
    revoked_at           INTEGER
);

CREATE TABLE sessions (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users(id),
    device_id      TEXT NOT NULL REFERENCES devices(id),
    created_at     INTEGER NOT NULL,
    revoked_at     INTEGER,
    revoked_reason TEXT
);

CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions(id),
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE push_batches (
    device_id   TEXT NOT NULL,
    batch_id    TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    response    TEXT,
    PRIMARY KEY (device_id, batch_id)
);

-- The feed position: SQLite has one writer at a time, so a counter bumped inside each
-- write transaction numbers changes in commit order.
CREATE TABLE feed_counter (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    last INTEGER NOT NULL
);
INSERT INTO feed_counter (id, last) VALUES (1, 0);

-- Cursors at or before (floor_txid, floor_seq) are too old: tombstones before it are gone.
CREATE TABLE feed_meta (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    floor_txid INTEGER NOT NULL,
    floor_seq  INTEGER NOT NULL
);
INSERT INTO feed_meta (id, floor_txid, floor_seq) VALUES (1, 0, 0);

CREATE TABLE facts (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    estate_id    TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    batch_id     TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    hlc          TEXT NOT NULL,
    hlc_sent     TEXT,
    recorded_at  INTEGER NOT NULL,
    age_ms       INTEGER,
    sent_at      INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    trusted_at   INTEGER NOT NULL,
    clock_trust  TEXT NOT NULL,
    flags        TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    data         TEXT NOT NULL,
    feed_txid    INTEGER NOT NULL,
    feed_seq     INTEGER NOT NULL
);
CREATE INDEX facts_feed_estate ON facts (estate_id, feed_txid, feed_seq);
CREATE INDEX facts_feed_user ON facts (user_id, estate_id, feed_txid, feed_seq);
CREATE INDEX facts_device_seq ON facts (device_id, seq);

-- Seqs a device has delivered above its acknowledged prefix (the gaps' far side).
CREATE TABLE device_seqs (
    device_id TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    PRIMARY KEY (device_id, seq)
);

CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at INTEGER NOT NULL,
    device_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    batch_id    TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    change_id   TEXT,
    code        TEXT NOT NULL,
    message     TEXT NOT NULL,
    raw         TEXT NOT NULL
);
CREATE INDEX quarantine_user ON quarantine (user_id, id);

-- Reference data in the feed: the latest change per entity (puts and tombstones).
CREATE TABLE ref_changes (
    collection TEXT NOT NULL,
    entity_id  TEXT NOT NULL,
    estate_id  TEXT NOT NULL,
    op         TEXT NOT NULL CHECK (op IN ('put', 'delete')),
    data       TEXT,
    changed_at INTEGER NOT NULL,
    feed_txid  INTEGER NOT NULL,
    feed_seq   INTEGER NOT NULL,
    PRIMARY KEY (collection, entity_id)
);
CREATE INDEX ref_changes_feed ON ref_changes (estate_id, feed_txid, feed_seq);
