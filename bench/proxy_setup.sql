-- Cards for bench/proxy, made through whatever card.* this session calls
-- (the proxy's functions or a shard's): :cards cardholders, each with an
-- account, a credit and an active card; bench_card maps 1..:cards to them
-- for bench/proxy_order.pgbench and bench/authorize.pgbench.  Run as a
-- login role granted the programme :'prog'.
\set ON_ERROR_STOP 1
CREATE TABLE bench_card (n integer PRIMARY KEY, individual_id uuid, account_id uuid,
                         card_id uuid, token text);
INSERT INTO bench_card (n, individual_id)
SELECT g, card.individual_create(:'prog', 'Bench holder ' || g) FROM generate_series(1, :cards) g;
UPDATE bench_card SET account_id = card.account_open(:'prog', individual_id);
SELECT count(*) FROM bench_card, card.account_credit(account_id, 1000000000000, 'bench-' || n) b;
UPDATE bench_card SET card_id = (card.card_order(individual_id, account_id, 'Bench card')).id;
SELECT count(*) FROM bench_card, card.card_set_status(card_id, 'active') s;
UPDATE bench_card SET token = card.card_token(card_id);
ANALYZE bench_card;
