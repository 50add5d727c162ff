-- A grant for an SSH connection may carry a public key its holder logs in
-- with instead of the grant secret (registered when the grant is asked for).
ALTER TABLE grants ADD COLUMN ssh_key TEXT;
