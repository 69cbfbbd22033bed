/* card--1.7--1.8.sql: ids and tokens carry their shard (issue 15) */

\echo Use "ALTER EXTENSION card UPDATE TO '1.8'" to load this file. \quit


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

-- Makes a programme, granted to the role that makes it (programme_create,
-- and programme_adopt on the other shards).  A PAN length its brand does
-- not issue is refused (22023), right after the BIN range check.
CREATE FUNCTION card_internal.programme_make(
    name text, bin text, brand text DEFAULT 'visa', region text DEFAULT 'europe',
    pan_length integer DEFAULT 16, validity_years integer DEFAULT 3,
    activation_ttl interval DEFAULT '30 minutes', hold_lifetime interval DEFAULT '7 days')
    RETURNS uuid
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id uuid;
BEGIN
    IF name IS NULL OR bin IS NULL OR brand IS NULL OR region IS NULL
       OR pan_length IS NULL OR validity_years IS NULL OR activation_ttl IS NULL
       OR hold_lifetime IS NULL THEN
        RAISE EXCEPTION 'programme % is required', CASE
            WHEN name IS NULL THEN 'name' WHEN bin IS NULL THEN 'bin'
            WHEN brand IS NULL THEN 'brand' WHEN region IS NULL THEN 'region'
            WHEN pan_length IS NULL THEN 'pan_length'
            WHEN validity_years IS NULL THEN 'validity_years'
            WHEN activation_ttl IS NULL THEN 'activation_ttl'
            ELSE 'hold_lifetime' END
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF length(name) NOT BETWEEN 1 AND 100 THEN
        RAISE EXCEPTION 'invalid programme name "%"', name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A programme name has 1 to 100 characters.';
    END IF;
    IF bin !~ '^([0-9]{6}|[0-9]{8})$' THEN
        RAISE EXCEPTION 'invalid bin "%"', bin
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A BIN is 6 or 8 digits.';
    END IF;
    IF brand NOT IN ('visa', 'mastercard') THEN
        RAISE EXCEPTION 'invalid brand "%"', brand
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use visa or mastercard.';
    END IF;
    IF (brand = 'visa' AND bin !~ '^4')
       OR (brand = 'mastercard' AND NOT (substr(bin, 1, 2) BETWEEN '51' AND '55'
                                         OR substr(bin, 1, 4) BETWEEN '2221' AND '2720')) THEN
        RAISE EXCEPTION 'bin "%" is not a % range', bin, brand
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Visa BINs start with 4; Mastercard BINs with 51-55 or 2221-2720.';
    END IF;
    -- Every length a brand issues leaves at least 8 random digits after an
    -- 8-digit BIN, more than the 4 the table's check asks for.
    IF NOT pan_length = ANY (card.brand_pan_lengths(brand)) THEN
        RAISE EXCEPTION 'invalid pan_length % for brand %', pan_length, brand
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = card.brand_pan_lengths_hint(brand);
    END IF;
    IF region !~ '^[a-z][a-z_]{1,31}$' THEN
        RAISE EXCEPTION 'invalid region "%"', region
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A region is a lower-case word such as europe or north_america.';
    END IF;
    IF validity_years NOT BETWEEN 1 AND 10 THEN
        RAISE EXCEPTION 'invalid validity_years %', validity_years
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use 1 to 10 years.';
    END IF;
    IF activation_ttl <= interval '0' OR activation_ttl > interval '7 days' THEN
        RAISE EXCEPTION 'invalid activation_ttl %', activation_ttl
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'An activation link lives more than 0 and at most 7 days.';
    END IF;
    IF hold_lifetime <= interval '0' OR hold_lifetime > interval '31 days' THEN
        RAISE EXCEPTION 'invalid hold_lifetime %', hold_lifetime
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A hold lives more than 0 and at most 31 days.';
    END IF;
    IF NOT card.caller_sees_all() AND card.role_is_shared(card.caller()) THEN
        RAISE EXCEPTION 'a programme cannot be created acting as the shared role "%"', card.caller()
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'It would be granted to every tenant''s roles that hold it.',
                  HINT = 'Create it as your own role (RESET ROLE).';
    END IF;
    IF EXISTS (SELECT 1 FROM card.programme p WHERE p.name = programme_make.name) THEN
        RAISE EXCEPTION 'programme "%" already exists', name
            USING ERRCODE = 'unique_violation';
    END IF;

    INSERT INTO card.programme (name, bin, brand, region, pan_length, validity_years,
                                activation_ttl, hold_lifetime)
    VALUES (name, bin, brand, region, pan_length, validity_years, activation_ttl, hold_lifetime)
    RETURNING id INTO new_id;
    -- The creator's role sees it; a superuser grants it to whom it is for.
    IF NOT card.caller_sees_all() THEN
        INSERT INTO card.programme_role (programme_id, role_name) VALUES (new_id, card.caller());
    END IF;
    RETURN new_id;
END
$$;
REVOKE ALL ON FUNCTION card_internal.programme_make(text, text, text, text, integer, integer, interval, interval) FROM PUBLIC;
-- Creates a programme.  On a shard k > 0 of a scale-out it is refused:
-- shard 0 makes every programme and the others adopt it with its seal
-- (card.programme_adopt), so that no role that may log in to one shard
-- takes there a name or an id shard 0 did not give out.
CREATE OR REPLACE FUNCTION card_internal.programme_create(
    name text, bin text, brand text DEFAULT 'visa', region text DEFAULT 'europe',
    pan_length integer DEFAULT 16, validity_years integer DEFAULT 3,
    activation_ttl interval DEFAULT '30 minutes', hold_lifetime interval DEFAULT '7 days')
    RETURNS uuid
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF card.shard() <> 0 THEN
        RAISE EXCEPTION 'programmes are made on shard 0, not on shard %', card.shard()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Call card.programme_create through the proxy; this shard adopts it.';
    END IF;
    RETURN card_internal.programme_make(name, bin, brand, region, pan_length, validity_years,
                                        activation_ttl, hold_lifetime);
END
$$;

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

ALTER TABLE card.individual ALTER id SET DEFAULT card.new_id();
ALTER TABLE card.account ALTER id SET DEFAULT card.new_id();

-- The reference inside psql: the new functions' comments.
COMMENT ON FUNCTION card.shard() IS
    'This server''s number among the shards of a scale-out (the setting card.shard; 0 on a single server). All five roles.';
COMMENT ON FUNCTION card.shard_of(uuid) IS
    'The shard that made an id: the number a version 8 id made on shard k > 0 carries, else 0 (every id of a single server). What a proxy routes a call by. All five roles.';
COMMENT ON FUNCTION card.shard_of_token(text) IS
    'The shard of a card or link token: k for "<prefix>k.<random>", 0 for a token without the marker or a value that is no token. All five roles.';
COMMENT ON FUNCTION card.new_id() IS
    'A new id of this shard, time-ordered (version 7 on shard 0, version 8 carrying the shard and the same time prefix elsewhere): the default id of individuals and accounts, and the form of every card id. All five roles.';
COMMENT ON FUNCTION card.programme_adopt(uuid, bytea, text, text, text, text, integer, integer, interval, interval) IS
    'Creates on this shard, with the given id, a programme shard 0 created (the scale-out proxy''s programme_create runs it on every shard), only with the programme''s seal from shard 0 (42501 otherwise) and never on shard 0 (P0002): the same checks and grant as programme_create; the same id and configuration again returns the id; another configuration under that id is 23505. card_admin.';
COMMENT ON FUNCTION card.programme_seal(uuid) IS
    'The seal of a programme the caller sees: a keyed MAC of its id and configuration, which card.programme_adopt on another shard requires (scale-out). card_admin.';
