-- rotate.sql: key rotation (C: src/rotate.c).  One batch re-encrypts up to
-- batch_size PANs under older key versions with the newest, found through
-- the index, in card id order after the last card of the batch before.

CREATE INDEX card_pan_key_version_idx ON card.card (pan_key_version);

-- Progress of a rotation, from any session: PANs per key version (of the
-- caller's programmes; a superuser's count is the whole database's).
CREATE FUNCTION card_internal.pan_key_versions()
    RETURNS TABLE (key_version smallint, cards bigint)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT c.pan_key_version, count(*) FROM card.card c
     WHERE (card.caller_sees_all() OR c.programme_id IN (SELECT card.visible_programmes()))
     GROUP BY c.pan_key_version ORDER BY 1;
END;
REVOKE ALL ON FUNCTION card_internal.pan_key_versions() FROM PUBLIC;
CREATE FUNCTION card.pan_key_versions()
    RETURNS TABLE(key_version smallint, cards bigint)
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C STABLE ROWS 1000;
REVOKE ALL ON FUNCTION card.pan_key_versions() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.pan_key_versions() TO card_admin;

CREATE FUNCTION card.rotate_keys_batch(batch_size integer, after uuid DEFAULT NULL,
    OUT rotated integer, OUT key_version integer, OUT done boolean, OUT last_id uuid)
    AS 'MODULE_PATHNAME', 'card_rotate_keys_batch'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION card.rotate_keys_batch(integer, uuid) FROM PUBLIC;

-- Re-encrypts every PAN under the newest key version, committing after
-- each batch: no lock lives longer than a batch, an interrupted run keeps
-- what it committed, and calling it again resumes.  A procedure that
-- commits may not fix its search_path: its body names only
-- card.rotate_keys_batch, schema-qualified, and it is the superuser's alone.
CREATE PROCEDURE card.rotate_keys(batch_size integer DEFAULT 1000)
    LANGUAGE plpgsql
AS $$
DECLARE
    step record;
    rotated bigint := 0;
    after uuid;
BEGIN
    LOOP
        SELECT * INTO step FROM card.rotate_keys_batch(batch_size, after);
        COMMIT;
        rotated := rotated + step.rotated;
        after := step.last_id;
        RAISE NOTICE 'rotate_keys: % PANs re-encrypted under key version % so far%',
            rotated, step.key_version, CASE WHEN step.done THEN ', done' ELSE '' END;
        EXIT WHEN step.done IS NOT FALSE;
    END LOOP;
END
$$;
REVOKE ALL ON PROCEDURE card.rotate_keys(integer) FROM PUBLIC;
