-- programme.sql: the issuer configuration a card is ordered under, and the
-- PAN lengths of each brand (DESIGN.md sections 3 and 10).

-- The issuer configuration a card is ordered under.
CREATE TABLE card.programme (
    id              uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    name            text NOT NULL UNIQUE
                    CHECK (pg_catalog.length(name) BETWEEN 1 AND 100),
    bin             text NOT NULL CHECK (bin ~ '^([0-9]{6}|[0-9]{8})$'),
    brand           text NOT NULL CHECK (brand IN ('visa', 'mastercard')),
    region          text NOT NULL CHECK (region ~ '^[a-z][a-z_]{1,31}$'),
    pan_length      smallint NOT NULL DEFAULT 16
                    CHECK (pan_length BETWEEN 13 AND 19
                           AND pan_length >= pg_catalog.length(bin) + 5),
    validity_years  smallint NOT NULL DEFAULT 3
                    CHECK (validity_years BETWEEN 1 AND 10),
    activation_ttl  interval NOT NULL DEFAULT '30 minutes'
                    CHECK (activation_ttl > '0' AND activation_ttl <= '7 days'),
    hold_lifetime   interval NOT NULL DEFAULT '7 days'
                    CHECK (hold_lifetime > '0' AND hold_lifetime <= '31 days'),
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
SELECT pg_catalog.pg_extension_config_dump('card.programme', '');
GRANT SELECT (id, brand, region) ON card.programme TO card_admin, card_api, card_reader;

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
CREATE FUNCTION card_internal.programme_create(
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
REVOKE ALL ON FUNCTION card_internal.programme_create(text, text, text, text, integer, integer, interval, interval) FROM PUBLIC;
CREATE FUNCTION card.programme_create(name text, bin text, brand text DEFAULT 'visa'::text,
    region text DEFAULT 'europe'::text, pan_length integer DEFAULT 16,
    validity_years integer DEFAULT 3,
    activation_ttl interval DEFAULT '00:30:00'::interval,
    hold_lifetime interval DEFAULT '7 days'::interval)
    RETURNS uuid
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.programme_create(text, text, text, text, integer, integer, interval, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.programme_create(text, text, text, text, integer, integer, interval, interval) TO card_admin;

-- The PAN lengths each brand issues (DESIGN.md section 3): Mastercard 16,
-- Visa 16 or 19 (13 is a legacy Visa length that checkout forms refuse).
-- The one statement of the rule, next to the BIN ranges of
-- programme_create: that function, the trigger on changes of
-- card.programme, card_order and card_replace (CARD_PAN_LENGTH_COLUMNS in
-- src/card.h) and the 1.2 update's report of older programmes all read it
-- here.  An unknown brand has none.
CREATE FUNCTION card.brand_pan_lengths(brand text) RETURNS integer[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE brand WHEN 'visa' THEN ARRAY[16, 19] WHEN 'mastercard' THEN ARRAY[16] END;
REVOKE ALL ON FUNCTION card.brand_pan_lengths(text) FROM PUBLIC;

-- The hint of every refusal of a length: "A visa PAN has 16 or 19 digits."
CREATE FUNCTION card.brand_pan_lengths_hint(brand text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN pg_catalog.format('A %s PAN has %s digits.', brand,
                         coalesce(pg_catalog.array_to_string(card.brand_pan_lengths(brand), ' or '), 'no'));
REVOKE ALL ON FUNCTION card.brand_pan_lengths_hint(text) FROM PUBLIC;

-- Any later change of a programme's brand or PAN length, a direct UPDATE
-- by the owner included, must leave a length the brand issues (22023, the
-- same refusal as programme_create's).  A trigger rather than a table
-- check: a check added NOT VALID would still test every row a pg_dump
-- restore loads, so a database holding a programme of 1.1 with a length
-- now refused could no longer be restored; it would answer 23514 without
-- the hint; and it would refuse any change to such a programme, even a
-- new name, rather than only a change that sets a refused length.  Inserts
-- are not checked, as on card.card: programme_create checks what it
-- inserts, and a restore must reload a programme of 1.1 as it was.
CREATE FUNCTION card.programme_pan_length_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT NEW.pan_length = ANY (card.brand_pan_lengths(NEW.brand)) THEN
        RAISE EXCEPTION 'invalid pan_length % for brand %', NEW.pan_length, NEW.brand
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = pg_catalog.format('Programme "%s" (%s) keeps its brand and PAN length.',
                                             OLD.name, OLD.id),
                  HINT = card.brand_pan_lengths_hint(NEW.brand);
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION card.programme_pan_length_guard() FROM PUBLIC;
CREATE TRIGGER programme_pan_length_guard
    BEFORE UPDATE OF brand, pan_length ON card.programme
    FOR EACH ROW
    WHEN (NEW.brand IS DISTINCT FROM OLD.brand OR NEW.pan_length IS DISTINCT FROM OLD.pan_length)
    EXECUTE FUNCTION card.programme_pan_length_guard();
