-- Unlinked target accounts an admin chose to adopt (spec 7): the user's next attempt links it
-- to the account that has its userName instead of failing existing_account. Dropped once done.
CREATE TABLE adoptions (
    org         text        NOT NULL,
    external_id text        NOT NULL,
    user_name   text        NOT NULL,
    approved_by text        NOT NULL,
    approved_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org, external_id)
);
