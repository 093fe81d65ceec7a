-- The entries that were beyond the server's sync mark (syncprov's contextCSN) when the cookie
-- was read, as a fingerprint of their CSNs: a read from the same cookie with the same entries
-- beyond it has nothing new to read. '': none.
ALTER TABLE directory_sync ADD COLUMN beyond text NOT NULL DEFAULT '';
