-- account.sql: cardholders, the accounts they spend from, and funding
-- (DESIGN.md sections 2 and 8).

-- A cardholder.
CREATE TABLE card.individual (
    id              uuid PRIMARY KEY DEFAULT card.new_id(),
    programme_id    uuid NOT NULL REFERENCES card.programme,
    name            text NOT NULL CHECK (pg_catalog.length(name) BETWEEN 1 AND 200),
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE (id, programme_id)
);
SELECT pg_catalog.pg_extension_config_dump('card.individual', '');
-- No statistics on what tenants write (1.7): the planner's estimates for a
-- query under row-level security come from every programme's rows, and
-- EXPLAIN would show another programme's most common values.
ALTER TABLE card.individual ALTER name SET STATISTICS 0;
ALTER TABLE card.individual ENABLE ROW LEVEL SECURITY;
CREATE POLICY programme_of_caller ON card.individual
    USING (programme_id IN (SELECT card.visible_programmes()));

-- Cardholders as a backend reads them (1.7): names, no secrets (a
-- cardholder holds none), the caller's programmes only.
GRANT SELECT (id, programme_id, name, created_at)
    ON card.individual TO card_admin, card_api, card_reader;
CREATE VIEW card.individuals WITH (security_invoker = true) AS
SELECT i.id, i.programme_id, i.name, i.created_at
  FROM card.individual i;
GRANT SELECT ON card.individuals TO card_admin, card_api, card_reader;

-- The account a card spends from; balances in minor units.
CREATE TABLE card.account (
    id              uuid PRIMARY KEY DEFAULT card.new_id(),
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
SELECT pg_catalog.pg_extension_config_dump('card.account', '');
GRANT SELECT (id, programme_id, currency, balance, held)
    ON card.account TO card_admin, card_api, card_reader;
ALTER TABLE card.account ENABLE ROW LEVEL SECURITY;
CREATE POLICY programme_of_caller ON card.account
    USING (programme_id IN (SELECT card.visible_programmes()));

-- Who may hold cards on an account: its holder and authorised users.
CREATE TABLE card.account_member (
    account_id      uuid NOT NULL,
    individual_id   uuid NOT NULL,
    programme_id    uuid NOT NULL,
    role            text NOT NULL CHECK (role IN ('holder', 'authorised')),
    added_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (account_id, individual_id),
    UNIQUE (account_id, individual_id, programme_id),   -- what a card's holder refers to
    FOREIGN KEY (account_id, programme_id) REFERENCES card.account (id, programme_id),
    FOREIGN KEY (individual_id, programme_id) REFERENCES card.individual (id, programme_id)
);
SELECT pg_catalog.pg_extension_config_dump('card.account_member', '');
ALTER TABLE card.account_member ENABLE ROW LEVEL SECURITY;
CREATE POLICY programme_of_caller ON card.account_member
    USING (programme_id IN (SELECT card.visible_programmes()));

-- Only in a programme the caller sees.
CREATE FUNCTION card_internal.individual_create(programme_id uuid, name text)
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
    IF NOT EXISTS (SELECT 1 FROM card.programme p WHERE p.id = individual_create.programme_id
                                             AND card.programme_visible(p.id)) THEN
        RAISE EXCEPTION 'programme % does not exist', programme_id
            USING ERRCODE = 'no_data_found';
    END IF;
    INSERT INTO card.individual (programme_id, name)
    VALUES (programme_id, name)
    RETURNING id INTO new_id;
    RETURN new_id;
END
$$;
REVOKE ALL ON FUNCTION card_internal.individual_create(uuid, text) FROM PUBLIC;
CREATE FUNCTION card.individual_create(programme_id uuid, name text)
    RETURNS uuid
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.individual_create(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.individual_create(uuid, text) TO card_admin;

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

-- Only in a programme the caller sees, for an individual it sees.
CREATE FUNCTION card_internal.account_open(programme_id uuid, individual_id uuid, currency text DEFAULT 'EUR')
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
    IF NOT EXISTS (SELECT 1 FROM card.programme p WHERE p.id = account_open.programme_id
                                             AND card.programme_visible(p.id)) THEN
        RAISE EXCEPTION 'programme % does not exist', programme_id
            USING ERRCODE = 'no_data_found';
    END IF;
    SELECT i.programme_id INTO holder_programme
      FROM card.individual i
     WHERE i.id = account_open.individual_id AND card.programme_visible(i.programme_id);
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
REVOKE ALL ON FUNCTION card_internal.account_open(uuid, uuid, text) FROM PUBLIC;
CREATE FUNCTION card.account_open(programme_id uuid, individual_id uuid,
    currency text DEFAULT 'EUR'::text)
    RETURNS uuid
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.account_open(uuid, uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.account_open(uuid, uuid, text) TO card_admin;

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

-- Only on accounts and individuals the caller sees.
CREATE FUNCTION card_internal.account_member_add(account_id uuid, individual_id uuid)
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
      FROM card.account a
     WHERE a.id = account_member_add.account_id AND card.programme_visible(a.programme_id);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', account_id USING ERRCODE = 'no_data_found';
    END IF;
    SELECT i.programme_id INTO member_programme
      FROM card.individual i
     WHERE i.id = account_member_add.individual_id AND card.programme_visible(i.programme_id);
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
REVOKE ALL ON FUNCTION card_internal.account_member_add(uuid, uuid) FROM PUBLIC;
CREATE FUNCTION card.account_member_add(account_id uuid, individual_id uuid)
    RETURNS void
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.account_member_add(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.account_member_add(uuid, uuid) TO card_admin;

-- Credits to an account, one per reference.
CREATE TABLE card.account_credit (
    account_id      uuid NOT NULL REFERENCES card.account,
    reference       text NOT NULL CHECK (pg_catalog.length(reference) BETWEEN 1 AND 200),
    amount          bigint NOT NULL CHECK (amount > 0),
    credited_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (account_id, reference)
);
SELECT pg_catalog.pg_extension_config_dump('card.account_credit', '');
ALTER TABLE card.account_credit ENABLE ROW LEVEL SECURITY;
CREATE POLICY account_of_caller ON card.account_credit
    USING (account_id IN (SELECT a.id FROM card.account a));

-- Balances as an app shows them.
CREATE VIEW card.balances WITH (security_invoker = true) AS
SELECT a.id AS account_id, a.currency, a.balance, a.held, a.balance - a.held AS available
  FROM card.account a;
GRANT SELECT ON card.balances TO card_admin, card_api, card_reader;

-- Credits an account the caller sees, once per reference.  An amount that
-- would overflow the balance and a negative start_after are bad input
-- (22023), not errors of the UPDATE or of a table constraint (found by the
-- fuzzing suite, test/fuzz.sh).
CREATE FUNCTION card_internal.account_credit(account_id uuid, amount bigint, reference text,
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
    SELECT a.status INTO account_status FROM card.account a WHERE a.id = account_credit.account_id
       AND card.programme_visible(a.programme_id);
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
         WHERE a.id = account_credit.account_id AND a.balance <= 9223372036854775807 - amount
        RETURNING a.balance, a.held, a.balance - a.held INTO balance, held, available;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'credit of % would take the balance of account % past the largest amount',
                amount, account_id
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Amounts are bigint minor units: the balance cannot exceed 9223372036854775807.';
        END IF;
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
REVOKE ALL ON FUNCTION card_internal.account_credit(uuid, bigint, text) FROM PUBLIC;
CREATE FUNCTION card.account_credit(account_id uuid, amount bigint, reference text, OUT balance bigint,
    OUT held bigint, OUT available bigint)
    RETURNS record
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.account_credit(uuid, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.account_credit(uuid, bigint, text) TO card_admin, card_api;

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
