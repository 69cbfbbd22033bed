-- shard.sql: which shard an id or a token belongs to, for a proxy that
-- routes each call to the shard holding its data (scale-out, issue 15;
-- C: src/shard.c).  On a single server everything is shard 0.

CREATE FUNCTION card.shard()
    RETURNS integer
    AS 'MODULE_PATHNAME', 'card_shard_sql'
    LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION card.shard_of(id uuid)
    RETURNS integer
    AS 'MODULE_PATHNAME', 'card_shard_of'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION card.shard_of_token(token text)
    RETURNS integer
    AS 'MODULE_PATHNAME', 'card_shard_of_token'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION card.shard(), card.shard_of(uuid), card.shard_of_token(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.shard(), card.shard_of(uuid), card.shard_of_token(text)
    TO card_admin, card_api, card_processor, card_hosted_pages, card_reader;

-- A new (time-ordered) id of this shard: the default of the tables whose rows the
-- extension inserts without an id of its own making (callable by the roles
-- that a table's default is evaluated for).
CREATE FUNCTION card.new_id()
    RETURNS uuid
    AS 'MODULE_PATHNAME', 'card_new_id'
    LANGUAGE C VOLATILE PARALLEL SAFE;
REVOKE ALL ON FUNCTION card.new_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.new_id()
    TO card_admin, card_api, card_processor, card_hosted_pages, card_reader;

-- A programme's seal: the keyed MAC (the key file's mac key, which every
-- shard shares) of its id and configuration.  Shard 0 gives it to a caller
-- that sees the programme there; another shard makes a programme only with
-- it (card.programme_adopt), so that nobody makes on some shards a
-- programme shard 0 never made (a name squatted where it is free, or one id
-- with two configurations).
CREATE FUNCTION card_internal.programme_mac(config text)
    RETURNS bytea
    AS 'MODULE_PATHNAME', 'card_programme_mac'
    LANGUAGE C IMMUTABLE STRICT;
REVOKE ALL ON FUNCTION card_internal.programme_mac(text) FROM PUBLIC;
-- The text a seal covers: id and configuration, the intervals in ISO 8601
-- (months, days and time apart: '1 day' is not '24 hours', whose holds end
-- at another hour across a change of daylight saving time; and not the
-- session's IntervalStyle).
CREATE FUNCTION card_internal.programme_sealed_text(
    programme_id uuid, name text, bin text, brand text, region text, pan_length integer,
    validity_years integer, activation_ttl interval, hold_lifetime interval)
    RETURNS text
    LANGUAGE sql IMMUTABLE
    SET intervalstyle = 'iso_8601'
RETURN pg_catalog.jsonb_build_array(programme_id, name, bin, brand, region, pan_length, validity_years,
                                    activation_ttl::text, hold_lifetime::text)::text;
REVOKE ALL ON FUNCTION card_internal.programme_sealed_text(uuid, text, text, text, text, integer, integer, interval, interval) FROM PUBLIC;
CREATE FUNCTION card_internal.programme_seal(programme_id uuid)
    RETURNS bytea
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sealed bytea;
BEGIN
    IF card.shard() <> 0 THEN
        RAISE EXCEPTION 'programme seals are given by shard 0, not by shard %', card.shard()
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT card_internal.programme_mac(card_internal.programme_sealed_text(
               p.id, p.name, p.bin, p.brand, p.region, p.pan_length, p.validity_years,
               p.activation_ttl, p.hold_lifetime))
      INTO sealed
      FROM card.programme p
     WHERE p.id = programme_seal.programme_id AND card.programme_visible(p.id);
    IF sealed IS NULL THEN
        RAISE EXCEPTION 'programme % does not exist', programme_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN sealed;
END
$$;
REVOKE ALL ON FUNCTION card_internal.programme_seal(uuid) FROM PUBLIC;
CREATE FUNCTION card.programme_seal(programme_id uuid)
    RETURNS bytea
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.programme_seal(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.programme_seal(uuid) TO card_admin;

-- A programme shard 0 created, made here with the same id and
-- configuration (the proxy's programme_create: programmes exist on every
-- shard).  Only with the programme's seal from shard 0, and never on shard
-- 0 itself, where every programme is made by programme_create (P0002 for
-- an id it does not hold).  The same checks and grant as programme_create;
-- a second call with the same id and configuration returns the id (a retry
-- after a shard failed); another configuration under that id is 23505.
CREATE FUNCTION card_internal.programme_adopt(
    programme_id uuid, seal bytea, name text, bin text, brand text DEFAULT 'visa',
    region text DEFAULT 'europe', pan_length integer DEFAULT 16, validity_years integer DEFAULT 3,
    activation_ttl interval DEFAULT '30 minutes', hold_lifetime interval DEFAULT '7 days')
    RETURNS uuid
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    made uuid;
    granted boolean;
    sealed text;
    held text;
BEGIN
    IF programme_id IS NULL THEN
        RAISE EXCEPTION 'programme_id is required' USING ERRCODE = 'not_null_violation';
    END IF;
    sealed := card_internal.programme_sealed_text(programme_id, name, bin, brand, region, pan_length,
                                                  validity_years, activation_ttl, hold_lifetime);
    IF EXISTS (SELECT 1 FROM card.programme p WHERE p.id = programme_adopt.programme_id) THEN
        -- Another programme's id is one this caller cannot tell from none.
        SELECT card_internal.programme_sealed_text(p.id, p.name, p.bin, p.brand, p.region,
                   p.pan_length, p.validity_years, p.activation_ttl, p.hold_lifetime)
          INTO held
          FROM card.programme p
         WHERE p.id = programme_adopt.programme_id AND card.programme_visible(p.id);
        IF held IS NULL THEN
            RAISE EXCEPTION 'programme % does not exist', programme_id USING ERRCODE = 'no_data_found';
        ELSIF held = sealed THEN
            RETURN programme_id;
        END IF;
        RAISE EXCEPTION 'programme % already exists with another configuration', programme_id
            USING ERRCODE = 'unique_violation';
    END IF;
    IF card.shard() = 0 THEN
        RAISE EXCEPTION 'programme % does not exist', programme_id
            USING ERRCODE = 'no_data_found',
                  HINT = 'Shard 0 makes every programme (card.programme_create); the other shards adopt it.';
    END IF;
    IF seal IS DISTINCT FROM card_internal.programme_mac(sealed) THEN
        RAISE EXCEPTION 'the seal is not programme %''s as shard 0 made it', programme_id
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Pass card.programme_seal(programme_id) from shard 0, with the configuration shard 0 holds.';
    END IF;
    made := card_internal.programme_make(name, bin, brand, region, pan_length, validity_years,
                                         activation_ttl, hold_lifetime);
    -- Nothing else refers to the row made a moment ago but its grant.
    DELETE FROM card.programme_role g WHERE g.programme_id = made;
    granted := FOUND;
    UPDATE card.programme p SET id = programme_adopt.programme_id WHERE p.id = made;
    IF granted THEN
        INSERT INTO card.programme_role (programme_id, role_name)
        VALUES (programme_adopt.programme_id, card.caller());
    END IF;
    RETURN programme_id;
END
$$;
REVOKE ALL ON FUNCTION card_internal.programme_adopt(uuid, bytea, text, text, text, text, integer, integer, interval, interval) FROM PUBLIC;
CREATE FUNCTION card.programme_adopt(
    programme_id uuid, seal bytea, name text, bin text, brand text DEFAULT 'visa',
    region text DEFAULT 'europe', pan_length integer DEFAULT 16, validity_years integer DEFAULT 3,
    activation_ttl interval DEFAULT '30 minutes', hold_lifetime interval DEFAULT '7 days')
    RETURNS uuid
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.programme_adopt(uuid, bytea, text, text, text, text, integer, integer, interval, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.programme_adopt(uuid, bytea, text, text, text, text, integer, integer, interval, interval) TO card_admin;
