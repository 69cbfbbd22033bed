-- order.sql: the card, its view, and ordering (DESIGN.md sections 2-6;
-- C: src/order.c).

CREATE TYPE card.card_type AS ENUM (@CARD_TYPES@);

-- Why a card replaced another (replace.sql).
CREATE TYPE card.replacement_reason AS ENUM ('lost', 'stolen', 'damaged', 'expired');

-- One row per card.  Columns named as the JSON API's fields are public;
-- pan_ciphertext, pan_key_version, pan_fingerprint and pin_hash are secret
-- and shown by no view or function.
--
-- Replacement chains: a replacement names the card it replaces and why;
-- chain_id is the first card of the chain (NULL on that first card), under
-- which the chain's spending limits and PIN live.  A reissue keeps the
-- PAN: pan_sequence tells the cards of one PAN apart, and a PAN is unique
-- in the whole database, whatever the programme (two programmes sharing a
-- BIN could otherwise issue the same PAN).
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
    replacement_reason  card.replacement_reason,
    chain_id            uuid REFERENCES card.card,
    pan_sequence        smallint NOT NULL DEFAULT 0 CHECK (pan_sequence >= 0),
    pin_tries           smallint NOT NULL DEFAULT 0 CHECK (pin_tries BETWEEN 0 AND @CARD_PIN_TRIES@),
    -- expires_on while the card is live, else NULL: the expiry sweep's key
    -- (1.11).  The sweep's index named status in its predicate, and
    -- PostgreSQL cannot update a row in place (HOT) when a column an index
    -- reads changes: every freeze, unfreeze and activation wrote a new
    -- entry in each of the card's ten indexes.  This value changes only
    -- when a card ends.
    expiry_due          date GENERATED ALWAYS AS
                        (CASE WHEN status IN (@CARD_LIVE_STATUSES@)
                              THEN (pg_catalog.make_date(exp_year::integer, exp_month::integer, 1)
                                    + interval '1 month')::date END) STORED,
    CONSTRAINT card_pan_unique UNIQUE (pan_fingerprint, pan_sequence),
    UNIQUE (programme_id, idempotency_key),
    -- The cardholder is a member of the account, of the account's programme
    -- (the member's own keys tie it to the account and the individual).
    -- One key, not one to card.account and one to card.individual: each key
    -- is a look-up and a row lock per order, and a key to card.individual
    -- would have concurrent orders of one holder (a business's cards, a
    -- holder of many accounts) share its row's lock as a MultiXact each.
    FOREIGN KEY (account_id, individual_id, programme_id)
        REFERENCES card.account_member (account_id, individual_id, programme_id),
    CHECK ((idempotency_key IS NULL) = (order_request_hash IS NULL)),
    CONSTRAINT card_replacement_named
        CHECK ((replacement_for IS NULL) = (replacement_reason IS NULL)
               AND (replacement_for IS NULL) = (chain_id IS NULL))
)
-- Room on each page for a status change to stay on its page (HOT).
WITH (fillfactor = 90);
CREATE INDEX card_account_idx ON card.card (account_id);
CREATE INDEX card_individual_idx ON card.card (individual_id);
CREATE INDEX card_expiry_due_idx ON card.card (expiry_due) WHERE expiry_due IS NOT NULL;
SELECT pg_catalog.pg_extension_config_dump('card.card', '');
-- No statistics on what tenants write (1.7): the planner's estimates for a
-- query under row-level security come from every programme's rows, and
-- EXPLAIN would show another programme's most common values.
ALTER TABLE card.card ALTER display_name SET STATISTICS 0, ALTER last4 SET STATISTICS 0;
ALTER TABLE card.card ENABLE ROW LEVEL SECURITY;
CREATE POLICY programme_of_caller ON card.card
    USING (programme_id IN (SELECT card.visible_programmes()));
-- The columns the views show (and the keys their joins and policies use);
-- never pan_ciphertext, pan_fingerprint, pin_hash, token or the request hash.
GRANT SELECT (id, programme_id, account_id, individual_id, display_name, type, status,
              exp_month, exp_year, expires_on, last4, replacement_for, replacement_reason)
    ON card.card TO card_admin, card_api, card_reader;

-- A card as the API shows it.  The views read the tables as the querying
-- role, so its policies apply.
CREATE VIEW card.cards WITH (security_invoker = true) AS
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
GRANT SELECT ON card.cards TO card_admin, card_api, card_reader;

-- Orders a card (C: src/order.c): a new PAN under the account's programme,
-- one card per idempotency key.
CREATE FUNCTION card.card_order(
    individual_id uuid, account_id uuid, display_name text,
    exp_month text DEFAULT NULL, exp_year text DEFAULT NULL,
    type card.card_type DEFAULT 'virtual', idempotency_key text DEFAULT NULL)
    RETURNS card.cards
    AS 'MODULE_PATHNAME', 'card_order'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION card.card_order(uuid, uuid, text, text, text, card.card_type, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.card_order(uuid, uuid, text, text, text, card.card_type, text) TO card_api;

-- The processor-facing token of a card; another programme's card does not
-- exist for the caller.
CREATE FUNCTION card_internal.card_token(card_id uuid)
    RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result text;
BEGIN
    SELECT c.token INTO result FROM card.card c WHERE c.id = card_token.card_id
       AND card.programme_visible(c.programme_id);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'card % does not exist', card_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN result;
END
$$;
REVOKE ALL ON FUNCTION card_internal.card_token(uuid) FROM PUBLIC;
CREATE FUNCTION card.card_token(card_id uuid)
    RETURNS text
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION card.card_token(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.card_token(uuid) TO card_api;

-- POST /v3/cards
CREATE FUNCTION card_internal.card_order(request jsonb)
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
REVOKE ALL ON FUNCTION card_internal.card_order(jsonb) FROM PUBLIC;
CREATE FUNCTION card.card_order(request jsonb)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.card_order(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.card_order(jsonb) TO card_api;

-- GET /v3/cards/:id: the card as card.cards shows it, 404 (P0002) if the
-- caller does not see it.
CREATE FUNCTION card_internal.card_get(card_id uuid)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result jsonb;
BEGIN
    SELECT to_jsonb(c) INTO result FROM card.cards c
      JOIN card.card k ON k.id = c.id
     WHERE c.id = card_get.card_id AND card.programme_visible(k.programme_id);
    IF result IS NULL THEN
        RAISE EXCEPTION 'card % does not exist', card_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN result;
END
$$;
REVOKE ALL ON FUNCTION card_internal.card_get(uuid) FROM PUBLIC;
CREATE FUNCTION card.card_get(card_id uuid)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION card.card_get(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.card_get(uuid) TO card_admin, card_api, card_reader;

