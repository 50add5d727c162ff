-- MySQL clients that speak only mysql_native_password are checked against
-- SHA1(SHA1(secret)), kept beside the SCRAM verifier; empty for older grants.
ALTER TABLE grants ADD COLUMN native_verifier TEXT NOT NULL DEFAULT '';
