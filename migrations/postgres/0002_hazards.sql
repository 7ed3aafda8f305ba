-- patrol-sync schema v2 (PostgreSQL): hazard rectification and alerts.
-- Mirrors migrations/sqlite/0002_hazards.sql.

-- An estate's hazard rules (due dates by grade, evidence, escalation); absent = defaults.
CREATE TABLE hazard_policies (
    estate_id  UUID PRIMARY KEY REFERENCES estates(id),
    policy     JSONB NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Every hazard event, pushed (then also in facts) or posted online: the fold's input.
-- Events whose report has not arrived yet are held here until it does.
CREATE TABLE hazard_events (
    id          UUID PRIMARY KEY,
    hazard_id   UUID NOT NULL,
    estate_id   UUID NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('push', 'online')),
    device_id   UUID NOT NULL,
    user_id     UUID NOT NULL,
    roles       TEXT NOT NULL,
    hlc         TEXT NOT NULL,
    trusted_at  BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    content_hash TEXT NOT NULL,
    data        JSONB NOT NULL
);
CREATE INDEX hazard_events_hazard ON hazard_events (hazard_id);
CREATE INDEX hazard_events_estate ON hazard_events (estate_id, received_at);

-- Photo metadata attached to a hazard event (evidence counts these, not the bytes).
CREATE TABLE hazard_photos (
    id          UUID PRIMARY KEY,
    event_id    UUID NOT NULL,
    role        TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX hazard_photos_event ON hazard_photos (event_id);

-- Tickets: the fold of their events, rewritten (with a new feed position) when one arrives.
CREATE TABLE hazards (
    id           UUID PRIMARY KEY,
    estate_id    UUID NOT NULL,
    code         TEXT NOT NULL,
    state        TEXT NOT NULL,
    grade        TEXT NOT NULL,
    category     TEXT NOT NULL,
    reporter_id  UUID NOT NULL,
    assignee_id  UUID,
    reported_at  BIGINT NOT NULL,
    due_at       BIGINT NOT NULL,
    closed_at    BIGINT,
    reopen_count BIGINT NOT NULL,
    ticket       JSONB NOT NULL,
    updated_at   BIGINT NOT NULL,
    feed_txid    BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    feed_seq     BIGINT NOT NULL DEFAULT nextval('feed_seq')
);
-- Codes are numbered per estate and day, so unique within an estate.
CREATE UNIQUE INDEX hazards_code ON hazards (estate_id, code);
CREATE INDEX hazards_list ON hazards (estate_id, reported_at, id);
CREATE INDEX hazards_feed ON hazards (estate_id, feed_txid, feed_seq);
CREATE INDEX hazards_open_due ON hazards (state, due_at);

-- Ticket numbers per estate and estate-local day (YH-20261122-0007).
CREATE TABLE hazard_codes (
    estate_id UUID NOT NULL,
    day       TEXT NOT NULL,
    last      BIGINT NOT NULL,
    PRIMARY KEY (estate_id, day)
);

-- Alerts the server raises (hazard escalation; missed visits later). Closed only with a comment.
CREATE TABLE alerts (
    id            UUID PRIMARY KEY,
    estate_id     UUID NOT NULL,
    kind          TEXT NOT NULL,
    subject_id    TEXT NOT NULL,
    dedupe_key    TEXT NOT NULL UNIQUE,
    target        TEXT NOT NULL,
    recipient_id  UUID,
    raised_at     BIGINT NOT NULL,
    data          JSONB NOT NULL,
    closed_at     BIGINT,
    closed_by     UUID,
    close_comment TEXT,
    feed_txid     BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    feed_seq      BIGINT NOT NULL DEFAULT nextval('feed_seq')
);
CREATE INDEX alerts_estate ON alerts (estate_id, raised_at);
CREATE INDEX alerts_feed ON alerts (estate_id, feed_txid, feed_seq);
