-- Fleet mode: gateways sharing this store announce themselves, hold
-- leases for the work one of them does for all (sweeper, audit export),
-- and keep the web page's sign-ins here so any gateway serves any approver.
CREATE TABLE gateways (
    id            TEXT PRIMARY KEY,
    host          TEXT NOT NULL,
    version       TEXT NOT NULL,
    policy_hash   TEXT NOT NULL,
    api_url       TEXT NOT NULL,
    state         TEXT NOT NULL,
    started_at    BIGINT NOT NULL,
    heartbeat_at  BIGINT NOT NULL
);

CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);

-- Keys are SHA-256 hashes of the cookie or sign-in ids, never the ids.
CREATE TABLE ui_sessions (
    key         TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    body        TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX ui_sessions_expires ON ui_sessions (expires_at);
