/* card--1.5--1.6.sql: the JSON forms the HTTP API calls (issue 13) */

\echo Use "ALTER EXTENSION card UPDATE TO '1.6'" to load this file. \quit

-- DESIGN section 4: each function also has a jsonb -> jsonb form for HTTP
-- layers; card-server (section 13) calls these.

-- An integer field of a request object (a JSON number without a fraction
-- that fits bigint), refused (22023) otherwise: amounts are minor units.
CREATE FUNCTION card.json_bigint_field(request jsonb, field text)
    RETURNS bigint
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    value numeric;
BEGIN
    IF NOT request ? field OR jsonb_typeof(request -> field) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(request -> field) <> 'number' THEN
        RAISE EXCEPTION 'field "%" must be a number', field
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Amounts are integers in minor units, such as 1250 for 12.50.';
    END IF;
    value := (request -> field)::numeric;
    IF value <> trunc(value) OR value NOT BETWEEN -9223372036854775808 AND 9223372036854775807 THEN
        RAISE EXCEPTION 'field "%" must be a whole number within bigint', field
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Amounts are integers in minor units, such as 1250 for 12.50.';
    END IF;
    RETURN value::bigint;
END
$$;
REVOKE ALL ON FUNCTION card.json_bigint_field(jsonb, text) FROM PUBLIC;

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

-- POST /v3/individuals {"programme_id", "name"}: {"id"}.
CREATE FUNCTION card_internal.individual_create(request jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM card.json_check_fields(request, 'individual', ARRAY['programme_id', 'name']);
    RETURN jsonb_build_object('id', card.individual_create(
        card.json_uuid_field(request, 'programme_id'), card.json_text_field(request, 'name')));
END
$$;
REVOKE ALL ON FUNCTION card_internal.individual_create(jsonb) FROM PUBLIC;
CREATE FUNCTION card.individual_create(request jsonb)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.individual_create(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.individual_create(jsonb) TO card_admin;

-- POST /v3/accounts {"programme_id", "individual_id", "currency"}: the
-- account as card.account_get shows it.
CREATE FUNCTION card_internal.account_open(request jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    opened uuid;
BEGIN
    PERFORM card.json_check_fields(request, 'account',
        ARRAY['programme_id', 'individual_id', 'currency']);
    opened := card.account_open(card.json_uuid_field(request, 'programme_id'),
                                card.json_uuid_field(request, 'individual_id'),
                                coalesce(card.json_text_field(request, 'currency'), 'EUR'));
    RETURN card.account_get(opened);
END
$$;
REVOKE ALL ON FUNCTION card_internal.account_open(jsonb) FROM PUBLIC;
CREATE FUNCTION card.account_open(request jsonb)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.account_open(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.account_open(jsonb) TO card_admin;


-- POST /v3/accounts/:id/credits {"amount", "reference"}: {balance, held,
-- available}; a repeated reference credits once.
CREATE FUNCTION card_internal.account_credit(account_id uuid, request jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM card.json_check_fields(request, 'account credit', ARRAY['amount', 'reference']);
    RETURN (SELECT to_jsonb(r) FROM card.account_credit(account_id,
                card.json_bigint_field(request, 'amount'),
                card.json_text_field(request, 'reference')) r);
END
$$;
REVOKE ALL ON FUNCTION card_internal.account_credit(uuid, jsonb) FROM PUBLIC;
CREATE FUNCTION card.account_credit(account_id uuid, request jsonb)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.account_credit(uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.account_credit(uuid, jsonb) TO card_admin, card_api;

-- GET /v3/accounts/:id: balance, held, available and controls of an
-- account the caller sees (P0002 otherwise).
CREATE FUNCTION card_internal.account_get(account_id uuid)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result jsonb;
BEGIN
    SELECT jsonb_build_object('id', a.id, 'programme_id', a.programme_id,
                              'individual_id', a.individual_id, 'currency', a.currency,
                              'status', a.status, 'balance', a.balance, 'held', a.held,
                              'available', a.balance - a.held, 'controls', a.controls,
                              'created_at', a.created_at)
      INTO result
      FROM card.account a
     WHERE a.id = account_get.account_id AND card.programme_visible(a.programme_id);
    IF result IS NULL THEN
        RAISE EXCEPTION 'account % does not exist', account_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN result;
END
$$;
REVOKE ALL ON FUNCTION card_internal.account_get(uuid) FROM PUBLIC;
CREATE FUNCTION card.account_get(account_id uuid)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION card.account_get(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.account_get(uuid) TO card_admin, card_api, card_reader;
-- POST /v3/cards/:id/replace {"reason": ...}: the new card.
CREATE FUNCTION card_internal.card_replace(card_id uuid, request jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM card.json_check_fields(request, 'card replacement', ARRAY['reason']);
    RETURN to_jsonb(card.card_replace(card_id, card.json_text_field(request, 'reason')));
END
$$;
REVOKE ALL ON FUNCTION card_internal.card_replace(uuid, jsonb) FROM PUBLIC;
CREATE FUNCTION card.card_replace(card_id uuid, request jsonb)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.card_replace(uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.card_replace(uuid, jsonb) TO card_api;

-- POST /v3/cards/:id/reveal {"return_url": ...}: {redirect_url, expires_at}.
CREATE FUNCTION card_internal.card_reveal_start(card_id uuid, request jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    link record;
BEGIN
    PERFORM card.json_check_fields(request, 'card reveal', ARRAY['return_url']);
    SELECT * INTO link FROM card.card_reveal_start(card_id, card.json_text_field(request, 'return_url'));
    RETURN jsonb_build_object('redirect_url', link.redirect_url, 'expires_at', link.expires_at);
END
$$;
REVOKE ALL ON FUNCTION card_internal.card_reveal_start(uuid, jsonb) FROM PUBLIC;
CREATE FUNCTION card.card_reveal_start(card_id uuid, request jsonb)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.card_reveal_start(uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.card_reveal_start(uuid, jsonb) TO card_api;

-- POST /v3/authorizations: {authorization_id, approved, decline_reason,
-- available}.
CREATE FUNCTION card_internal.card_authorize(request jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM card.json_check_fields(request, 'authorization',
        ARRAY['card_token', 'amount', 'currency', 'mcc', 'merchant_country', 'channel', 'external_id', 'merchant_name']);
    RETURN (SELECT to_jsonb(r) FROM card.card_authorize(
                card.json_text_field(request, 'card_token'),
                card.json_bigint_field(request, 'amount'),
                card.json_text_field(request, 'currency'),
                card.json_text_field(request, 'mcc'),
                card.json_text_field(request, 'merchant_country'),
                card.json_text_field(request, 'channel'),
                card.json_text_field(request, 'external_id'),
                card.json_text_field(request, 'merchant_name')) r);
END
$$;
REVOKE ALL ON FUNCTION card_internal.card_authorize(jsonb) FROM PUBLIC;
CREATE FUNCTION card.card_authorize(request jsonb)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.card_authorize(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.card_authorize(jsonb) TO card_processor;

-- POST /v3/authorizations/:id/capture {"amount"} (all that is held when
-- absent).  Named apart from authorization_capture(uuid, bigint): with the
-- same name, a call with an untyped NULL amount could not choose.
CREATE FUNCTION card_internal.authorization_capture_request(authorization_id uuid, request jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM card.json_check_fields(request, 'authorization capture', ARRAY['amount']);
    RETURN (SELECT to_jsonb(r) FROM card.authorization_capture(authorization_id,
                card.json_bigint_field(request, 'amount')) r);
END
$$;
REVOKE ALL ON FUNCTION card_internal.authorization_capture_request(uuid, jsonb) FROM PUBLIC;
CREATE FUNCTION card.authorization_capture_request(authorization_id uuid, request jsonb)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.authorization_capture_request(uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.authorization_capture_request(uuid, jsonb) TO card_processor;

-- POST /v3/authorizations/:id/reverse {"amount"} (all that is held when
-- absent).  Named apart from authorization_reverse(uuid, bigint): with the
-- same name, a call with an untyped NULL amount could not choose.
CREATE FUNCTION card_internal.authorization_reverse_request(authorization_id uuid, request jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM card.json_check_fields(request, 'authorization reverse', ARRAY['amount']);
    RETURN (SELECT to_jsonb(r) FROM card.authorization_reverse(authorization_id,
                card.json_bigint_field(request, 'amount')) r);
END
$$;
REVOKE ALL ON FUNCTION card_internal.authorization_reverse_request(uuid, jsonb) FROM PUBLIC;
CREATE FUNCTION card.authorization_reverse_request(authorization_id uuid, request jsonb)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.authorization_reverse_request(uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.authorization_reverse_request(uuid, jsonb) TO card_processor;

