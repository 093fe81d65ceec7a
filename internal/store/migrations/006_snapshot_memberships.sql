-- The group graph of a directory snapshot while it is read, so that the reader's memory does
-- not grow with the directory (store.MembershipIndex). Scratch rows of one run, dropped when
-- its read ends. Logged tables on purpose: after a crash-restart or a failover an unlogged
-- table is empty, and a read going on would find no members without failing.

-- Every group entry read (a group with more members than AD sends at once comes again).
CREATE TABLE snapshot_groups (
    run_id   text NOT NULL,
    group_dn text NOT NULL
);
CREATE INDEX snapshot_groups_dn ON snapshot_groups (run_id, group_dn);

-- Direct members of each group, normalized DNs: users, nested groups, or dangling DNs.
CREATE TABLE snapshot_group_members (
    run_id    text NOT NULL,
    group_dn  text NOT NULL,
    member_dn text NOT NULL
);
CREATE INDEX snapshot_group_members_group ON snapshot_group_members (run_id, group_dn);

-- Resolved: non-group member_dn is held, directly or through nesting, by the requested group
-- number idx (its position in the sorted requested list).
CREATE TABLE snapshot_memberships (
    run_id    text NOT NULL,
    member_dn text NOT NULL,
    idx       int  NOT NULL,
    PRIMARY KEY (run_id, member_dn, idx)
);
