-- A work item's local write (its user's first SCIM write, run inside the page workflow's
-- task) may start only while nothing else has decided about the item: the local write sets
-- local_closed as it opens its intent, and so does every other step that decides about the
-- item (the activity's attempts, the seats given back on cancellation). A local write that
-- starts late (its workflow task lost and replayed meanwhile) finds it set and writes nothing.
ALTER TABLE work_items ADD COLUMN local_closed boolean NOT NULL DEFAULT false;
