-- authorize.sql: real-time authorisation, holds, capture, reversal and
-- expiry (DESIGN.md section 9; C: src/authorize.c decides and holds, the
-- PL/pgSQL here settles holds).

CREATE TYPE card.authorization_status AS ENUM
    ('declined', 'pending', 'captured', 'reversed', 'expired');

CREATE TYPE card.decline_reason AS ENUM
    ('card_not_active', 'card_expired', 'account_not_active', 'currency_mismatch',
     'channel_blocked', 'country_blocked', 'category_blocked', 'spending_limit',
     'insufficient_funds');

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
    amount              bigint NOT NULL,
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
    -- one CHECK, so that it is read once per statement (1.12: the column's
    -- own amount > 0, which this one repeats, is gone)
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
ALTER TABLE card."authorization" ENABLE ROW LEVEL SECURITY;
CREATE POLICY programme_of_caller ON card."authorization"
    USING (programme_id IN (SELECT card.visible_programmes()));

SELECT pg_catalog.pg_extension_config_dump('card.authorization', '');
-- No statistics on what tenants write (1.7): the planner's estimates for a
-- query under row-level security come from every programme's rows, and
-- EXPLAIN would show another programme's most common values.
ALTER TABLE card."authorization" ALTER merchant_name SET STATISTICS 0,
    ALTER external_id SET STATISTICS 0, ALTER amount SET STATISTICS 0,
    ALTER currency SET STATISTICS 0, ALTER mcc SET STATISTICS 0,
    ALTER merchant_country SET STATISTICS 0, ALTER channel SET STATISTICS 0;

-- Authorisations as a backend reads them (1.7): the view reads the table as
-- the querying role, so its policy shows only the caller's programmes.
GRANT SELECT (id, programme_id, card_id, account_id, external_id, amount, currency, mcc,
              merchant_country, channel, merchant_name, approved, decline_reason, status,
              held, captured, released, created_at, expires_at, resolved_at)
    ON card."authorization" TO card_admin, card_api, card_reader;
CREATE VIEW card.authorizations WITH (security_invoker = true) AS
SELECT h.id, h.card_id, h.account_id, h.external_id, h.amount, h.currency, h.mcc,
       h.merchant_country, h.channel, h.merchant_name, h.approved, h.decline_reason,
       h.status, h.held, h.captured, h.released, h.created_at, h.expires_at, h.resolved_at
  FROM card."authorization" h;
GRANT SELECT ON card.authorizations TO card_admin, card_api, card_reader;

-- Real-time authorisation by card token (C: src/authorize.c).
CREATE FUNCTION card.card_authorize(card_token text, amount bigint, currency text, mcc text,
    merchant_country text, channel text, external_id text, merchant_name text DEFAULT NULL)
    RETURNS TABLE (authorization_id uuid, approved boolean, decline_reason text, available bigint)
    AS 'MODULE_PATHNAME', 'card_authorize'
    LANGUAGE C VOLATILE ROWS 1
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION card.card_authorize(text, bigint, text, text, text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.card_authorize(text, bigint, text, text, text, text, text, text) TO card_processor;

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

-- Moves money out of a pending hold: capture (posted) and release (freed)
-- amounts; the hold stays pending while anything is left of it.  Released
-- amounts go back to the limits of the card's chain counted in the hold's
-- windows.
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
         WHERE (l.card_id = (SELECT card.chain_of(k.id, k.chain_id) FROM card.card k WHERE k.id = hold.card_id)
                OR l.account_id = hold.account_id)
           AND l.period <> 'per_authorization'
           AND (l.categories IS NULL OR l.categories @> hold.mcc::integer)
           AND l.window_start = card.spend_window_start(l.period, hold.created_at);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION card.hold_settle(card."authorization", bigint, bigint, card.authorization_status) FROM PUBLIC;

-- The pending hold of an authorisation, locked; refuses any other, and
-- holds of programmes the caller does not see.
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
    SELECT * INTO hold FROM card."authorization" h WHERE h.id = hold_lock.authorization_id
       AND card.programme_visible(h.programme_id) FOR UPDATE;
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
REVOKE ALL ON FUNCTION card.hold_lock(uuid, bigint, text) FROM PUBLIC;

-- Captures all or part of a held amount; the rest stays held.
CREATE FUNCTION card_internal.authorization_capture(authorization_id uuid, amount bigint DEFAULT NULL,
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
REVOKE ALL ON FUNCTION card_internal.authorization_capture(uuid, bigint) FROM PUBLIC;
CREATE FUNCTION card.authorization_capture(authorization_id uuid, amount bigint DEFAULT NULL::bigint,
    OUT status text, OUT captured bigint, OUT released bigint,
    OUT held bigint, OUT available bigint)
    RETURNS record
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.authorization_capture(uuid, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.authorization_capture(uuid, bigint) TO card_processor;

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

-- Releases all or part of a held amount.
CREATE FUNCTION card_internal.authorization_reverse(authorization_id uuid, amount bigint DEFAULT NULL,
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
REVOKE ALL ON FUNCTION card_internal.authorization_reverse(uuid, bigint) FROM PUBLIC;
CREATE FUNCTION card.authorization_reverse(authorization_id uuid, amount bigint DEFAULT NULL::bigint,
    OUT status text, OUT captured bigint, OUT released bigint,
    OUT held bigint, OUT available bigint)
    RETURNS record
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.authorization_reverse(uuid, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.authorization_reverse(uuid, bigint) TO card_processor;

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

-- The sweep that releases holds past their lifetime, of the programmes the
-- caller sees.  No sweep runs ahead of the calendar: a future as_of (such
-- as 'infinity', which would release every live hold) is refused (22023),
-- as card_expire_due refuses one.
CREATE FUNCTION card_internal.authorization_expire_due(as_of timestamptz DEFAULT now())
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
    IF as_of > pg_catalog.now() THEN
        RAISE EXCEPTION 'as_of % is in the future', as_of
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Holds would be released before their lifetime ends.',
                  HINT = 'Omit as_of to expire what is due now.';
    END IF;
    FOR hold IN SELECT * FROM card."authorization" h
                 WHERE h.status = 'pending' AND h.expires_at <= as_of
                   AND (card.caller_sees_all() OR h.programme_id IN (SELECT card.visible_programmes()))
                 ORDER BY h.expires_at
                 FOR UPDATE SKIP LOCKED
    LOOP
        PERFORM card.hold_settle(hold, 0, hold.held, 'expired');
        expired := expired + 1;
    END LOOP;
    RETURN expired;
END
$$;
REVOKE ALL ON FUNCTION card_internal.authorization_expire_due(timestamp with time zone) FROM PUBLIC;
CREATE FUNCTION card.authorization_expire_due(as_of timestamp with time zone DEFAULT now())
    RETURNS integer
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.authorization_expire_due(timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.authorization_expire_due(timestamp with time zone) TO card_admin, card_processor;
