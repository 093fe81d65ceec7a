-- The shape of each organization's target as its last run found it (spec 7): the custom
-- extension the run writes, and what the target advertised (/ServiceProviderConfig,
-- /Schemas, /ResourceTypes). Per-user steps of the run use the extension recorded here;
-- rule and mapping edits are checked against the declared attributes.
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
