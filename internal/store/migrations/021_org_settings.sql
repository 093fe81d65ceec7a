-- Each organization's settings (directory, target, suspension thresholds), one current row
-- per organization. version counts every change; a delete clears settings (NULL) and the
-- secrets but keeps the row, so a re-created organization gets a higher version and a worker
-- that caches by version never mistakes it for the one it knew. Each change's settings are
-- in the history (type setting).
CREATE TABLE org_settings (
    org        text        PRIMARY KEY,
    version    bigint      NOT NULL CHECK (version > 0),
    settings   jsonb,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text        NOT NULL
);

-- The secrets (LDAP bind password, SCIM token), sealed with AES-256-GCM by the process that
-- writes them: the database never sees them in clear. key_id names the key of the key file
-- (USERSYNC_SECRETS_KEY_FILE) that sealed them, so keys can be rotated.
CREATE TABLE org_secrets (
    org        text  NOT NULL REFERENCES org_settings (org) ON DELETE CASCADE,
    field      text  NOT NULL,
    key_id     text  NOT NULL,
    ciphertext bytea NOT NULL,
    PRIMARY KEY (org, field)
);
