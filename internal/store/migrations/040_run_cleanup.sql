-- FinishRun drops the scratch rows (snapshot, touched users, memberships, group deltas) of
-- the organization's ended runs, and the work items of its runs beyond the 20 newest. It
-- found them by every such run of the organization, ever: a semi-join the planner ran as a
-- scan of the whole snapshot table, every organization's rows (80 ms per run next to a large
-- organization's snapshot of 50,000 users), and a list that grew with each run. A run is now
-- marked once its scratch (an hour after it finished), and once its work, is gone: FinishRun
-- looks only at the unmarked (store.dropEnded).

ALTER TABLE runs ADD COLUMN scratch_dropped boolean NOT NULL DEFAULT false,
                 ADD COLUMN work_dropped boolean NOT NULL DEFAULT false;

-- The keys of scratch rows per attempt ("<run>#<attempt>") are found as a range of run_id,
-- which their indexes serve only in byte order. Locked first, in the order a read's
-- resolution takes them (memberships, then groups), so that a worker of the old version still
-- reading cannot deadlock with the migration.
LOCK TABLE snapshot_memberships, snapshot_groups, snapshot_group_members, group_deltas IN ACCESS EXCLUSIVE MODE;
ALTER TABLE snapshot_groups ALTER COLUMN run_id TYPE text COLLATE "C";
ALTER TABLE snapshot_group_members ALTER COLUMN run_id TYPE text COLLATE "C";
ALTER TABLE snapshot_memberships ALTER COLUMN run_id TYPE text COLLATE "C";
ALTER TABLE group_deltas ALTER COLUMN run_id TYPE text COLLATE "C";

-- Finished runs: what the next FinishRun of their organization would drop goes now; those
-- finished over an hour ago are marked (nothing of theirs can still be written).
DELETE FROM snapshot_users WHERE run_id IN (SELECT run_id FROM runs WHERE finished_at IS NOT NULL);
DELETE FROM snapshot_touched WHERE run_id IN (SELECT run_id FROM runs WHERE finished_at IS NOT NULL);
DELETE FROM snapshot_groups WHERE split_part(run_id, '#', 1) IN (SELECT run_id FROM runs WHERE finished_at IS NOT NULL);
DELETE FROM snapshot_group_members WHERE split_part(run_id, '#', 1) IN (SELECT run_id FROM runs WHERE finished_at IS NOT NULL);
DELETE FROM snapshot_memberships WHERE split_part(run_id, '#', 1) IN (SELECT run_id FROM runs WHERE finished_at IS NOT NULL);
DELETE FROM group_deltas WHERE split_part(run_id, '#', 1) IN (SELECT run_id FROM runs WHERE finished_at IS NOT NULL);
UPDATE runs SET scratch_dropped = true WHERE finished_at < now() - interval '1 hour';

-- Runs beyond each organization's 20 newest: their work goes now, as the next FinishRun would.
DELETE FROM work_items WHERE run_id IN (SELECT run_id FROM
    (SELECT run_id, row_number() OVER (PARTITION BY org ORDER BY started_at DESC) AS n FROM runs) r WHERE n > 20);
UPDATE runs SET work_dropped = true WHERE run_id IN (SELECT run_id FROM
    (SELECT run_id, row_number() OVER (PARTITION BY org ORDER BY started_at DESC) AS n FROM runs) r WHERE n > 20);

CREATE INDEX runs_scratch_left ON runs (org) WHERE NOT scratch_dropped;
CREATE INDEX runs_work_left ON runs (org, started_at) WHERE NOT work_dropped;
