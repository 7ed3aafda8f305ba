-- patrol-sync schema v1 (PostgreSQL). Mirrors migrations/sqlite/0001_init.sql.
-- Times are epoch milliseconds (BIGINT).

CREATE TABLE estates (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    timezone    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT
);

CREATE TABLE users (
    id            UUID PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    disabled_at   BIGINT
);

CREATE TABLE memberships (
    user_id   UUID NOT NULL REFERENCES users(id),
    estate_id UUID NOT NULL REFERENCES estates(id),
    role      TEXT NOT NULL CHECK (role IN ('guard', 'engineer', 'supervisor', 'manager', 'admin')),
    PRIMARY KEY (user_id, estate_id, role)
);
CREATE INDEX memberships_estate ON memberships (estate_id);

CREATE TABLE devices (
    id                   UUID PRIMARY KEY,
    name                 TEXT,
    platform             TEXT,
    app_version          TEXT,
    last_user_id         UUID REFERENCES users(id),
    first_seen_at        BIGINT NOT NULL,
    last_seen_at         BIGINT NOT NULL,
    acked_through_seq    BIGINT NOT NULL DEFAULT 0,
    max_seq              BIGINT NOT NULL DEFAULT 0,
    last_clock_offset_ms BIGINT,
    revoked_at           BIGINT
);

CREATE TABLE sessions (
    id             UUID PRIMARY KEY,
    user_id        UUID NOT NULL REFERENCES users(id),
    device_id      UUID NOT NULL REFERENCES devices(id),
    created_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    revoked_reason TEXT
);

CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    session_id  UUID NOT NULL REFERENCES sessions(id),
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE push_batches (
    device_id   UUID NOT NULL,
    batch_id    UUID NOT NULL,
    user_id     UUID NOT NULL,
    received_at BIGINT NOT NULL,
    -- JSON text, like the raw change below: kept exactly, NUL escapes included (JSONB
    -- cannot hold U+0000).
    response    TEXT,
    PRIMARY KEY (device_id, batch_id)
);

-- The feed position. Sequence numbers are handed out in one order and committed in
-- another; each row also records its writing transaction's id, and a pull reads only
-- rows whose transaction is older than every transaction still running, in
-- (feed_txid, feed_seq) order. See docs/PROTOCOL.md, "Pull never skips".
CREATE SEQUENCE feed_seq;

CREATE TABLE feed_meta (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    floor_txid BIGINT NOT NULL,
    floor_seq  BIGINT NOT NULL
);
INSERT INTO feed_meta (id, floor_txid, floor_seq) VALUES (1, 0, 0);

CREATE TABLE facts (
    id           UUID PRIMARY KEY,
    kind         TEXT NOT NULL,
    estate_id    UUID NOT NULL,
    device_id    UUID NOT NULL,
    user_id      UUID NOT NULL,
    batch_id     UUID NOT NULL,
    seq          BIGINT NOT NULL,
    hlc          TEXT NOT NULL,
    hlc_sent     TEXT,
    recorded_at  BIGINT NOT NULL,
    age_ms       BIGINT,
    sent_at      BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    trusted_at   BIGINT NOT NULL,
    clock_trust  TEXT NOT NULL,
    flags        JSONB NOT NULL,
    content_hash TEXT NOT NULL,
    data         JSONB NOT NULL,
    feed_txid    BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    feed_seq     BIGINT NOT NULL DEFAULT nextval('feed_seq')
);
CREATE INDEX facts_feed_estate ON facts (estate_id, feed_txid, feed_seq);
CREATE INDEX facts_feed_user ON facts (user_id, estate_id, feed_txid, feed_seq);
CREATE INDEX facts_device_seq ON facts (device_id, seq);

CREATE TABLE device_seqs (
    device_id UUID NOT NULL,
    seq       BIGINT NOT NULL,
    PRIMARY KEY (device_id, seq)
);

CREATE TABLE quarantine (
    id          BIGSERIAL PRIMARY KEY,
    received_at BIGINT NOT NULL,
    device_id   UUID NOT NULL,
    user_id     UUID NOT NULL,
    batch_id    UUID NOT NULL,
    idx         INTEGER NOT NULL,
    change_id   TEXT,
    code        TEXT NOT NULL,
    message     TEXT NOT NULL,
    raw         TEXT NOT NULL
);
CREATE INDEX quarantine_user ON quarantine (user_id, id);

CREATE TABLE ref_changes (
    collection TEXT NOT NULL,
    entity_id  UUID NOT NULL,
    estate_id  UUID NOT NULL,
    op         TEXT NOT NULL CHECK (op IN ('put', 'delete')),
    data       JSONB,
    changed_at BIGINT NOT NULL,
    feed_txid  BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    feed_seq   BIGINT NOT NULL DEFAULT nextval('feed_seq'),
    PRIMARY KEY (collection, entity_id)
);
CREATE INDEX ref_changes_feed ON ref_changes (estate_id, feed_txid, feed_seq);
