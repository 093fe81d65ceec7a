-- Every write is accounted for (issue 9). A SCIM write to a user's account is recorded here
-- before its first request and the row is removed when its outcome is recorded: the applied
-- state saved (user_state), or the write refused by the target (it did not happen). A row
-- that stays is a write whose outcome is unknown (a lost answer, a 5xx after the target
-- committed, a crash): the user's seats stay, and the next attempt or run reads the account
-- in the target (by externalId, then userName) before anything else is done for the user.
-- One open write per user: a new attempt reads the target first, then replaces the row.
CREATE TABLE write_intents (
    org         text        NOT NULL,
    external_id text        NOT NULL,
    user_name   text        NOT NULL, -- the userName the write sent (found by it if not by externalId)
    run_id      text        NOT NULL,
    action      text        NOT NULL, -- plan.Action: create, update or suspend
    seats       text[]      NOT NULL DEFAULT '{}', -- seats reserved for this write (plan.Item.NewSeats)
    opened_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org, external_id)
);
