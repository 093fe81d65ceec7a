-- Delta runs (issue 13): a run whose directory changes touched few users snapshots and plans
-- only them (activities.DeltaSince). runs.delta marks such a run's snapshot; snapshot_touched
-- holds the externalIds of every user its changes touched, in its snapshot or not (a user
-- who left every ruled group, or was deleted). Dropped with the snapshot.
ALTER TABLE runs ADD COLUMN delta boolean NOT NULL DEFAULT false;
CREATE TABLE snapshot_touched (
    run_id      text NOT NULL,
    external_id text NOT NULL,
    PRIMARY KEY (run_id, external_id)
);
