/* card--1.0.sql: a card-issuing programme inside PostgreSQL */

\echo Use "CREATE EXTENSION card" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Types
-- ---------------------------------------------------------------------------

CREATE TYPE card.card_status AS ENUM
    ('not_activated', 'active', 'frozen', 'blocked', 'lost', 'stolen', 'expired');

CREATE TYPE card.card_type AS ENUM ('virtual', 'physical');

-- ---------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------

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
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- A cardholder.
CREATE TABLE card.individual (
    id              uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    programme_id    uuid NOT NULL REFERENCES card.programme,
    name            text NOT NULL CHECK (pg_catalog.length(name) BETWEEN 1 AND 200),
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE (id, programme_id)
);

-- The account a card spends from; balances in minor units.
CREATE TABLE card.account (
    id              uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    programme_id    uuid NOT NULL REFERENCES card.programme,
    individual_id   uuid NOT NULL,
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status          text NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'frozen', 'closed')),
    balance         bigint NOT NULL DEFAULT 0,
    held            bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE (id, programme_id),
    FOREIGN KEY (individual_id, programme_id)
        REFERENCES card.individual (id, programme_id),
    CONSTRAINT account_held_covered CHECK (held >= 0 AND held <= balance)
);

-- Who may hold cards on an account: its holder and authorised users.
CREATE TABLE card.account_member (
    account_id      uuid NOT NULL,
    individual_id   uuid NOT NULL,
    programme_id    uuid NOT NULL,
    role            text NOT NULL CHECK (role IN ('holder', 'authorised')),
    added_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (account_id, individual_id),
    FOREIGN KEY (account_id, programme_id) REFERENCES card.account (id, programme_id),
    FOREIGN KEY (individual_id, programme_id) REFERENCES card.individual (id, programme_id)
);

-- One row per card.  Columns named as the JSON API's fields are public;
-- pan_ciphertext, pan_key_version, pan_fingerprint and pin_hash are secret
-- and shown by no view or function.
CREATE TABLE card.card (
    id                  uuid PRIMARY KEY,
    programme_id        uuid NOT NULL,
    account_id          uuid NOT NULL,
    individual_id       uuid NOT NULL,
    display_name        text NOT NULL,
    type                card.card_type NOT NULL,
    status              card.card_status NOT NULL DEFAULT 'not_activated',
    exp_month           text NOT NULL CHECK (exp_month ~ '^(0[1-9]|1[0-2])$'),
    exp_year            text NOT NULL CHECK (exp_year ~ '^[0-9]{4}$'),
    -- first day (UTC) on which the card is expired
    expires_on          date NOT NULL GENERATED ALWAYS AS
                        ((pg_catalog.make_date(exp_year::integer, exp_month::integer, 1)
                          + interval '1 month')::date) STORED,
    last4               text NOT NULL CHECK (last4 ~ '^[0-9]{4}$'),
    token               text NOT NULL UNIQUE,
    pan_ciphertext      bytea NOT NULL,
    pan_key_version     smallint NOT NULL CHECK (pan_key_version > 0),
    pan_fingerprint     bytea NOT NULL,
    pin_hash            bytea,
    idempotency_key     text,
    order_request_hash  bytea,
    replacement_for     uuid REFERENCES card.card,
    created_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE (programme_id, pan_fingerprint),
    UNIQUE (programme_id, idempotency_key),
    FOREIGN KEY (account_id, programme_id) REFERENCES card.account (id, programme_id),
    FOREIGN KEY (individual_id, programme_id) REFERENCES card.individual (id, programme_id),
    CHECK ((idempotency_key IS NULL) = (order_request_hash IS NULL))
);

CREATE INDEX card_account_idx ON card.card (account_id);
CREATE INDEX card_individual_idx ON card.card (individual_id);
CREATE INDEX card_expiry_due_idx ON card.card (expires_on)
    WHERE status IN ('not_activated', 'active', 'frozen');

-- The audit trail: one row per status change, the first when ordered.
CREATE TABLE card.card_status_change (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    card_id         uuid NOT NULL REFERENCES card.card,
    from_status     card.card_status,
    to_status       card.card_status NOT NULL,
    reason          text,
    channel         text NOT NULL
                    CHECK (channel IN ('api', 'holder', 'operator', 'system', 'fraud')),
    actor           name NOT NULL,
    changed_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);

CREATE INDEX card_status_change_card_idx ON card.card_status_change (card_id, id);

-- Activation links: the one-time token is kept only as a keyed hash.
CREATE TABLE card.activation (
    token_hash      bytea PRIMARY KEY,
    card_id         uuid NOT NULL REFERENCES card.card,
    return_url      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expires_at      timestamptz NOT NULL,
    consumed_at     timestamptz,
    outcome         text CHECK (outcome IN ('completed', 'superseded')),
    CHECK ((consumed_at IS NULL) = (outcome IS NULL))
);

CREATE INDEX activation_pending_idx ON card.activation (card_id)
    WHERE consumed_at IS NULL;

-- pg_dump keeps the data of these tables.
SELECT pg_catalog.pg_extension_config_dump('card.programme', '');
SELECT pg_catalog.pg_extension_config_dump('card.individual', '');
SELECT pg_catalog.pg_extension_config_dump('card.account', '');
SELECT pg_catalog.pg_extension_config_dump('card.account_member', '');
SELECT pg_catalog.pg_extension_config_dump('card.card', '');
SELECT pg_catalog.pg_extension_config_dump('card.card_status_change', '');
SELECT pg_catalog.pg_extension_config_dump('card.card_status_change_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('card.activation', '');

-- ---------------------------------------------------------------------------
-- The public view: what the JSON API returns, nothing secret.  A live card
-- whose expiry month has ended shows as expired before the sweep records it.
-- ---------------------------------------------------------------------------

CREATE VIEW card.cards AS
SELECT c.id,
       c.display_name,
       c.type,
       p.brand,
       p.region,
       c.exp_month,
       c.exp_year,
       c.last4,
       a.currency,
       c.account_id,
       c.individual_id,
       CASE WHEN c.status IN ('not_activated', 'active', 'frozen')
                 AND c.expires_on <= (pg_catalog.now() AT TIME ZONE 'UTC')::date
            THEN 'expired'::card.card_status
            ELSE c.status
       END AS status
  FROM card.card c
  JOIN card.programme p ON p.id = c.programme_id
  JOIN card.account a ON a.id = c.account_id;

-- ---------------------------------------------------------------------------
-- Lifecycle: the C trigger enforces DESIGN.md section 5 on every write
-- ---------------------------------------------------------------------------

CREATE FUNCTION card.card_status_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'card_status_guard' LANGUAGE C;

CREATE FUNCTION card.card_status_audit() RETURNS trigger
    AS 'MODULE_PATHNAME', 'card_status_audit' LANGUAGE C;

CREATE TRIGGER card_status_guard
    BEFORE UPDATE OF status, type, exp_month, exp_year ON card.card
    FOR EACH ROW EXECUTE FUNCTION card.card_status_guard();

CREATE TRIGGER card_status_audit
    AFTER UPDATE OF status ON card.card
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION card.card_status_audit();

CREATE FUNCTION card.card_status_transitions(
    OUT from_status card.card_status, OUT to_status card.card_status,
    OUT rule text, OUT who_may text)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'card_status_transitions'
    LANGUAGE C IMMUTABLE PARALLEL SAFE ROWS 49;

-- ---------------------------------------------------------------------------
-- Set-up, for the programme's operator
-- ---------------------------------------------------------------------------

CREATE FUNCTION card.programme_create(
    name text, bin text, brand text DEFAULT 'visa', region text DEFAULT 'europe',
    pan_length integer DEFAULT 16, validity_years integer DEFAULT 3,
    activation_ttl interval DEFAULT '30 minutes')
    RETURNS uuid
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id uuid;
BEGIN
    IF name IS NULL OR bin IS NULL OR brand IS NULL OR region IS NULL
       OR pan_length IS NULL OR validity_years IS NULL OR activation_ttl IS NULL THEN
        RAISE EXCEPTION 'programme % is required', CASE
            WHEN name IS NULL THEN 'name' WHEN bin IS NULL THEN 'bin'
            WHEN brand IS NULL THEN 'brand' WHEN region IS NULL THEN 'region'
            WHEN pan_length IS NULL THEN 'pan_length'
            WHEN validity_years IS NULL THEN 'validity_years'
            ELSE 'activation_ttl' END
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
    IF region !~ '^[a-z][a-z_]{1,31}$' THEN
        RAISE EXCEPTION 'invalid region "%"', region
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A region is a lower-case word such as europe or north_america.';
    END IF;
    IF pan_length NOT BETWEEN 13 AND 19 OR pan_length < length(bin) + 5 THEN
        RAISE EXCEPTION 'invalid pan_length %', pan_length
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A PAN has 13 to 19 digits, at least 4 of them random after the BIN.';
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
    IF EXISTS (SELECT 1 FROM card.programme p WHERE p.name = programme_create.name) THEN
        RAISE EXCEPTION 'programme "%" already exists', name
            USING ERRCODE = 'unique_violation';
    END IF;

    INSERT INTO card.programme (name, bin, brand, region, pan_length, validity_years, activation_ttl)
    VALUES (name, bin, brand, region, pan_length, validity_years, activation_ttl)
    RETURNING id INTO new_id;
    RETURN new_id;
END
$$;

CREATE FUNCTION card.individual_create(programme_id uuid, name text)
    RETURNS uuid
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id uuid;
BEGIN
    IF programme_id IS NULL OR name IS NULL THEN
        RAISE EXCEPTION '% is required', CASE WHEN programme_id IS NULL THEN 'programme_id' ELSE 'name' END
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF length(btrim(name)) = 0 OR length(name) > 200 THEN
        RAISE EXCEPTION 'invalid individual name "%"', name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A name has 1 to 200 characters.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM card.programme p WHERE p.id = individual_create.programme_id) THEN
        RAISE EXCEPTION 'programme % does not exist', programme_id
            USING ERRCODE = 'no_data_found';
    END IF;
    INSERT INTO card.individual (programme_id, name)
    VALUES (programme_id, name)
    RETURNING id INTO new_id;
    RETURN new_id;
END
$$;

CREATE FUNCTION card.account_open(programme_id uuid, individual_id uuid, currency text DEFAULT 'EUR')
    RETURNS uuid
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id uuid;
    holder_programme uuid;
BEGIN
    IF programme_id IS NULL OR individual_id IS NULL OR currency IS NULL THEN
        RAISE EXCEPTION '% is required', CASE WHEN programme_id IS NULL THEN 'programme_id'
            WHEN individual_id IS NULL THEN 'individual_id' ELSE 'currency' END
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF currency !~ '^[A-Z]{3}$' THEN
        RAISE EXCEPTION 'invalid currency "%"', currency
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use an ISO 4217 code such as EUR.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM card.programme p WHERE p.id = account_open.programme_id) THEN
        RAISE EXCEPTION 'programme % does not exist', programme_id
            USING ERRCODE = 'no_data_found';
    END IF;
    SELECT i.programme_id INTO holder_programme
      FROM card.individual i WHERE i.id = account_open.individual_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'individual % does not exist', individual_id
            USING ERRCODE = 'no_data_found';
    END IF;
    IF holder_programme <> programme_id THEN
        RAISE EXCEPTION 'individual % does not belong to programme %', individual_id, programme_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO card.account (programme_id, individual_id, currency)
    VALUES (programme_id, individual_id, currency)
    RETURNING id INTO new_id;
    INSERT INTO card.account_member (account_id, individual_id, programme_id, role)
    VALUES (new_id, individual_id, programme_id, 'holder');
    RETURN new_id;
END
$$;

CREATE FUNCTION card.account_member_add(account_id uuid, individual_id uuid)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    account_programme uuid;
    member_programme uuid;
BEGIN
    IF account_id IS NULL OR individual_id IS NULL THEN
        RAISE EXCEPTION '% is required', CASE WHEN account_id IS NULL THEN 'account_id' ELSE 'individual_id' END
            USING ERRCODE = 'not_null_violation';
    END IF;
    SELECT a.programme_id INTO account_programme
      FROM card.account a WHERE a.id = account_member_add.account_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', account_id USING ERRCODE = 'no_data_found';
    END IF;
    SELECT i.programme_id INTO member_programme
      FROM card.individual i WHERE i.id = account_member_add.individual_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'individual % does not exist', individual_id USING ERRCODE = 'no_data_found';
    END IF;
    IF member_programme <> account_programme THEN
        RAISE EXCEPTION 'individual % and account % belong to different programmes', individual_id, account_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO card.account_member (account_id, individual_id, programme_id, role)
    VALUES (account_id, individual_id, account_programme, 'authorised')
    ON CONFLICT DO NOTHING;
END
$$;

-- ---------------------------------------------------------------------------
-- Cards
-- ---------------------------------------------------------------------------

CREATE FUNCTION card.card_order(
    individual_id uuid, account_id uuid, display_name text,
    exp_month text DEFAULT NULL, exp_year text DEFAULT NULL,
    type card.card_type DEFAULT 'virtual', idempotency_key text DEFAULT NULL)
    RETURNS card.cards
    AS 'MODULE_PATHNAME', 'card_order'
    LANGUAGE C VOLATILE;

CREATE FUNCTION card.card_set_status(
    card_id uuid, status card.card_status, reason text DEFAULT NULL,
    channel text DEFAULT 'api')
    RETURNS card.cards
    AS 'MODULE_PATHNAME', 'card_set_status'
    LANGUAGE C VOLATILE;

CREATE FUNCTION card.card_expire_due(as_of date DEFAULT CURRENT_DATE)
    RETURNS integer
    AS 'MODULE_PATHNAME', 'card_expire_due'
    LANGUAGE C VOLATILE;

CREATE FUNCTION card.card_activation_start(card_id uuid, return_url text)
    RETURNS TABLE (redirect_url text, expires_at timestamptz)
    AS 'MODULE_PATHNAME', 'card_activation_start'
    LANGUAGE C VOLATILE ROWS 1;

CREATE FUNCTION card.card_activation_complete(activation_token text, pin text)
    RETURNS TABLE (card_id uuid, status card.card_status, return_url text)
    AS 'MODULE_PATHNAME', 'card_activation_complete'
    LANGUAGE C VOLATILE ROWS 1;

-- The processor-facing token of a card.
CREATE FUNCTION card.card_token(card_id uuid)
    RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result text;
BEGIN
    SELECT c.token INTO result FROM card.card c WHERE c.id = card_token.card_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'card % does not exist', card_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN result;
END
$$;

-- Facts about a stored PAN, never the PAN: for operators and tests.
CREATE FUNCTION card.pan_check(card_id uuid,
    OUT pan_length integer, OUT luhn_valid boolean, OUT bin_matches boolean,
    OUT last4_matches boolean, OUT fingerprint_matches boolean)
    AS 'MODULE_PATHNAME', 'card_pan_check'
    LANGUAGE C STRICT VOLATILE;

-- ---------------------------------------------------------------------------
-- JSON forms for HTTP layers (DESIGN.md section 1)
-- ---------------------------------------------------------------------------

-- A string field of a request object: NULL when absent or JSON null.
CREATE FUNCTION card.json_text_field(request jsonb, field text)
    RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT request ? field OR jsonb_typeof(request -> field) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(request -> field) <> 'string' THEN
        RAISE EXCEPTION 'field "%" must be a string', field
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN request ->> field;
END
$$;

CREATE FUNCTION card.json_uuid_field(request jsonb, field text)
    RETURNS uuid
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    value text := card.json_text_field(request, field);
BEGIN
    IF value IS NULL THEN
        RETURN NULL;
    END IF;
    IF value !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        RAISE EXCEPTION 'field "%" must be a UUID', field
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN value::uuid;
END
$$;

-- Refuse a request that is not an object or has fields outside allowed.
CREATE FUNCTION card.json_check_fields(request jsonb, what text, allowed text[])
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    unknown text;
BEGIN
    IF request IS NULL OR jsonb_typeof(request) <> 'object' THEN
        RAISE EXCEPTION '% must be a JSON object', what
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT k INTO unknown FROM jsonb_object_keys(request) AS k
     WHERE k <> ALL (allowed) ORDER BY k LIMIT 1;
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown field "%" in %', unknown, what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Allowed fields: %s.', array_to_string(allowed, ', '));
    END IF;
END
$$;

-- POST /v3/cards
CREATE FUNCTION card.card_order(request jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    card_type text;
    result card.cards;
BEGIN
    PERFORM card.json_check_fields(request, 'card order',
        ARRAY['individual_id', 'account_id', 'display_name', 'exp_month',
              'exp_year', 'type', 'idempotency_key']);
    card_type := coalesce(card.json_text_field(request, 'type'), 'virtual');
    IF card_type NOT IN ('virtual', 'physical') THEN
        RAISE EXCEPTION 'invalid card type "%"', card_type
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use virtual or physical.';
    END IF;
    result := card.card_order(
        individual_id   => card.json_uuid_field(request, 'individual_id'),
        account_id      => card.json_uuid_field(request, 'account_id'),
        display_name    => card.json_text_field(request, 'display_name'),
        exp_month       => card.json_text_field(request, 'exp_month'),
        exp_year        => card.json_text_field(request, 'exp_year'),
        type            => card_type::card.card_type,
        idempotency_key => card.json_text_field(request, 'idempotency_key'));
    RETURN to_jsonb(result);
END
$$;

-- PATCH /v3/cards/:id with {"status": ...} or {"return_url": ...}
CREATE FUNCTION card.card_update(card_id uuid, request jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_status text;
    return_url text;
    link record;
BEGIN
    PERFORM card.json_check_fields(request, 'card update',
        ARRAY['status', 'return_url', 'reason', 'channel']);
    new_status := card.json_text_field(request, 'status');
    return_url := card.json_text_field(request, 'return_url');
    IF new_status IS NOT NULL AND return_url IS NOT NULL THEN
        RAISE EXCEPTION 'card update takes either "status" or "return_url", not both'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF return_url IS NOT NULL THEN
        IF request ?| ARRAY['reason', 'channel'] THEN
            RAISE EXCEPTION '"reason" and "channel" go with "status" only'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT * INTO link FROM card.card_activation_start(card_id, return_url);
        RETURN jsonb_build_object('redirect_url', link.redirect_url,
                                  'expires_at', link.expires_at);
    END IF;
    IF new_status IS NULL THEN
        RAISE EXCEPTION 'card update needs "status" or "return_url"'
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF new_status = 'block' THEN
        new_status := 'blocked';
    ELSIF new_status NOT IN ('active', 'frozen', 'blocked', 'lost', 'stolen') THEN
        RAISE EXCEPTION 'invalid status "%"', new_status
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use active, frozen, block, lost or stolen.';
    END IF;
    RETURN to_jsonb(card.card_set_status(
        card_id => card_id,
        status  => new_status::card.card_status,
        reason  => card.json_text_field(request, 'reason'),
        channel => coalesce(card.json_text_field(request, 'channel'), 'api')));
END
$$;

-- ---------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC; roles come with a later version.
-- ---------------------------------------------------------------------------

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA card FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA card FROM PUBLIC;
