-- A rule keeps its group's immutable ID (objectGUID on AD, entryUUID on OpenLDAP) beside the
-- DN, so that a group renamed or moved in the directory keeps its rule: a sync finds the group
-- by this ID and refreshes group_dn. '' until known (rules written before, or saved with
-- --no-directory-check): the next sync finds the group by its DN and fills it in.
ALTER TABLE rules ADD COLUMN group_id text NOT NULL DEFAULT '';
