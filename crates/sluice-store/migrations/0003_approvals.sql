-- Approvals: a paused request (a pending grant, or one exact statement)
-- waiting for humans. Votes are kept per approver so N-of-M is counted from
-- distinct identities; shape approvals let one statement fingerprint through
-- for the rest of a grant.

CREATE TABLE approvals (
    id                TEXT PRIMARY KEY,
    kind              TEXT NOT NULL,
    status            TEXT NOT NULL,
    grant_id          TEXT NOT NULL,
    connection        TEXT NOT NULL,
    requester_subject TEXT NOT NULL,
    requester_issuer  TEXT NOT NULL,
    requester_name    TEXT NOT NULL,
    reason            TEXT NOT NULL,
    session_id        TEXT,
    statement         TEXT,
    parameters        TEXT,
    analysis          TEXT,
    fingerprint       TEXT,
    rule              TEXT,
    min_approvals     BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    decided_at        BIGINT,
    decided_by        TEXT,
    decision_reason   TEXT,
    scope             TEXT
);
CREATE INDEX approvals_status ON approvals (status, expires_at);
CREATE INDEX approvals_grant ON approvals (grant_id);

CREATE TABLE approval_votes (
    approval_id      TEXT NOT NULL,
    approver_subject TEXT NOT NULL,
    approver_issuer  TEXT NOT NULL,
    approver_name    TEXT NOT NULL,
    decision         TEXT NOT NULL,
    reason           TEXT NOT NULL,
    scope            TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (approval_id, approver_subject, approver_issuer)
);

CREATE TABLE shape_approvals (
    grant_id    TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    approval_id TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (grant_id, fingerprint)
);
