-- Least privilege (roles.sql creates the roles; this grants them what they need). The
-- migrations run as usersync_owner, which owns every table; usersync_worker (the worker) and
-- usersync_admin (the starter CLI) get the DML they need and no DDL. Both may add to the
-- history and read it, never change or remove it. When the roles do not exist (a single-role
-- setup) nothing is granted.
--
-- Tables created by later migrations get the same grants through ALTER DEFAULT PRIVILEGES
-- (of the role running the migrations); TestLeastPrivilegeGrantsEveryTable checks it.
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['usersync_worker', 'usersync_admin'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            CONTINUE;
        END IF;
        EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', r);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %I', r);
        EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO %I', r);
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I', r);
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO %I', r);
        -- The audit trail: append and read only (the trigger of 020 refuses the rest to anyone).
        EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON history FROM %I', r);
        -- The schema's bookkeeping is the owner's: read it to see the schema is current.
        EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM %I', r);
    END LOOP;
END $$;

-- ANALYZE is the owner's (before PostgreSQL 17's MAINTAIN privilege): the worker refreshes the
-- statistics of its scratch tables through this function, which runs as the owner and
-- analyzes nothing else.
CREATE FUNCTION usersync_analyze(tables text[]) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY tables LOOP
        IF t NOT IN ('snapshot_users', 'snapshot_groups', 'snapshot_group_members', 'snapshot_memberships') THEN
            RAISE EXCEPTION 'usersync_analyze: % is not a scratch table', t USING ERRCODE = 'insufficient_privilege';
        END IF;
        EXECUTE format('ANALYZE %I', t);
    END LOOP;
END $$;
REVOKE EXECUTE ON FUNCTION usersync_analyze(text[]) FROM PUBLIC;
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['usersync_worker', 'usersync_admin'] LOOP
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION usersync_analyze(text[]) TO %I', r);
        END IF;
    END LOOP;
END $$;
