/* card--1.3--1.4.sql: programme visibility in C, kept per backend (issue 12) */

\echo Use "ALTER EXTENSION card UPDATE TO '1.4'" to load this file. \quit

-- The caller of an entry point lives in the backend that runs it; a
-- parallel worker would take the extension's owner for the caller.
ALTER FUNCTION card.caller() PARALLEL RESTRICTED;
ALTER FUNCTION card.caller_sees_all() PARALLEL RESTRICTED;
ALTER FUNCTION card.caller_has_role(name) PARALLEL RESTRICTED;

-- The programmes the caller sees, worked out in C once and kept by the
-- backend until a grant or a role membership changes (src/visible.c),
-- instead of SQL bodies planned again at every execution of the
-- statements that call them.
CREATE OR REPLACE FUNCTION card.programme_visible(programme_id uuid) RETURNS boolean
    AS 'MODULE_PATHNAME', 'card_programme_visible_sql'
    LANGUAGE C STABLE PARALLEL RESTRICTED;
CREATE OR REPLACE FUNCTION card.visible_programmes() RETURNS SETOF uuid
    AS 'MODULE_PATHNAME', 'card_visible_programmes'
    LANGUAGE C STABLE PARALLEL RESTRICTED;

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
