-- Two tenants (programmes A and B) with something of everything, built by
-- the superuser; their login roles exist already (test/fuzz.sh creates
-- them: fuzz_<t>_admin, _api, _processor, _hosted, _reader for t = a, b,
-- fuzz_outsider with every capability role and no programme, fuzz_nobody
-- with no grant at all).  Every id and token goes into fuzz.fixture.
\set ON_ERROR_STOP 1

CREATE FUNCTION fuzz.tenant_setup(t text, prog_name text, bin text, brand text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    prog uuid;
    holder uuid;
    member uuid;
    acct uuid;
    acct2 uuid;
    c uuid;
    tok text;
    r text;
    caps text[] := ARRAY['admin', 'api', 'processor', 'hosted', 'reader'];
    i integer;
BEGIN
    prog := card.programme_create(prog_name, bin, brand);
    PERFORM fuzz.keep(t, 'programme', prog::text);
    PERFORM fuzz.keep(t, 'programme_name', prog_name);
    FOREACH r IN ARRAY caps LOOP
        PERFORM card.programme_grant(prog, format('fuzz_%s_%s', t, r));
        PERFORM fuzz.keep(t, 'role', format('fuzz_%s_%s', t, r));
    END LOOP;

    holder := card.individual_create(prog, 'Holder ' || t);
    member := card.individual_create(prog, 'Member ' || t);
    PERFORM fuzz.keep(t, 'individual', holder::text);
    PERFORM fuzz.keep(t, 'individual', member::text);
    acct := card.account_open(prog, holder, 'EUR');
    acct2 := card.account_open(prog, member, 'SEK');
    PERFORM card.account_member_add(acct, member);
    PERFORM fuzz.keep(t, 'account', acct::text);
    PERFORM fuzz.keep(t, 'account', acct2::text);
    PERFORM card.account_credit(acct, 1000000, 'seed-' || t);
    PERFORM card.account_credit(acct2, 50000, 'seed-' || t);
    PERFORM fuzz.keep(t, 'reference', 'seed-' || t);
    PERFORM card.account_set_controls(acct, '{"spending_limits": [{"amount": 500000, "interval": "monthly"}],
                                              "blocked_countries": ["RU"]}');

    -- Card 1: virtual, active, with controls; authorisations on it.
    SELECT id INTO c FROM card.card_order(holder, acct, 'Card one ' || t, idempotency_key => 'idem-' || t);
    PERFORM fuzz.keep(t, 'idempotency_key', 'idem-' || t);
    PERFORM card.card_set_status(c, 'active');
    PERFORM card.card_set_controls(c, '{"spending_limits": [{"amount": 90000, "interval": "daily"},
                                                            {"amount": 20000, "interval": "per_authorization"}],
                                       "channels": {"atm": false}}');
    PERFORM fuzz.keep(t, 'card', c::text);
    PERFORM fuzz.keep(t, 'card_token', card.card_token(c));
    FOR i IN 1..4 LOOP
        PERFORM fuzz.keep(t, 'authorization', authorization_id::text)
           FROM card.card_authorize(card.card_token(c), 1000 * i, 'EUR', '5411', 'SE', 'chip',
                                    format('ext-%s-%s', t, i), 'Shop ' || t);
        PERFORM fuzz.keep(t, 'external_id', format('ext-%s-%s', t, i));
    END LOOP;
    PERFORM card.authorization_capture(fuzz.fx(t, 'authorization', 1)::uuid, 500);
    PERFORM card.authorization_reverse(fuzz.fx(t, 'authorization', 2)::uuid, 100);
    -- A decline (the ATM channel is blocked on card 1).
    PERFORM fuzz.keep(t, 'authorization', authorization_id::text)
       FROM card.card_authorize(card.card_token(c), 100, 'EUR', '5411', 'SE', 'atm', format('ext-%s-atm', t));

    -- Card 2: physical, not activated, with an open activation link.
    SELECT id INTO c FROM card.card_order(member, acct, 'Card two ' || t, type => 'physical');
    PERFORM fuzz.keep(t, 'card', c::text);
    PERFORM fuzz.keep(t, 'card_token', card.card_token(c));
    PERFORM fuzz.keep(t, 'activation_token', fuzz.link_token(redirect_url))
       FROM card.card_activation_start(c, 'https://app.example.com/activated');

    -- Card 3: activated through the hosted flow (so it has a PIN), a reveal
    -- link, a PIN reset link, PIN checks, and a reissue (damaged) under way.
    SELECT id INTO c FROM card.card_order(holder, acct, 'Card three ' || t);
    SELECT fuzz.link_token(redirect_url) INTO tok FROM card.card_activation_start(c, 'https://app.example.com/a');
    PERFORM card.card_activation_complete(tok, '2468');
    PERFORM fuzz.keep(t, 'card', c::text);
    PERFORM fuzz.keep(t, 'card_token', card.card_token(c));
    PERFORM fuzz.keep(t, 'reveal_token', fuzz.link_token(redirect_url))
       FROM card.card_reveal_start(c, 'https://app.example.com/shown');
    PERFORM fuzz.keep(t, 'reset_token', fuzz.link_token(redirect_url))
       FROM card.card_pin_reset_start(c, 'https://app.example.com/pin');
    PERFORM fuzz.keep(t, 'check', card.card_pin_check(card.card_token(c), '2468')::text);
    PERFORM fuzz.keep(t, 'check', card.card_pin_check(card.card_token(c), '1357')::text);
    PERFORM fuzz.keep(t, 'card', id::text) FROM card.card_replace(c, 'damaged');

    -- Card 4: frozen; card 5: blocked; card 6: lost and replaced; card 7 on
    -- the second account.
    SELECT id INTO c FROM card.card_order(holder, acct, 'Card four ' || t);
    PERFORM card.card_set_status(c, 'active');
    PERFORM card.card_set_status(c, 'frozen', 'fuzz', 'holder');
    PERFORM fuzz.keep(t, 'card', c::text);
    SELECT id INTO c FROM card.card_order(holder, acct, 'Card five ' || t);
    PERFORM card.card_set_status(c, 'blocked');
    PERFORM fuzz.keep(t, 'card', c::text);
    SELECT id INTO c FROM card.card_order(holder, acct, 'Card six ' || t);
    PERFORM card.card_set_status(c, 'active');
    PERFORM fuzz.keep(t, 'card', c::text);
    PERFORM fuzz.keep(t, 'card', id::text) FROM card.card_replace(c, 'lost');
    SELECT id INTO c FROM card.card_order(member, acct2, 'Card seven ' || t);
    PERFORM card.card_set_status(c, 'active');
    PERFORM fuzz.keep(t, 'card', c::text);
    PERFORM fuzz.keep(t, 'card_token', card.card_token(c));

    -- Consumers of the feed, registered by the tenant's reader: its own
    -- name and one both tenants use.
    EXECUTE format('SET ROLE fuzz_%s_reader', t);
    PERFORM card.consumer_register('cons-' || t);
    PERFORM card.consumer_register('billing', 1);
    RESET ROLE;
    PERFORM fuzz.keep(t, 'consumer', 'cons-' || t);
    PERFORM fuzz.keep(t, 'consumer', 'billing');
END $$;

-- Fresh objects for a tenant, between parts of the general phase: the
-- fuzzer's own calls use up tokens, block cards and spend the money, and
-- calls that name fixtures by number then only reach the refusals.  The
-- fixtures keep their numbers (the generated calls name them so) and get
-- new values: a physical card with an open activation link (card 2), an
-- active card with a PIN, links and PIN checks (card 3), a new active card
-- with holds on it (card 1), and money.  A step the tenant's state no
-- longer allows is skipped.
CREATE FUNCTION fuzz.set(t text, k text, i integer, value text) RETURNS void LANGUAGE sql AS $$
    UPDATE fuzz.fixture SET v = value WHERE tenant = t AND kind = k AND n = i AND value IS NOT NULL
$$;

CREATE FUNCTION fuzz.refresh(t text, part integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    holder uuid := fuzz.fx(t, 'individual', 1)::uuid;
    acct uuid := fuzz.fx(t, 'account', 1)::uuid;
    c uuid;
    tok text;
    i integer;
BEGIN
    BEGIN
        PERFORM card.account_credit(acct, 1000000, format('refresh-%s-%s', t, part));
        SELECT id INTO c FROM card.card_order(holder, acct, 'Fresh one ' || t);
        PERFORM card.card_set_status(c, 'active');
        PERFORM fuzz.set(t, 'card', 1, c::text);
        PERFORM fuzz.set(t, 'card_token', 1, card.card_token(c));
        FOR i IN 1..4 LOOP
            PERFORM fuzz.set(t, 'authorization', i, authorization_id::text)
               FROM card.card_authorize(card.card_token(c), 100 * i, 'EUR', '5411', 'SE', 'chip',
                                        format('refresh-%s-%s-%s', t, part, i));
        END LOOP;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'refresh of card 1 of % skipped: %', t, sqlerrm;
    END;
    BEGIN
        SELECT id INTO c FROM card.card_order(holder, acct, 'Fresh two ' || t, type => 'physical');
        PERFORM fuzz.set(t, 'card', 2, c::text);
        PERFORM fuzz.set(t, 'card_token', 2, card.card_token(c));
        PERFORM fuzz.set(t, 'activation_token', 1, fuzz.link_token(redirect_url))
           FROM card.card_activation_start(c, 'https://app.example.com/activated');
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'refresh of card 2 of % skipped: %', t, sqlerrm;
    END;
    BEGIN
        SELECT id INTO c FROM card.card_order(holder, acct, 'Fresh three ' || t);
        SELECT fuzz.link_token(redirect_url) INTO tok FROM card.card_activation_start(c, 'https://app.example.com/a');
        PERFORM card.card_activation_complete(tok, '2468');
        PERFORM fuzz.set(t, 'card', 3, c::text);
        PERFORM fuzz.set(t, 'card_token', 3, card.card_token(c));
        PERFORM fuzz.set(t, 'reveal_token', 1, fuzz.link_token(redirect_url))
           FROM card.card_reveal_start(c, 'https://app.example.com/shown');
        PERFORM fuzz.set(t, 'reset_token', 1, fuzz.link_token(redirect_url))
           FROM card.card_pin_reset_start(c, 'https://app.example.com/pin');
        PERFORM fuzz.set(t, 'check', 1, card.card_pin_check(card.card_token(c), '2468')::text);
        PERFORM fuzz.set(t, 'check', 2, card.card_pin_check(card.card_token(c), '1357')::text);
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'refresh of card 3 of % skipped: %', t, sqlerrm;
    END;
END $$;

SELECT fuzz.tenant_setup('a', 'Fuzz tenant A', '45671234', 'visa');
SELECT fuzz.tenant_setup('b', 'Fuzz tenant B', '51234567', 'mastercard');
-- The roles of no programme (their "own" role names, for name arguments).
SELECT fuzz.keep('o', 'role', 'fuzz_outsider'), fuzz.keep('o', 'role', 'fuzz_nobody');

-- Every fuzz role may read the fixtures (the calls name them) and nothing
-- else of the fuzzer.
GRANT USAGE ON SCHEMA fuzz TO fuzz_a_admin, fuzz_a_api, fuzz_a_processor, fuzz_a_hosted, fuzz_a_reader,
    fuzz_b_admin, fuzz_b_api, fuzz_b_processor, fuzz_b_hosted, fuzz_b_reader, fuzz_outsider, fuzz_nobody;
GRANT SELECT ON fuzz.fixture TO fuzz_a_admin, fuzz_a_api, fuzz_a_processor, fuzz_a_hosted, fuzz_a_reader,
    fuzz_b_admin, fuzz_b_api, fuzz_b_processor, fuzz_b_hosted, fuzz_b_reader, fuzz_outsider, fuzz_nobody;
REVOKE ALL ON fuzz.call, fuzz.result, fuzz.message, fuzz.allowed FROM PUBLIC;
