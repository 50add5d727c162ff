-- A statement approved once may run once: the session that runs it marks
-- the approval used, atomically, so two sessions waiting on one approval
-- (a retry beside the original) cannot both run it.
ALTER TABLE approvals ADD COLUMN used_at BIGINT;
