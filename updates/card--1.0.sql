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
    hold_lifetime   interval NOT NULL DEFAULT '7 days'
                    CHECK (hold_lifetime > '0' AND hold_lifetime <= '31 days'),
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
    -- spend controls (section 8): as set, and the parts card_authorize checks
    controls            jsonb NOT NULL DEFAULT '{}',
    mcc_allowed         int4multirange,
    mcc_blocked         int4multirange,
    countries_allowed   text[],
    countries_blocked   text[],
    channels_blocked    text[] NOT NULL DEFAULT '{}',
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
    -- spend controls (section 8): as set, and the parts card_authorize checks
    controls            jsonb NOT NULL DEFAULT '{}',
    mcc_allowed         int4multirange,
    mcc_blocked         int4multirange,
    countries_allowed   text[],
    countries_blocked   text[],
    channels_blocked    text[] NOT NULL DEFAULT '{}',
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

-- The status a card really has: a live card whose expiry month has ended
-- (expires_on, the first day after it, is today or earlier in UTC) is expired
-- for every purpose, even before card.card_expire_due() records it.  The
-- lifecycle trigger applies the same rule in C (src/status.c).
CREATE FUNCTION card.effective_status(status card.card_status, expires_on date)
    RETURNS card.card_status
    LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN status IN ('not_activated', 'active', 'frozen')
                 AND expires_on <= (pg_catalog.now() AT TIME ZONE 'UTC')::date
            THEN 'expired'::card.card_status
            ELSE status
       END;

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
       card.effective_status(c.status, c.expires_on) AS status
  FROM card.card c
  JOIN card.programme p ON p.id = c.programme_id
  JOIN card.account a ON a.id = c.account_id;

-- ---------------------------------------------------------------------------
-- Lifecycle: the C trigger enforces DESIGN.md section 5 on every write
-- ---------------------------------------------------------------------------

CREATE FUNCTION card.card_status_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'card_status_guard'
    LANGUAGE C
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION card.card_status_audit() RETURNS trigger
    AS 'MODULE_PATHNAME', 'card_status_audit'
    LANGUAGE C
    SET search_path = pg_catalog, pg_temp;

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
    LANGUAGE C IMMUTABLE PARALLEL SAFE ROWS 49
    SET search_path = pg_catalog, pg_temp;

-- ---------------------------------------------------------------------------
-- Set-up, for the programme's operator
-- ---------------------------------------------------------------------------

CREATE FUNCTION card.programme_create(
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
    IF hold_lifetime <= interval '0' OR hold_lifetime > interval '31 days' THEN
        RAISE EXCEPTION 'invalid hold_lifetime %', hold_lifetime
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A hold lives more than 0 and at most 31 days.';
    END IF;
    IF EXISTS (SELECT 1 FROM card.programme p WHERE p.name = programme_create.name) THEN
        RAISE EXCEPTION 'programme "%" already exists', name
            USING ERRCODE = 'unique_violation';
    END IF;

    INSERT INTO card.programme (name, bin, brand, region, pan_length, validity_years,
                                activation_ttl, hold_lifetime)
    VALUES (name, bin, brand, region, pan_length, validity_years, activation_ttl, hold_lifetime)
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
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION card.card_set_status(
    card_id uuid, status card.card_status, reason text DEFAULT NULL,
    channel text DEFAULT 'api')
    RETURNS card.cards
    AS 'MODULE_PATHNAME', 'card_set_status'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION card.card_expire_due(
    as_of date DEFAULT (pg_catalog.now() AT TIME ZONE 'UTC')::date)
    RETURNS integer
    AS 'MODULE_PATHNAME', 'card_expire_due'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION card.card_activation_start(card_id uuid, return_url text)
    RETURNS TABLE (redirect_url text, expires_at timestamptz)
    AS 'MODULE_PATHNAME', 'card_activation_start'
    LANGUAGE C VOLATILE ROWS 1
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION card.card_activation_complete(activation_token text, pin text)
    RETURNS TABLE (card_id uuid, status card.card_status, return_url text)
    AS 'MODULE_PATHNAME', 'card_activation_complete'
    LANGUAGE C VOLATILE ROWS 1
    SET search_path = pg_catalog, pg_temp;

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
    LANGUAGE C STRICT VOLATILE
    SET search_path = pg_catalog, pg_temp;

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
-- Spend controls and real-time funding (DESIGN.md section 8)
-- ---------------------------------------------------------------------------

-- Enums rather than CHECK lists on the hot tables: PostgreSQL re-reads every
-- CHECK expression for each statement that writes a table, and an enum
-- costs nothing there.
CREATE TYPE card.spend_interval AS ENUM
    ('per_authorization', 'daily', 'weekly', 'monthly', 'yearly', 'all_time');
CREATE TYPE card.authorization_status AS ENUM
    ('declined', 'pending', 'captured', 'reversed', 'expired');
CREATE TYPE card.decline_reason AS ENUM
    ('card_not_active', 'card_expired', 'account_not_active', 'currency_mismatch',
     'channel_blocked', 'country_blocked', 'category_blocked', 'spending_limit',
     'insufficient_funds');

-- Credits to an account, one per reference.
CREATE TABLE card.account_credit (
    account_id      uuid NOT NULL REFERENCES card.account,
    reference       text NOT NULL CHECK (pg_catalog.length(reference) BETWEEN 1 AND 200),
    amount          bigint NOT NULL CHECK (amount > 0),
    credited_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (account_id, reference)
);

-- Spending limits of a card or an account, in the order they were set,
-- each with its running spend in its current window: what authorisations
-- add and reversals, expiries and partial captures give back.  An
-- authorisation reads and updates one row per applicable limit, whatever
-- the card's history; a new window starts from zero.
CREATE TABLE card.spend_limit (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    card_id         uuid REFERENCES card.card ON DELETE CASCADE,
    account_id      uuid REFERENCES card.account ON DELETE CASCADE,
    position        integer NOT NULL,
    period          card.spend_interval NOT NULL,
    amount          bigint NOT NULL CHECK (amount > 0),
    categories      int4multirange,     -- NULL: every category
    category_list   text[],             -- the categories as they were set
    window_start    timestamptz,        -- the window spent counts in
    spent           bigint NOT NULL DEFAULT 0 CHECK (spent >= 0),
    CHECK (num_nonnulls(card_id, account_id) = 1),
    CHECK ((period = 'per_authorization') = (window_start IS NULL))
);
CREATE INDEX spend_limit_card_idx ON card.spend_limit (card_id) WHERE card_id IS NOT NULL;
CREATE INDEX spend_limit_account_idx ON card.spend_limit (account_id) WHERE account_id IS NOT NULL;

-- Every authorisation decision; approvals hold money until captured,
-- reversed or expired.  held + captured + released = the approved amount.
-- No foreign keys on this hot path: rows are written only by card_authorize
-- from the card and account rows it has just read under the account lock,
-- and neither can be deleted while it has an audit trail (card) or cards
-- (account, programme).  A foreign key would cost a quarter of an
-- authorisation and lock the shared programme row on every payment.
CREATE TABLE card."authorization" (
    id                  uuid PRIMARY KEY,
    programme_id        uuid NOT NULL,
    card_id             uuid NOT NULL,
    account_id          uuid NOT NULL,
    external_id         text NOT NULL,
    amount              bigint NOT NULL CHECK (amount > 0),
    currency            text NOT NULL,
    mcc                 text NOT NULL,
    merchant_country    text NOT NULL,
    channel             text NOT NULL,
    merchant_name       text,
    approved            boolean NOT NULL,
    decline_reason      card.decline_reason,
    status              card.authorization_status NOT NULL,
    held                bigint NOT NULL DEFAULT 0,
    captured            bigint NOT NULL DEFAULT 0,
    released            bigint NOT NULL DEFAULT 0,
    available_after     bigint NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expires_at          timestamptz,
    resolved_at         timestamptz,
    UNIQUE (programme_id, external_id),
    -- one CHECK, so that it is read once per statement
    CONSTRAINT authorization_consistent CHECK (
        amount > 0 AND held >= 0 AND captured >= 0 AND released >= 0
        AND approved = (decline_reason IS NULL)
        AND approved = (status <> 'declined')
        AND (status = 'pending') = (held > 0)
        AND held + captured + released = CASE WHEN approved THEN amount ELSE 0 END)
);
CREATE INDEX authorization_card_idx ON card."authorization" (card_id, created_at);
CREATE INDEX authorization_pending_idx ON card."authorization" (expires_at)
    WHERE status = 'pending';

SELECT pg_catalog.pg_extension_config_dump('card.account_credit', '');
SELECT pg_catalog.pg_extension_config_dump('card.spend_limit', '');
SELECT pg_catalog.pg_extension_config_dump('card.spend_limit_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('card.authorization', '');

-- Balances as an app shows them.
CREATE VIEW card.balances AS
SELECT a.id AS account_id, a.currency, a.balance, a.held, a.balance - a.held AS available
  FROM card.account a;

-- The calendar window (UTC) of a limit period that contains a moment:
-- days from 00:00, ISO weeks from Monday, months, years; all_time is one window.
-- The body is parsed once, here (so no search_path applies at run time),
-- and the planner inlines it into card_authorize's statements.
CREATE FUNCTION card.spend_window_start(period card.spend_interval, at timestamptz)
    RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE period
    WHEN 'daily'    THEN pg_catalog.date_trunc('day',   at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    WHEN 'weekly'   THEN pg_catalog.date_trunc('week',  at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    WHEN 'monthly'  THEN pg_catalog.date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    WHEN 'yearly'   THEN pg_catalog.date_trunc('year',  at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    WHEN 'all_time' THEN '-infinity'::timestamptz
END;

-- When the window that starts at window_start ends (NULL: never).
CREATE FUNCTION card.spend_window_end(period card.spend_interval, window_start timestamptz)
    RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ((window_start AT TIME ZONE 'UTC') + CASE period
    WHEN 'daily'    THEN interval '1 day'
    WHEN 'weekly'   THEN interval '7 days'
    WHEN 'monthly'  THEN interval '1 month'
    WHEN 'yearly'   THEN interval '1 year'
END) AT TIME ZONE 'UTC';

-- Funds an account; one credit per reference (a repeat returns the balance).
CREATE FUNCTION card.account_credit(account_id uuid, amount bigint, reference text,
    OUT balance bigint, OUT held bigint, OUT available bigint)
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    first_amount bigint;
    account_status text;
BEGIN
    IF account_id IS NULL OR amount IS NULL OR reference IS NULL THEN
        RAISE EXCEPTION '% is required', CASE WHEN account_id IS NULL THEN 'account_id'
            WHEN amount IS NULL THEN 'amount' ELSE 'reference' END
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF amount <= 0 THEN
        RAISE EXCEPTION 'credit amount must be positive, not %', amount
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Amounts are in minor units of the account currency.';
    END IF;
    IF length(reference) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'invalid credit reference'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A reference has 1 to 200 characters.';
    END IF;
    SELECT a.status INTO account_status FROM card.account a WHERE a.id = account_credit.account_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', account_id USING ERRCODE = 'no_data_found';
    END IF;
    IF account_status = 'closed' THEN
        RAISE EXCEPTION 'account % is closed', account_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;

    INSERT INTO card.account_credit AS c (account_id, reference, amount)
    VALUES (account_credit.account_id, reference, amount)
    ON CONFLICT ON CONSTRAINT account_credit_pkey DO NOTHING;
    IF FOUND THEN
        UPDATE card.account a SET balance = a.balance + amount
         WHERE a.id = account_credit.account_id
        RETURNING a.balance, a.held, a.balance - a.held INTO balance, held, available;
        PERFORM card.event_emit('account.credited', NULL, account_credit.account_id,
            (SELECT a.programme_id FROM card.account a WHERE a.id = account_credit.account_id),
            jsonb_build_object('amount', amount, 'reference', reference,
                               'balance', balance, 'available', available));
    ELSE
        SELECT c.amount INTO first_amount FROM card.account_credit c
         WHERE c.account_id = account_credit.account_id AND c.reference = account_credit.reference;
        IF first_amount <> amount THEN
            RAISE EXCEPTION 'credit reference "%" of account % was already used for amount %',
                reference, account_id, first_amount
                USING ERRCODE = 'unique_violation',
                      HINT = 'Use a new reference for a new credit.';
        END IF;
        SELECT a.balance, a.held, a.balance - a.held INTO balance, held, available
          FROM card.account a WHERE a.id = account_credit.account_id;
    END IF;
END
$$;

-- A category list ("5812", "5813-5814") as a multirange; refuses bad entries.
CREATE FUNCTION card.controls_categories(list jsonb, field text)
    RETURNS int4multirange
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    entry jsonb;
    parts text[];
    result int4multirange := '{}';
BEGIN
    IF jsonb_typeof(list) <> 'array' THEN
        RAISE EXCEPTION 'controls field "%" must be an array of categories', field
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR entry IN SELECT e FROM jsonb_array_elements(list) e LOOP
        IF jsonb_typeof(entry) <> 'string' OR entry #>> '{}' !~ '^[0-9]{4}(-[0-9]{4})?$' THEN
            RAISE EXCEPTION 'controls field "%" has an invalid category %', field, entry
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'A category is a 4-digit MCC such as "5812" or a range such as "5813-5814".';
        END IF;
        parts := string_to_array(entry #>> '{}', '-');
        IF parts[2] IS NOT NULL AND parts[2] < parts[1] THEN
            RAISE EXCEPTION 'controls field "%" has an empty category range %', field, entry
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        result := result + int4multirange(int4range(parts[1]::int, coalesce(parts[2], parts[1])::int, '[]'));
    END LOOP;
    IF result = '{}' THEN
        RAISE EXCEPTION 'controls field "%" must not be empty', field
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN result;
END
$$;

-- A country list (ISO 3166 alpha-2) as a sorted array; refuses bad entries.
CREATE FUNCTION card.controls_countries(list jsonb, field text)
    RETURNS text[]
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    entry jsonb;
    result text[] := '{}';
BEGIN
    IF jsonb_typeof(list) <> 'array' OR jsonb_array_length(list) = 0 THEN
        RAISE EXCEPTION 'controls field "%" must be a non-empty array of countries', field
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR entry IN SELECT e FROM jsonb_array_elements(list) e LOOP
        IF jsonb_typeof(entry) <> 'string' OR entry #>> '{}' !~ '^[A-Z]{2}$' THEN
            RAISE EXCEPTION 'controls field "%" has an invalid country %', field, entry
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'A country is an ISO 3166 alpha-2 code such as "SE".';
        END IF;
        result := result || (entry #>> '{}');
    END LOOP;
    RETURN result;
END
$$;

-- Validates a controls document whole and stores it on a card or an
-- account (exactly one of the two ids), replacing the earlier controls.
-- Counters of the new limits start from the spend already in their window,
-- so replacing controls never resets a limit.
CREATE FUNCTION card.controls_apply(target_card uuid, target_account uuid, controls jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    unknown text;
    lim jsonb;
    n integer := 0;
    lim_amount bigint;
    lim_period card.spend_interval;
    lim_categories int4multirange;
    new_mcc_allowed int4multirange;
    new_mcc_blocked int4multirange;
    new_countries_allowed text[];
    new_countries_blocked text[];
    new_channels_blocked text[] := '{}';
    channel_name text;
    channel_value jsonb;
BEGIN
    IF controls IS NULL OR jsonb_typeof(controls) <> 'object' THEN
        RAISE EXCEPTION 'controls must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT k INTO unknown FROM jsonb_object_keys(controls) k
     WHERE k NOT IN ('spending_limits', 'allowed_categories', 'blocked_categories',
                     'allowed_countries', 'blocked_countries', 'channels') ORDER BY k LIMIT 1;
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown controls field "%"', unknown
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Fields: spending_limits, allowed_categories | blocked_categories, allowed_countries | blocked_countries, channels.';
    END IF;
    IF controls ? 'allowed_categories' AND controls ? 'blocked_categories' THEN
        RAISE EXCEPTION 'allowed_categories and blocked_categories are mutually exclusive'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF controls ? 'allowed_countries' AND controls ? 'blocked_countries' THEN
        RAISE EXCEPTION 'allowed_countries and blocked_countries are mutually exclusive'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF controls ? 'allowed_categories' THEN
        new_mcc_allowed := card.controls_categories(controls -> 'allowed_categories', 'allowed_categories');
    END IF;
    IF controls ? 'blocked_categories' THEN
        new_mcc_blocked := card.controls_categories(controls -> 'blocked_categories', 'blocked_categories');
    END IF;
    IF controls ? 'allowed_countries' THEN
        new_countries_allowed := card.controls_countries(controls -> 'allowed_countries', 'allowed_countries');
    END IF;
    IF controls ? 'blocked_countries' THEN
        new_countries_blocked := card.controls_countries(controls -> 'blocked_countries', 'blocked_countries');
    END IF;
    IF controls ? 'channels' THEN
        IF jsonb_typeof(controls -> 'channels') <> 'object' THEN
            RAISE EXCEPTION 'controls field "channels" must be an object of booleans'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR channel_name, channel_value IN SELECT * FROM jsonb_each(controls -> 'channels') LOOP
            IF channel_name NOT IN ('ecommerce', 'atm', 'contactless', 'chip', 'magstripe') THEN
                RAISE EXCEPTION 'unknown channel "%" in controls field "channels"', channel_name
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Channels: ecommerce, atm, contactless, chip, magstripe.';
            END IF;
            IF jsonb_typeof(channel_value) <> 'boolean' THEN
                RAISE EXCEPTION 'channels.% must be true or false', channel_name
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF NOT channel_value::boolean THEN
                new_channels_blocked := new_channels_blocked || channel_name;
            END IF;
        END LOOP;
    END IF;
    IF controls ? 'spending_limits' AND jsonb_typeof(controls -> 'spending_limits') <> 'array' THEN
        RAISE EXCEPTION 'controls field "spending_limits" must be an array'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- Lock the account, as card_authorize does for every card on it: limits
    -- and counters change only under that lock.  Then replace.
    IF target_card IS NOT NULL THEN
        PERFORM 1 FROM card.account a
         WHERE a.id = (SELECT c.account_id FROM card.card c WHERE c.id = target_card)
           FOR NO KEY UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'card % does not exist', target_card USING ERRCODE = 'no_data_found';
        END IF;
        DELETE FROM card.spend_limit l WHERE l.card_id = target_card;
    ELSE
        PERFORM 1 FROM card.account a WHERE a.id = target_account FOR NO KEY UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'account % does not exist', target_account USING ERRCODE = 'no_data_found';
        END IF;
        DELETE FROM card.spend_limit l WHERE l.account_id = target_account;
    END IF;

    FOR lim IN SELECT e FROM jsonb_array_elements(coalesce(controls -> 'spending_limits', '[]')) e LOOP
        n := n + 1;
        IF jsonb_typeof(lim) <> 'object' THEN
            RAISE EXCEPTION 'spending_limits[%] must be an object', n - 1
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT k INTO unknown FROM jsonb_object_keys(lim) k
         WHERE k NOT IN ('amount', 'interval', 'categories') ORDER BY k LIMIT 1;
        IF unknown IS NOT NULL THEN
            RAISE EXCEPTION 'unknown field "%" in spending_limits[%]', unknown, n - 1
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'A limit has amount, interval and optionally categories.';
        END IF;
        IF jsonb_typeof(lim -> 'amount') IS DISTINCT FROM 'number'
           OR (lim ->> 'amount') !~ '^[0-9]{1,18}$' OR (lim ->> 'amount')::bigint <= 0 THEN
            RAISE EXCEPTION 'spending_limits[%].amount must be a positive whole number of minor units', n - 1
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        lim_amount := (lim ->> 'amount')::bigint;
        IF jsonb_typeof(lim -> 'interval') IS DISTINCT FROM 'string' OR (lim ->> 'interval') NOT IN
           ('per_authorization', 'daily', 'weekly', 'monthly', 'yearly', 'all_time') THEN
            RAISE EXCEPTION 'spending_limits[%].interval must be one of per_authorization, daily, weekly, monthly, yearly, all_time', n - 1
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        lim_period := (lim ->> 'interval')::card.spend_interval;
        lim_categories := NULL;
        IF lim ? 'categories' THEN
            lim_categories := card.controls_categories(lim -> 'categories',
                                                       format('spending_limits[%s].categories', n - 1));
        END IF;

        -- The spend already in the current window counts against the new limit.
        INSERT INTO card.spend_limit (card_id, account_id, position, period, amount,
                                      categories, category_list, window_start, spent)
        SELECT target_card, target_account, n, lim_period, lim_amount, lim_categories,
               CASE WHEN lim ? 'categories'
                    THEN ARRAY(SELECT jsonb_array_elements_text(lim -> 'categories')) END,
               w.start,
               CASE WHEN w.start IS NULL THEN 0 ELSE
                 (SELECT coalesce(sum(h.held + h.captured), 0)
                    FROM card."authorization" h
                   WHERE h.approved
                     AND h.card_id IN (SELECT c.id FROM card.card c
                                        WHERE c.id = target_card OR c.account_id = target_account)
                     AND h.created_at >= w.start
                     AND (lim_categories IS NULL OR lim_categories @> h.mcc::integer)) END
          FROM (SELECT CASE WHEN lim_period <> 'per_authorization'
                            THEN card.spend_window_start(lim_period, now()) END AS start) w;
    END LOOP;

    IF target_card IS NOT NULL THEN
        UPDATE card.card c
           SET controls = controls_apply.controls, mcc_allowed = new_mcc_allowed,
               mcc_blocked = new_mcc_blocked,
               countries_allowed = new_countries_allowed,
               countries_blocked = new_countries_blocked,
               channels_blocked = new_channels_blocked
         WHERE c.id = target_card;
    ELSE
        UPDATE card.account a
           SET controls = controls_apply.controls, mcc_allowed = new_mcc_allowed,
               mcc_blocked = new_mcc_blocked,
               countries_allowed = new_countries_allowed,
               countries_blocked = new_countries_blocked,
               channels_blocked = new_channels_blocked
         WHERE a.id = target_account;
    END IF;
    PERFORM card.event_emit('card.controls_updated', target_card, o.account_id, o.programme_id,
                            jsonb_build_object('scope', CASE WHEN target_card IS NULL
                                                             THEN 'account' ELSE 'card' END,
                                               'controls', controls))
       FROM (SELECT c.account_id, c.programme_id FROM card.card c WHERE c.id = target_card
             UNION ALL
             SELECT a.id, a.programme_id FROM card.account a WHERE a.id = target_account) o;
    RETURN controls;
END
$$;

CREATE FUNCTION card.card_set_controls(card_id uuid, controls jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF card_id IS NULL THEN
        RAISE EXCEPTION 'card_id is required' USING ERRCODE = 'not_null_violation';
    END IF;
    RETURN card.controls_apply(card_id, NULL, controls);
END
$$;

CREATE FUNCTION card.account_set_controls(account_id uuid, controls jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF account_id IS NULL THEN
        RAISE EXCEPTION 'account_id is required' USING ERRCODE = 'not_null_violation';
    END IF;
    RETURN card.controls_apply(NULL, account_id, controls);
END
$$;

CREATE FUNCTION card.card_controls(card_id uuid)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result jsonb;
BEGIN
    SELECT c.controls INTO result FROM card.card c WHERE c.id = card_controls.card_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'card % does not exist', card_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN result;
END
$$;

CREATE FUNCTION card.account_controls(account_id uuid)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result jsonb;
BEGIN
    SELECT a.controls INTO result FROM card.account a WHERE a.id = account_controls.account_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', account_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN result;
END
$$;

-- Real-time authorisation by card token (C: src/authorize.c).
CREATE FUNCTION card.card_authorize(card_token text, amount bigint, currency text, mcc text,
    merchant_country text, channel text, external_id text, merchant_name text DEFAULT NULL)
    RETURNS TABLE (authorization_id uuid, approved boolean, decline_reason text, available bigint)
    AS 'MODULE_PATHNAME', 'card_authorize'
    LANGUAGE C VOLATILE ROWS 1
    SET search_path = pg_catalog, pg_temp;

-- Moves money out of a pending hold: capture (posted) and release (freed)
-- amounts; the hold stays pending while anything is left of it.  Gives
-- released amounts back to the limits counted in the hold's windows.
CREATE FUNCTION card.hold_settle(hold card."authorization", capture_amount bigint,
                                 release_amount bigint,
                                 final_status card.authorization_status)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    left_held bigint := hold.held - capture_amount - release_amount;
BEGIN
    UPDATE card.account a
       SET balance = a.balance - capture_amount,
           held = a.held - capture_amount - release_amount
     WHERE a.id = hold.account_id;
    UPDATE card."authorization" h
       SET held = left_held,
           captured = h.captured + capture_amount,
           released = h.released + release_amount,
           status = CASE WHEN left_held = 0 THEN final_status ELSE 'pending' END,
           resolved_at = CASE WHEN left_held = 0 THEN now() END
     WHERE h.id = hold.id;
    PERFORM card.event_emit(('authorization.' || final_status)::card.event_type,
                            hold.card_id, hold.account_id, hold.programme_id,
                            jsonb_build_object('authorization_id', hold.id,
                                               'captured', capture_amount,
                                               'released', release_amount,
                                               'held', left_held,
                                               'status', CASE WHEN left_held = 0 THEN final_status::text
                                                              ELSE 'pending' END,
                                               'currency', hold.currency));
    IF release_amount > 0 THEN
        UPDATE card.spend_limit l
           SET spent = l.spent - release_amount
         WHERE (l.card_id = hold.card_id OR l.account_id = hold.account_id)
           AND l.period <> 'per_authorization'
           AND (l.categories IS NULL OR l.categories @> hold.mcc::integer)
           AND l.window_start = card.spend_window_start(l.period, hold.created_at);
    END IF;
END
$$;

-- The pending hold of an authorisation, locked; refuses any other.
CREATE FUNCTION card.hold_lock(authorization_id uuid, amount bigint, verb text)
    RETURNS card."authorization"
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    hold card."authorization";
BEGIN
    IF authorization_id IS NULL THEN
        RAISE EXCEPTION 'authorization_id is required' USING ERRCODE = 'not_null_violation';
    END IF;
    SELECT * INTO hold FROM card."authorization" h WHERE h.id = hold_lock.authorization_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'authorization % does not exist', authorization_id
            USING ERRCODE = 'no_data_found';
    END IF;
    IF hold.status <> 'pending' THEN
        RAISE EXCEPTION 'authorization % is % and cannot be %', authorization_id, hold.status, verb
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = CASE WHEN hold.status = 'declined' THEN 'A declined authorization holds nothing.'
                              ELSE 'A hold resolves once: captured, reversed or expired.' END;
    END IF;
    IF amount IS NOT NULL AND amount <= 0 THEN
        RAISE EXCEPTION 'amount to be % must be positive, not %', verb, amount
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF amount > hold.held THEN
        RAISE EXCEPTION 'authorization % holds %, less than the % to be %', authorization_id,
            hold.held, amount, verb
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN hold;
END
$$;

CREATE FUNCTION card.authorization_capture(authorization_id uuid, amount bigint DEFAULT NULL,
    OUT status text, OUT captured bigint, OUT released bigint, OUT held bigint,
    OUT available bigint)
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    hold card."authorization" := card.hold_lock(authorization_id, amount, 'captured');
    take bigint := coalesce(amount, hold.held);
BEGIN
    PERFORM card.hold_settle(hold, take, hold.held - take, 'captured');
    SELECT h.status, h.captured, h.released, h.held, a.balance - a.held
      INTO status, captured, released, held, available
      FROM card."authorization" h JOIN card.account a ON a.id = h.account_id
     WHERE h.id = hold.id;
END
$$;

CREATE FUNCTION card.authorization_reverse(authorization_id uuid, amount bigint DEFAULT NULL,
    OUT status text, OUT captured bigint, OUT released bigint, OUT held bigint,
    OUT available bigint)
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    hold card."authorization" := card.hold_lock(authorization_id, amount, 'reversed');
BEGIN
    PERFORM card.hold_settle(hold, 0, coalesce(amount, hold.held), 'reversed');
    SELECT h.status, h.captured, h.released, h.held, a.balance - a.held
      INTO status, captured, released, held, available
      FROM card."authorization" h JOIN card.account a ON a.id = h.account_id
     WHERE h.id = hold.id;
END
$$;

-- Releases every hold past its programme's hold lifetime; returns how many.
-- Holds being captured or reversed right now are skipped, not waited for.
CREATE FUNCTION card.authorization_expire_due(as_of timestamptz DEFAULT now())
    RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    hold card."authorization";
    expired integer := 0;
BEGIN
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'as_of is required' USING ERRCODE = 'not_null_violation';
    END IF;
    FOR hold IN SELECT * FROM card."authorization" h
                 WHERE h.status = 'pending' AND h.expires_at <= as_of
                 ORDER BY h.expires_at
                 FOR UPDATE SKIP LOCKED
    LOOP
        PERFORM card.hold_settle(hold, 0, hold.held, 'expired');
        expired := expired + 1;
    END LOOP;
    RETURN expired;
END
$$;

-- Per limit of a card and of its account: the amount, what the current
-- window has spent, what remains, and when the window started and resets.
CREATE FUNCTION card.card_spend_status(card_id uuid)
    RETURNS TABLE (scope text, "interval" text, amount bigint, categories text[],
                   spent bigint, remaining bigint, window_start timestamptz, resets_at timestamptz)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    owner_account uuid;
BEGIN
    SELECT c.account_id INTO owner_account FROM card.card c WHERE c.id = card_spend_status.card_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'card % does not exist', card_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN QUERY
    SELECT CASE WHEN l.card_id IS NOT NULL THEN 'card' ELSE 'account' END,
           l.period::text, l.amount, l.category_list,
           s.spent, greatest(l.amount - s.spent, 0), w.start, card.spend_window_end(l.period, w.start)
      FROM card.spend_limit l
      CROSS JOIN LATERAL (SELECT CASE WHEN l.period = 'per_authorization' THEN NULL
                                      ELSE card.spend_window_start(l.period, now()) END AS start) w
      CROSS JOIN LATERAL (SELECT CASE WHEN l.window_start = w.start THEN l.spent
                                      ELSE 0 END AS spent) s
     WHERE l.card_id = card_spend_status.card_id OR l.account_id = owner_account
     ORDER BY l.card_id IS NULL, l.position;
END
$$;

-- ---------------------------------------------------------------------------
-- Live feed of events (DESIGN.md section 9)
-- ---------------------------------------------------------------------------

CREATE TYPE card.event_type AS ENUM
    ('card.ordered', 'card.status_changed', 'card.activated', 'card.controls_updated',
     'authorization.approved', 'authorization.declined', 'authorization.captured',
     'authorization.reversed', 'authorization.expired', 'account.credited');

-- CACHE 1 (the default) matters: seq values are handed out in the order
-- transactions ask for them, which card.events_after relies on.
CREATE SEQUENCE card.event_seq;

-- Append-only: one row per change, written in the transaction of the change.
CREATE TABLE card.event (
    seq             bigint PRIMARY KEY DEFAULT pg_catalog.nextval('card.event_seq'::pg_catalog.regclass),
    occurred_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    type            card.event_type NOT NULL,
    card_id         uuid,
    account_id      uuid,
    programme_id    uuid,
    data            jsonb NOT NULL DEFAULT '{}'
);
ALTER SEQUENCE card.event_seq OWNED BY card.event.seq;
CREATE INDEX event_occurred_at_idx ON card.event (occurred_at);

-- Consumers that want retention to wait for them register their cursor.
CREATE TABLE card.event_consumer (
    name            text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,100}$'),
    cursor          bigint NOT NULL DEFAULT 0 CHECK (cursor >= 0),
    registered_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    acked_at        timestamptz
);

SELECT pg_catalog.pg_extension_config_dump('card.event', '');
SELECT pg_catalog.pg_extension_config_dump('card.event_seq', '');
SELECT pg_catalog.pg_extension_config_dump('card.event_consumer', '');

CREATE FUNCTION card.event_append_only() RETURNS trigger
    AS 'MODULE_PATHNAME', 'card_event_append_only'
    LANGUAGE C
    SET search_path = pg_catalog, pg_temp;

CREATE TRIGGER event_append_only
    BEFORE UPDATE ON card.event
    FOR EACH ROW EXECUTE FUNCTION card.event_append_only();

-- Writes one event in the current transaction and queues the transaction's
-- NOTIFY card_events; returns its seq (NULL when card.events is off).
CREATE FUNCTION card.event_emit(type card.event_type, card_id uuid, account_id uuid,
                                programme_id uuid, data jsonb)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'card_event_emit'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;

-- Events after a cursor, in seq order, never one that an event still in
-- flight could precede (see README: "Why events_after never skips").
CREATE FUNCTION card.events_after(cursor bigint, max integer DEFAULT 100)
    RETURNS SETOF card.event
    AS 'MODULE_PATHNAME', 'card_events_after'
    LANGUAGE C VOLATILE STRICT ROWS 100
    SET search_path = pg_catalog, pg_temp;

-- Registers a consumer (or finds it) and returns its stored cursor.
CREATE FUNCTION card.consumer_register(name text, start_after bigint DEFAULT 0)
    RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result bigint;
BEGIN
    IF name IS NULL OR start_after IS NULL THEN
        RAISE EXCEPTION '% is required', CASE WHEN name IS NULL THEN 'name' ELSE 'start_after' END
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF name !~ '^[A-Za-z0-9_.-]{1,100}$' THEN
        RAISE EXCEPTION 'invalid consumer name "%"', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use 1 to 100 letters, digits, ".", "_" or "-".';
    END IF;
    INSERT INTO card.event_consumer AS c (name, cursor) VALUES (name, start_after)
    ON CONFLICT ON CONSTRAINT event_consumer_pkey DO NOTHING;
    SELECT c.cursor INTO result FROM card.event_consumer c WHERE c.name = consumer_register.name;
    RETURN result;
END
$$;

-- Stores how far a consumer has read; a cursor never moves back.
CREATE FUNCTION card.consumer_ack(name text, cursor bigint)
    RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result bigint;
BEGIN
    IF name IS NULL OR cursor IS NULL THEN
        RAISE EXCEPTION '% is required', CASE WHEN name IS NULL THEN 'name' ELSE 'cursor' END
            USING ERRCODE = 'not_null_violation';
    END IF;
    UPDATE card.event_consumer c
       SET cursor = greatest(c.cursor, consumer_ack.cursor), acked_at = now()
     WHERE c.name = consumer_ack.name
    RETURNING c.cursor INTO result;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'consumer "%" is not registered', name
            USING ERRCODE = 'no_data_found', HINT = 'Register it with card.consumer_register().';
    END IF;
    RETURN result;
END
$$;

CREATE FUNCTION card.consumer_unregister(name text)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM card.event_consumer c WHERE c.name = consumer_unregister.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'consumer "%" is not registered', name USING ERRCODE = 'no_data_found';
    END IF;
END
$$;

-- Deletes events older than before that every registered consumer has read;
-- returns how many.
CREATE FUNCTION card.events_prune(before timestamptz)
    RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    slowest bigint;
    pruned bigint;
BEGIN
    IF before IS NULL THEN
        RAISE EXCEPTION 'before is required' USING ERRCODE = 'not_null_violation';
    END IF;
    -- Lock the registry so that no consumer registers or falls behind meanwhile.
    LOCK TABLE card.event_consumer IN SHARE MODE;
    SELECT min(c.cursor) INTO slowest FROM card.event_consumer c;
    DELETE FROM card.event e
     WHERE e.occurred_at < before
       AND (slowest IS NULL OR e.seq <= slowest);
    GET DIAGNOSTICS pruned = ROW_COUNT;
    RETURN pruned;
END
$$;

-- ---------------------------------------------------------------------------
-- Privileges (DESIGN.md section 10): roles per capability.  Nothing for
-- PUBLIC; no role writes a table directly; the entry points run as the
-- extension's owner (SECURITY DEFINER, fixed search_path) and are granted
-- to the roles that need them.  Roles are cluster-wide, so an install in a
-- second database finds them already there.
-- ---------------------------------------------------------------------------

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

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA card FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA card FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA card FROM PUBLIC;

-- The entry points: every function a role may call.
DO $$
DECLARE
    fn regprocedure;
BEGIN
    FOR fn IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = 'card'::regnamespace
           AND p.proname IN ('programme_create', 'individual_create', 'account_open',
                             'account_member_add', 'account_credit', 'account_set_controls',
                             'account_controls', 'card_order', 'card_set_status', 'card_update',
                             'card_activation_start', 'card_activation_complete',
                             'card_set_controls', 'card_controls', 'card_spend_status',
                             'card_token', 'card_expire_due', 'pan_check', 'card_authorize',
                             'authorization_capture', 'authorization_reverse',
                             'authorization_expire_due', 'events_after', 'events_prune',
                             'consumer_register', 'consumer_ack', 'consumer_unregister')
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s SECURITY DEFINER', fn);
    END LOOP;
END
$$;

GRANT USAGE ON SCHEMA card TO card_admin, card_api, card_processor, card_hosted_pages, card_reader;

-- card_admin: programmes, individuals, accounts, funding, sweeps, retention.
GRANT EXECUTE ON FUNCTION
    card.programme_create(text, text, text, text, integer, integer, interval, interval),
    card.individual_create(uuid, text),
    card.account_open(uuid, uuid, text),
    card.account_member_add(uuid, uuid),
    card.account_credit(uuid, bigint, text),
    card.account_set_controls(uuid, jsonb),
    card.account_controls(uuid),
    card.card_expire_due(date),
    card.authorization_expire_due(timestamptz),
    card.events_prune(timestamptz),
    card.pan_check(uuid),
    card.card_status_transitions()
    TO card_admin;

-- card_api: ordering, status, controls, activation start, reading.
GRANT EXECUTE ON FUNCTION
    card.card_order(uuid, uuid, text, text, text, card.card_type, text),
    card.card_order(jsonb),
    card.card_set_status(uuid, card.card_status, text, text),
    card.card_update(uuid, jsonb),
    card.card_activation_start(uuid, text),
    card.card_set_controls(uuid, jsonb),
    card.card_controls(uuid),
    card.account_set_controls(uuid, jsonb),
    card.account_controls(uuid),
    card.account_credit(uuid, bigint, text),
    card.card_spend_status(uuid),
    card.card_token(uuid),
    card.card_status_transitions()
    TO card_api;

-- card_processor: authorise, capture, reverse, expire holds.
GRANT EXECUTE ON FUNCTION
    card.card_authorize(text, bigint, text, text, text, text, text, text),
    card.authorization_capture(uuid, bigint),
    card.authorization_reverse(uuid, bigint),
    card.authorization_expire_due(timestamptz)
    TO card_processor;

-- card_hosted_pages: what only the hosted pages may do.
GRANT EXECUTE ON FUNCTION
    card.card_activation_complete(text, text)
    TO card_hosted_pages;

-- card_reader: read-only views, controls and spend status, the feed.
GRANT EXECUTE ON FUNCTION
    card.card_controls(uuid),
    card.account_controls(uuid),
    card.card_spend_status(uuid),
    card.card_status_transitions(),
    card.events_after(bigint, integer),
    card.consumer_register(text, bigint),
    card.consumer_ack(text, bigint),
    card.consumer_unregister(text)
    TO card_reader;

GRANT SELECT ON card.cards, card.balances TO card_admin, card_api, card_reader;
GRANT SELECT ON card.event TO card_reader;
