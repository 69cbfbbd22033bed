-- Benchmark data: :cards cards with limits, each on its own account
-- (spread) or all on one account (hot).  bench_card maps 1..:cards to
-- tokens and accounts for the pgbench scripts.  A 6-digit BIN: its
-- 16-digit PANs are a range of 10^9, where the cards the order runs add
-- (hundreds of thousands) rarely collide.  In an 8-digit BIN's 10^7 every
-- 100,000 cards make one order in a hundred draw its PAN again
-- (docs/benchmarks.md, 2026-12-02).
\set ON_ERROR_STOP 1
CREATE EXTENSION IF NOT EXISTS card;
SELECT card.programme_create('Bench ' || :'layout', '456734') AS prog \gset
SELECT card.individual_create(:'prog', 'Bench holder') AS holder \gset
CREATE TABLE bench_card (n integer PRIMARY KEY, card_id uuid, token text, account_id uuid,
                         individual_id uuid);
SET bench.layout = :'layout';
SET bench.cards = :cards;
SET bench.prog = :'prog';
SET bench.holder = :'holder';

DO $$
DECLARE
    layout text := current_setting('bench.layout');
    cards integer := current_setting('bench.cards')::integer;
    prog uuid := current_setting('bench.prog')::uuid;
    holder uuid := current_setting('bench.holder')::uuid;
    shared_account uuid;
    acct uuid;
    c uuid;
BEGIN
    IF layout = 'hot' THEN
        shared_account := card.account_open(prog, holder);
        PERFORM card.account_credit(shared_account, 1000000000000000, 'bench');
        PERFORM card.account_set_controls(shared_account,
            '{"spending_limits": [{"amount": 900000000000000, "interval": "monthly"}]}');
    END IF;
    FOR n IN 1..cards LOOP
        acct := shared_account;
        IF acct IS NULL THEN
            acct := card.account_open(prog, holder);
            PERFORM card.account_credit(acct, 1000000000000, 'bench');
            PERFORM card.account_set_controls(acct,
                '{"spending_limits": [{"amount": 900000000000, "interval": "monthly"}]}');
        END IF;
        c := (card.card_order(holder, acct, 'Bench ' || n)).id;
        PERFORM card.card_set_status(c, 'active');
        PERFORM card.card_set_controls(c, '{
            "spending_limits": [{"amount": 50000000000, "interval": "daily"},
                                {"amount": 10000000, "interval": "per_authorization"},
                                {"amount": 90000000000, "interval": "monthly", "categories": ["5411", "5812-5814"]}],
            "blocked_categories": ["7995"],
            "blocked_countries": ["KP"],
            "channels": {"atm": false}}');
        INSERT INTO bench_card VALUES (n, c, card.card_token(c), acct, holder);
    END LOOP;
END $$;
ANALYZE;
