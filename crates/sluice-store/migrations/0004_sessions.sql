-- Session recording: a session's events are read by session id (replay,
-- `sluice sessions show`), so index it. Listing sessions reads the
-- `session.opened` rows through the kind index of 0002.
CREATE INDEX audit_events_session ON audit_events (session_id);
