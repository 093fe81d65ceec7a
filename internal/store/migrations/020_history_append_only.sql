-- The history is an audit trail: rows are added, never changed or removed, by any role that
-- is not the table's owner disabling the trigger on purpose. Each row names the database role
-- that wrote it, beside the actor it declares.
ALTER TABLE history ADD COLUMN db_role text NOT NULL DEFAULT session_user;

CREATE FUNCTION history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'history is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER history_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON history
    FOR EACH STATEMENT EXECUTE FUNCTION history_append_only();
