-- tenancy.sql: who is calling, and which programmes it sees (DESIGN.md
-- section 10; C: src/tenancy.c).
--
-- The caller is the role PostgreSQL says is acting when an entry point is
-- called: the login role, a SET ROLE, or the owner of a SECURITY DEFINER
-- function calling in.  Entry points switch to the extension's owner in C
-- (card_entry_call) and keep that caller.  Row-level security policies
-- call these functions as the querying role, so each reveals only the
-- caller's own standing.  They resolve no names, so they need no fixed
-- search_path (which would make every call, one per row under a policy,
-- set and reset it).  They are PARALLEL RESTRICTED: the caller of an entry
-- point lives in the backend that runs it, and a parallel worker would take
-- the extension's owner for the caller.

CREATE FUNCTION card.caller() RETURNS name
    AS 'MODULE_PATHNAME', 'card_caller'
    LANGUAGE C STABLE PARALLEL RESTRICTED;
REVOKE ALL ON FUNCTION card.caller() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.caller() TO card_admin, card_api, card_processor, card_hosted_pages, card_reader;

-- Superusers and BYPASSRLS roles see every programme.
CREATE FUNCTION card.caller_sees_all() RETURNS boolean
    AS 'MODULE_PATHNAME', 'card_caller_sees_all'
    LANGUAGE C STABLE PARALLEL RESTRICTED;
REVOKE ALL ON FUNCTION card.caller_sees_all() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.caller_sees_all() TO card_admin, card_api, card_processor, card_hosted_pages, card_reader;

-- Whether the caller has the privileges of a role (is it or inherits it).
CREATE FUNCTION card.caller_has_role(role_name name) RETURNS boolean
    AS 'MODULE_PATHNAME', 'card_caller_has_role'
    LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
REVOKE ALL ON FUNCTION card.caller_has_role(name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.caller_has_role(name) TO card_admin, card_api, card_processor, card_hosted_pages, card_reader;

-- Which roles see which programme: a role sees a programme granted to it
-- or to a role whose privileges it has.  Roles are kept by name, so the
-- grants survive pg_dump and restore into a cluster where the role ids
-- differ; a renamed role must be granted again.
CREATE TABLE card.programme_role (
    programme_id    uuid NOT NULL REFERENCES card.programme,
    role_name       name NOT NULL,
    granted_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (programme_id, role_name)
);
SELECT pg_catalog.pg_extension_config_dump('card.programme_role', '');

-- The programme check of every function that looks one row up: the caller
-- sees all, or holds a role the programme was granted to.  Statements that
-- scan many rows (the feed, the sweeps) test the same as
-- "(card.caller_sees_all() OR programme_id IN (SELECT card.visible_programmes()))",
-- which evaluates the caller's grants once rather than once per row.  In C
-- (src/visible.c): the caller's set is worked out once and kept by the
-- backend until card.programme_role or a role membership changes, instead
-- of an SQL body planned again at every execution of its statement.
CREATE FUNCTION card.programme_visible(programme_id uuid) RETURNS boolean
    AS 'MODULE_PATHNAME', 'card_programme_visible_sql'
    LANGUAGE C STABLE PARALLEL RESTRICTED;
REVOKE ALL ON FUNCTION card.programme_visible(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.programme_visible(uuid) TO card_admin, card_api, card_processor, card_hosted_pages, card_reader;

-- The programmes of the caller's grants, for the row-level security
-- policies (superusers and BYPASSRLS roles skip those policies anyway).
-- A policy reads it as "programme_id IN (SELECT ...)": one evaluation per
-- query, hashed, rather than one call per row.
CREATE FUNCTION card.visible_programmes() RETURNS SETOF uuid
    AS 'MODULE_PATHNAME', 'card_visible_programmes'
    LANGUAGE C STABLE PARALLEL RESTRICTED;
REVOKE ALL ON FUNCTION card.visible_programmes() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.visible_programmes() TO card_admin, card_api, card_processor, card_hosted_pages, card_reader;

-- Every backend forgets the sets it keeps when a grant changes: after each
-- row (logical replication's apply fires row triggers only) and each
-- TRUNCATE, enabled ALWAYS so that a replica's apply and
-- session_replication_role = replica fire them too.
CREATE FUNCTION card.programme_role_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'card_programme_role_changed'
    LANGUAGE C;
REVOKE ALL ON FUNCTION card.programme_role_changed() FROM PUBLIC;
CREATE TRIGGER programme_role_changed
    AFTER INSERT OR UPDATE OR DELETE ON card.programme_role
    FOR EACH ROW EXECUTE FUNCTION card.programme_role_changed();
CREATE TRIGGER programme_role_truncated
    AFTER TRUNCATE ON card.programme_role
    FOR EACH STATEMENT EXECUTE FUNCTION card.programme_role_changed();
ALTER TABLE card.programme_role ENABLE ALWAYS TRIGGER programme_role_changed;
ALTER TABLE card.programme_role ENABLE ALWAYS TRIGGER programme_role_truncated;

-- Grants a programme to a role (and so to every role that has its
-- privileges); true when the grant is new.  A grant reaches only roles the
-- granting tenant already controls (else tenant A's admin could make its
-- cards visible to B's reader and authorisable by B's processor, through
-- B's roles or a shared group role).  A caller
-- who does not see every programme may grant only to itself or to a role
-- it holds with ADMIN OPTION (whose members it chooses), never to a role
-- that the capability roles or PostgreSQL's predefined roles are: those
-- are shared by every tenant.  Superusers (and BYPASSRLS roles) keep full
-- control.
CREATE FUNCTION card_internal.programme_grant(programme_id uuid, role name)
    RETURNS boolean
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    grantee oid;
BEGIN
    IF programme_id IS NULL OR role IS NULL THEN
        RAISE EXCEPTION '% is required', CASE WHEN programme_id IS NULL THEN 'programme_id' ELSE 'role' END
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM card.programme p
                    WHERE p.id = programme_grant.programme_id AND card.programme_visible(p.id)) THEN
        RAISE EXCEPTION 'programme % does not exist', programme_id USING ERRCODE = 'no_data_found';
    END IF;
    SELECT r.oid INTO grantee FROM pg_catalog.pg_roles r WHERE r.rolname = programme_grant.role;
    IF grantee IS NULL THEN
        RAISE EXCEPTION 'role "%" does not exist', role USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT card.caller_sees_all() THEN
        IF card.role_is_shared(role) THEN
            RAISE EXCEPTION 'programme % cannot be granted to the shared role "%"', programme_id, role
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'Every tenant''s roles may hold it.',
                      HINT = 'Grant the programme to a role of your own, which you grant to your login roles.';
        END IF;
        IF role <> card.caller()
           AND NOT pg_catalog.pg_has_role(card.caller(), grantee, 'USAGE WITH ADMIN OPTION') THEN
            RAISE EXCEPTION 'programme % cannot be granted to role "%"', programme_id, role
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'A tenant grants its programmes only to itself or to roles it holds WITH ADMIN OPTION.',
                      HINT = 'Ask a superuser, or have the role granted to you WITH ADMIN OPTION.';
        END IF;
    END IF;
    INSERT INTO card.programme_role AS g (programme_id, role_name)
    VALUES (programme_id, role)
    ON CONFLICT ON CONSTRAINT programme_role_pkey DO NOTHING;
    RETURN FOUND;
END
$$;
REVOKE ALL ON FUNCTION card_internal.programme_grant(uuid, name) FROM PUBLIC;
CREATE FUNCTION card.programme_grant(programme_id uuid, role name)
    RETURNS boolean
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.programme_grant(uuid, name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.programme_grant(uuid, name) TO card_admin;

-- Takes a grant back; true when there was one.  The caller may revoke its
-- own last grant and so lose sight of the programme.  A role that does not
-- exist is refused as programme_grant refuses it (42704), unless a grant to
-- it was left behind when it was dropped: that one is taken back.
CREATE FUNCTION card_internal.programme_revoke(programme_id uuid, role name)
    RETURNS boolean
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF programme_id IS NULL OR role IS NULL THEN
        RAISE EXCEPTION '% is required', CASE WHEN programme_id IS NULL THEN 'programme_id' ELSE 'role' END
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM card.programme p
                    WHERE p.id = programme_revoke.programme_id AND card.programme_visible(p.id)) THEN
        RAISE EXCEPTION 'programme % does not exist', programme_id USING ERRCODE = 'no_data_found';
    END IF;
    DELETE FROM card.programme_role g
     WHERE g.programme_id = programme_revoke.programme_id AND g.role_name = programme_revoke.role;
    IF NOT FOUND AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
                                  WHERE r.rolname = programme_revoke.role) THEN
        RAISE EXCEPTION 'role "%" does not exist', role USING ERRCODE = 'undefined_object';
    END IF;
    RETURN FOUND;
END
$$;
REVOKE ALL ON FUNCTION card_internal.programme_revoke(uuid, name) FROM PUBLIC;
CREATE FUNCTION card.programme_revoke(programme_id uuid, role name)
    RETURNS boolean
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.programme_revoke(uuid, name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.programme_revoke(uuid, name) TO card_admin;

-- Roles every tenant's roles may hold: the capability roles and
-- PostgreSQL's predefined roles (C: src/tenancy.c).  No one but a superuser
-- grants a programme to one, and no one creates a programme or a consumer
-- acting as one (SET ROLE card_admin would otherwise hand the new programme
-- to every tenant's admins).
CREATE FUNCTION card.role_is_shared(role_name name) RETURNS boolean
    AS 'MODULE_PATHNAME', 'card_role_is_shared'
    LANGUAGE C STABLE PARALLEL SAFE;
REVOKE ALL ON FUNCTION card.role_is_shared(name) FROM PUBLIC;

-- Row-level security: the same rule for anyone who reads a table or view.
-- Nobody but the owner holds table privileges beyond SELECT on the columns
-- the views show; the policies hold should a DBA grant more.  The owner and
-- superusers bypass them, and the functions check for themselves.  Each
-- table's policy is defined with the table; these two are the programmes'.
ALTER TABLE card.programme ENABLE ROW LEVEL SECURITY;
CREATE POLICY programme_of_caller ON card.programme
    USING (id IN (SELECT card.visible_programmes()));

ALTER TABLE card.programme_role ENABLE ROW LEVEL SECURITY;
-- A role sees its own grants; a row written (should a DBA allow writes)
-- must also be for a programme the writer already sees.
CREATE POLICY grants_of_caller ON card.programme_role
    USING (card.caller_has_role(role_name))
    WITH CHECK (card.caller_has_role(role_name)
                AND programme_id IN (SELECT card.visible_programmes()));
GRANT SELECT (programme_id, role_name)
    ON card.programme_role TO card_admin, card_api, card_processor, card_hosted_pages, card_reader;
