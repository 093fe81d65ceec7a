-- How many entries of the kind the mirror held when the sync state was committed: a mirror
-- that holds another number was changed outside a read, and its mark (cookie) no longer
-- describes it, so the next read is a full one. -1: not known (a state from before).
ALTER TABLE directory_sync ADD COLUMN entries integer NOT NULL DEFAULT -1;
