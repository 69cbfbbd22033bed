-- card.sql: the capability roles and the schemas (DESIGN.md section 10;
-- C: src/card.c loads the module and its settings).
--
-- Privileges are written beside each definition, in every file: nothing
-- for PUBLIC, no role writes a table directly, and each entry point is
-- granted to the roles that need it.  No function is SECURITY DEFINER.  A
-- C entry point switches to the extension's owner in its own code and
-- keeps the role PostgreSQL says is acting as the caller (src/tenancy.c,
-- card_entry_call); a PL/pgSQL or SQL entry point has its body in schema
-- card_internal, under its own name (which its body uses to qualify its
-- parameters), and a C wrapper of the same name and signature in schema
-- card (card_plpgsql_entry) does the same switch and carries the grants.
-- Nobody is granted anything in card_internal.
--
-- The tables whose data pg_dump keeps are marked with
-- pg_extension_config_dump beside their definitions.

-- Roles are cluster-wide, so an install in a second database finds them
-- already there.
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['card_admin', 'card_api', 'card_processor',
                                     'card_hosted_pages', 'card_reader'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', role_name);
        END IF;
    END LOOP;
END
$$;

GRANT USAGE ON SCHEMA card TO card_admin, card_api, card_processor, card_hosted_pages, card_reader;

CREATE SCHEMA card_internal;
REVOKE ALL ON SCHEMA card_internal FROM PUBLIC;
