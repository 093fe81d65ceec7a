-- The attempt of a run's directory snapshot that owns it (BeginRun bumps it): an attempt the
-- server timed out and retried may still run, and its writes to the run's snapshot are
-- refused once a later attempt began (a fencing token, checked in each write's transaction).
ALTER TABLE runs ADD COLUMN snapshot_attempt bigint NOT NULL DEFAULT 0;
