-- Audit export and tamper evidence. Same rules as 0001: SQL that SQLite
-- and PostgreSQL both accept, times as Unix milliseconds.

-- One row per configured sink: the last sequence number it delivered.
-- Only ever moves forward; a sink resumes after it on restart.
CREATE TABLE audit_sink_cursors (
    name       TEXT PRIMARY KEY,
    last_seq   BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Signed checkpoints: an Ed25519 signature over a message naming (seq,
-- hash, ts). Whoever can write the store but lacks the key cannot rewrite
-- a signed range, even recomputing every hash, without the signature
-- failing to match. `key_id` only helps name the key; it is not trusted.
CREATE TABLE audit_checkpoints (
    seq        BIGINT PRIMARY KEY,
    hash       TEXT NOT NULL,
    ts         BIGINT NOT NULL,
    key_id     TEXT NOT NULL,
    signature  TEXT NOT NULL
);

-- Truncation markers (kind `audit.truncated`) are looked up by kind.
CREATE INDEX audit_events_kind ON audit_events (kind);
