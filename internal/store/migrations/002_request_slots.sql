-- Request pacing shared by every worker: the next free slot toward a rate-limited target.
CREATE TABLE request_slots (
    key     text PRIMARY KEY,
    next_at timestamptz NOT NULL
);
