-- Photo metadata, one row per `photo` fact (or photo sent with an online hazard event):
-- who may see the bytes follows from these rows (their estate, their pusher).
CREATE TABLE photos (
    id           TEXT PRIMARY KEY,
    estate_id    TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    bytes        INTEGER,
    mime         TEXT,
    subject_kind TEXT NOT NULL,
    subject_id   TEXT NOT NULL,
    role         TEXT NOT NULL,
    received_at  INTEGER NOT NULL
);
CREATE INDEX photos_sha256 ON photos (sha256);
CREATE INDEX photos_estate_device ON photos (estate_id, device_id);

-- Bytes the blob store holds, by content hash: stored once, whoever uploaded them.
CREATE TABLE photo_blobs (
    sha256    TEXT PRIMARY KEY,
    bytes     INTEGER NOT NULL,
    mime      TEXT NOT NULL,
    stored_at INTEGER NOT NULL
);
