-- usersync's database roles. Run once per PostgreSQL server, as a superuser (or a role with
-- CREATEROLE), before the first migration; then set the passwords (ALTER ROLE ... PASSWORD)
-- or the authentication your server uses. Re-running it changes nothing.
--
--   usersync_owner   owns the schema: the migrations run as it (`starter migrate`)
--   usersync_worker  the worker: reads and writes the sync's tables, appends to the history
--   usersync_admin   the starter CLI: the same DML for its admin commands, appends to the history
--
-- Neither usersync_worker nor usersync_admin may create, alter or drop anything, nor update or
-- delete a history row; migration 025_least_privilege.sql grants them the rest (and, by
-- default privileges, the tables of later migrations). Then create the database owned by the
-- owner:  CREATE DATABASE usersync OWNER usersync_owner;
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['usersync_owner', 'usersync_worker', 'usersync_admin'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- created meanwhile by another session
            END;
        END IF;
    END LOOP;
END $$;
