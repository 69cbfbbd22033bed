-- Helpers shared by the pg_regress suites (they run in this order in one database).
\set VERBOSITY sqlstate

-- A programme, holder and account in one call.
CREATE FUNCTION test_account(prog text, bin text DEFAULT '45671234',
                             OUT programme_id uuid, OUT individual_id uuid, OUT account_id uuid)
LANGUAGE plpgsql AS $$
BEGIN
    programme_id := card.programme_create(prog, bin);
    individual_id := card.individual_create(programme_id, prog || ' holder');
    account_id := card.account_open(programme_id, individual_id, 'EUR');
END $$;

-- A new card on an account, driven into the given status.
CREATE FUNCTION test_card_in(acct uuid, holder uuid, wanted card.card_status,
                             kind card.card_type DEFAULT 'virtual')
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    c uuid;
    tok text;
BEGIN
    SELECT id INTO c FROM card.card_order(holder, acct, 'Test card', type => kind);
    IF wanted IN ('active', 'frozen') THEN
        SELECT substring(redirect_url FROM 'token=(.*)$') INTO tok
          FROM card.card_activation_start(c, 'https://app.example.com/back');
        PERFORM card.card_activation_complete(tok, '2468');
    END IF;
    IF wanted = 'frozen' THEN
        PERFORM card.card_set_status(c, 'frozen');
    ELSIF wanted IN ('blocked', 'lost', 'stolen', 'expired') THEN
        UPDATE card.card SET status = wanted WHERE id = c;
    END IF;
    RETURN c;
END $$;

-- Outcome of one attempted move: the SQLSTATE, or ok / no-op with the
-- number of audit rows it wrote.
CREATE FUNCTION test_try(c uuid, target card.card_status, direct boolean)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    before bigint;
    after bigint;
    now_status card.card_status;
BEGIN
    SELECT count(*) INTO before FROM card.card_status_change WHERE card_id = c;
    BEGIN
        IF direct THEN
            UPDATE card.card SET status = target WHERE id = c;
        ELSE
            PERFORM card.card_set_status(c, target);
        END IF;
    EXCEPTION WHEN OTHERS THEN
        RETURN sqlstate;
    END;
    SELECT count(*) INTO after FROM card.card_status_change WHERE card_id = c;
    SELECT status INTO now_status FROM card.card WHERE id = c;
    IF now_status <> target THEN
        RETURN 'wrong status ' || now_status;
    END IF;
    RETURN CASE after - before WHEN 0 THEN 'no-op' WHEN 1 THEN 'ok' ELSE (after - before) || ' rows' END;
END $$;

-- The SQLSTATE, message and hint of a failing statement.
CREATE FUNCTION test_error(statement text, OUT state text, OUT message text, OUT detail text, OUT hint text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    state := 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL,
                            hint = PG_EXCEPTION_HINT;
END $$;

SELECT count(*) AS transitions FROM card.card_status_transitions();

-- A reveal of a card's PAN through the hosted flow, for comparing cards
-- without printing PANs.
CREATE FUNCTION test_pan(c uuid) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    tok text;
    result text;
BEGIN
    SELECT substring(redirect_url FROM 'token=(.*)$') INTO tok
      FROM card.card_reveal_start(c, 'https://app.example.com/back');
    SELECT pan INTO result FROM card.card_reveal(tok);
    RETURN result;
END $$;

-- Rows of card.card that a statement updated, and how many of them in place
-- (HOT), in the current transaction: "updated N, in place M".
CREATE FUNCTION test_hot_updates(statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    updated bigint := pg_stat_get_xact_tuples_updated('card.card'::regclass);
    hot bigint := pg_stat_get_xact_tuples_hot_updated('card.card'::regclass);
BEGIN
    EXECUTE statement;
    RETURN format('updated %s, in place %s',
                  pg_stat_get_xact_tuples_updated('card.card'::regclass) - updated,
                  pg_stat_get_xact_tuples_hot_updated('card.card'::regclass) - hot);
END $$;
