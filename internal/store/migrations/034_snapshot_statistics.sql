-- The run's ANALYZE of snapshot_users (AnalyzeSnapshot) is for the joins on run_id and
-- external_id; statistics of the users' data (jsonb, never filtered on) took most of its
-- second at 100,000 users, in every run, delta runs of 1,000 users included.
ALTER TABLE snapshot_users ALTER COLUMN data SET STATISTICS 0;
