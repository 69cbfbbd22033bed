-- Shared by the pgTAP suites (included with \ir, not run on its own).
-- The SQLSTATE of a statement run as a role, or 'ran'.
CREATE FUNCTION pg_temp.tap_run_as(role name, statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    outcome text := 'ran';
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', role);
    BEGIN
        EXECUTE statement;
    EXCEPTION WHEN OTHERS THEN
        outcome := sqlstate;
    END;
    RESET ROLE;
    RETURN outcome;
END $$;

-- The SQLSTATE of a statement run as the current role, or 'ran'.
CREATE FUNCTION pg_temp.tap_state(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ran';
EXCEPTION WHEN OTHERS THEN
    RETURN sqlstate;
END $$;
