-- A write intent opened by a local attempt (a user's first SCIM write run inside the page
-- workflow's task) is held by that attempt until it ends, at the latest until held_until:
-- such an attempt can outlive its workflow task (the task lost, its results dropped, the
-- task replayed) and must not write beside the attempt that replaces it. held_by names the
-- attempt (a random token), so that only it releases the hold.
ALTER TABLE write_intents ADD COLUMN held_by text, ADD COLUMN held_until timestamptz;
