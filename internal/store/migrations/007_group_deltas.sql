-- The group membership changes of one run's group step, computed once and then read a chunk at
-- a time, so that no query stays open while the target is written (rate-limited, it may take a
-- while) and memory holds one chunk.
CREATE TABLE group_deltas (
    run_id    text    NOT NULL,
    seq       int     NOT NULL,
    name      text    NOT NULL,
    scim_user text    NOT NULL,
    add       boolean NOT NULL,
    PRIMARY KEY (run_id, seq)
);
