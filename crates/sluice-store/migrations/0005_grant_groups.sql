-- The holder's identity groups as of issuance, a JSON array of strings
-- (masking exemptions read them; see `Grant::identity_groups`). Same
-- rules as 0001: SQL that SQLite and PostgreSQL both accept. Grants
-- stored before this migration get none, so nobody is exempt through
-- them (fails closed).
ALTER TABLE grants ADD COLUMN identity_groups TEXT NOT NULL DEFAULT '[]';
