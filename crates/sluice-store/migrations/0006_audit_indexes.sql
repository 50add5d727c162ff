-- Fewer indexes on the audit chain. It takes a row or two for every
-- statement a client sends, and every index is one more B-tree written per
-- row. Same rules as 0001: SQL that SQLite and PostgreSQL both accept.

-- Nothing looks events up by grant (a grant's sessions are found through
-- their `session.opened` rows, a session's events by its id).
DROP INDEX audit_events_grant;

-- By kind, only two kinds are ever looked up: sessions' openings (listing
-- sessions) and truncation markers (verify, retention). Partial indexes
-- hold just those rows, so every other row skips them. The queries name
-- the kind as a literal, as a partial index needs. Openings are indexed in
-- the order sessions are listed (newest first, by time then sequence).
DROP INDEX audit_events_kind;
CREATE INDEX audit_events_opened ON audit_events (ts, seq) WHERE kind = 'session.opened';
CREATE INDEX audit_events_truncated ON audit_events (seq) WHERE kind = 'audit.truncated';
