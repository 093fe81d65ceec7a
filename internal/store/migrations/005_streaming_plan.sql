-- Streaming plan: items are written as they are decided and seats are then handed out from
-- this table in seat order, so that planning holds no list of users in memory.
ALTER TABLE work_items
    ADD COLUMN seat_priority int    NOT NULL DEFAULT 0,
    ADD COLUMN sort_name     text   NOT NULL DEFAULT '',
    ADD COLUMN new_seats     text[] NOT NULL DEFAULT '{}';

-- Count of active linked accounts (suspension threshold) without reading the states.
CREATE INDEX user_state_active ON user_state (org) WHERE active;
