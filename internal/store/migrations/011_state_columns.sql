-- What SQL selects on is a column Go writes, never a field of a Go type's JSON: the products an
-- account holds (seats follow them) and the groups it belongs in (plan.GroupsOf).
ALTER TABLE user_state ADD COLUMN products text[] NOT NULL DEFAULT '{}';
ALTER TABLE user_state ADD COLUMN groups text[] NOT NULL DEFAULT '{}';
-- Once, for the states written before these columns existed.
UPDATE user_state SET
    products = ARRAY(SELECT jsonb_array_elements_text(COALESCE(state->'products', '[]'))),
    groups = CASE WHEN NOT active THEN '{}'::text[] ELSE ARRAY(
        SELECT DISTINCT g FROM (SELECT state->>'userGroup' AS g
            UNION SELECT jsonb_array_elements_text(COALESCE(state->'deviceGroups', '[]'))) x
        WHERE g IS NOT NULL AND g <> '') END;

-- The in-scope count of a run, for the safety check on suspiciously small reads.
ALTER TABLE runs ADD COLUMN in_scope int NOT NULL DEFAULT 0;
UPDATE runs SET in_scope = COALESCE((summary->>'inScope')::int, 0);

-- Written, never read.
ALTER TABLE work_items DROP COLUMN outcome;
