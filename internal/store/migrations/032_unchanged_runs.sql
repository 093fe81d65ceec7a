-- What a run's outcome stands on, so that the next run can tell that nothing it depends on
-- changed and skip its plan (activities.UnchangedSince):
--   inputs: a hash of the plan's inputs besides the directory (rules, mappings, validated
--     domains, seat counts, settings version, thresholds, read scope); NULL: not known;
--   next_expiry: the earliest accountExpires after the read among the users it saw (a user
--     disabled by the clock, with no directory change); NULL: none;
--   basis: the run whose read and plan this run's outcome is (itself, or for a run that
--     found the directory unchanged, its basis's basis);
--   clean: the run finished complete, succeeded, not dry, with no user failure.
ALTER TABLE runs ADD COLUMN inputs text;
ALTER TABLE runs ADD COLUMN next_expiry timestamptz;
ALTER TABLE runs ADD COLUMN basis text;
ALTER TABLE runs ADD COLUMN clean boolean NOT NULL DEFAULT false;
