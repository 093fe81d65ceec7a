-- Each organization's target as its last run found it (spec 7): what it advertised
-- (/ServiceProviderConfig, /Schemas, /ResourceTypes) and the extension the organization had
-- set. Rule and mapping edits are checked against the declared attributes.
CREATE TABLE target_profiles (
    org           text        PRIMARY KEY,
    extension     jsonb       NOT NULL,
    discovery     jsonb       NOT NULL,
    run_id        text        NOT NULL,
    discovered_at timestamptz NOT NULL DEFAULT now()
);

-- A run that stopped as a whole (credentials refused, target down or incompatible, directory
-- unreadable) records one failure, not one per user.
ALTER TABLE runs ADD COLUMN failure_type text NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN failure_message text NOT NULL DEFAULT '';

-- The custom extension a run writes, fixed when the run checked the target: a settings change
-- during the run does not split its users between two URNs.
ALTER TABLE runs ADD COLUMN extension jsonb;
