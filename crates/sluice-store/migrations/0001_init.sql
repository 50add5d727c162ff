-- One set of migrations for SQLite and PostgreSQL: only types and syntax
-- both accept. Times are Unix milliseconds (BIGINT).

CREATE TABLE grants (
    id             TEXT PRIMARY KEY,
    subject        TEXT NOT NULL,
    issuer         TEXT NOT NULL,
    identity_name  TEXT NOT NULL,
    identity_kind  TEXT NOT NULL,
    connection     TEXT NOT NULL,
    profile        TEXT NOT NULL,
    rule           TEXT NOT NULL,
    status         TEXT NOT NULL,
    reason         TEXT NOT NULL,
    ttl_secs       BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    activated_at   BIGINT,
    expires_at     BIGINT NOT NULL,
    decided_by     TEXT,
    scram_verifier TEXT NOT NULL
);
CREATE INDEX grants_due ON grants (status, expires_at);
CREATE INDEX grants_owner ON grants (issuer, subject);

-- The audit chain. `body` is the exact canonical JSON that `hash` covers:
-- hash = sha256(prev_hash || "\n" || body). Nothing updates or deletes rows.
CREATE TABLE audit_events (
    seq        BIGINT PRIMARY KEY,
    ts         BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    grant_id   TEXT,
    session_id TEXT,
    body       TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE INDEX audit_events_ts ON audit_events (ts);
CREATE INDEX audit_events_grant ON audit_events (grant_id);
