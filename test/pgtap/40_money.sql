\set ON_ERROR_STOP 1
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS card;

-- The money model after a scripted mixed workload: for every account,
-- held = sum of pending holds and balance = credits - captures; every
-- limit's running spend equals what its window holds; nothing negative.
BEGIN;
SELECT plan(9);

SELECT card.programme_create('TAP money', '45671234') AS prog \gset
SELECT card.individual_create(:'prog', 'Money holder') AS holder \gset

-- Three accounts, two cards each, limits on cards and accounts.
CREATE TEMP TABLE tap_card ON COMMIT DROP AS
SELECT a.n AS account_n, a.id AS account_id, c.k, c.id AS card_id, NULL::text AS token
  FROM (SELECT n, card.account_open(:'prog', :'holder') AS id FROM generate_series(1, 3) n) a
  CROSS JOIN LATERAL (SELECT k, (card.card_order(:'holder', a.id, 'Money ' || a.n || '/' || k)).id
                        FROM generate_series(1, 2) k) c(k, id);
UPDATE tap_card SET token = card.card_token(card_id);
SELECT count(*) AS done FROM tap_card, card.card_set_status(card_id, 'active') \gset
SELECT count(*) AS done FROM (SELECT DISTINCT account_id FROM tap_card) a,
       card.account_credit(a.account_id, 50000, 'seed'),
       card.account_set_controls(a.account_id, '{"spending_limits": [{"amount": 40000, "interval": "monthly"}]}') \gset
SELECT count(*) AS done FROM tap_card,
       card.card_set_controls(card_id, '{"spending_limits": [{"amount": 9000, "interval": "daily"},
           {"amount": 3000, "interval": "weekly", "categories": ["5812-5814"]},
           {"amount": 2500, "interval": "per_authorization"}]}') \gset

-- 600 authorisations of varying size, category and card, some declined.
CREATE TEMP TABLE tap_auth ON COMMIT DROP AS
SELECT g, a.authorization_id, a.approved, a.decline_reason
  FROM generate_series(1, 600) g
  JOIN tap_card t ON t.account_n = 1 + g % 3 AND t.k = 1 + (g / 3) % 2
  CROSS JOIN LATERAL card.card_authorize(t.token, 50 + (g * 37) % 3000, 'EUR',
        (ARRAY['5411', '5812', '5813', '7011'])[1 + g % 4], 'SE', 'chip', 'tap-money-' || g) a;

SELECT cmp_ok((SELECT count(*)::int FROM tap_auth WHERE approved), '>', 50, 'many authorisations were approved');
SELECT cmp_ok((SELECT count(*)::int FROM tap_auth WHERE NOT approved), '>', 50, 'many were declined');

-- Resolve a third: capture (full and partial), reverse (full and partial), expire the rest later.
SELECT count(*) AS done FROM (
    SELECT a.g, a.authorization_id FROM tap_auth a WHERE a.approved AND a.g % 5 = 0) x,
    LATERAL card.authorization_capture(x.authorization_id,
                                       CASE WHEN x.g % 2 = 0 THEN NULL ELSE 10 END) \gset
SELECT count(*) AS done FROM (
    SELECT a.g, a.authorization_id FROM tap_auth a WHERE a.approved AND a.g % 5 = 1) x,
    LATERAL card.authorization_reverse(x.authorization_id,
                                       CASE WHEN x.g % 2 = 0 THEN NULL ELSE 20 END) \gset
-- A second round after the releases: room has come back.
SELECT count(*) AS done FROM generate_series(601, 800) g
  JOIN tap_card t ON t.account_n = 1 + g % 3 AND t.k = 1 + (g / 3) % 2
  CROSS JOIN LATERAL card.card_authorize(t.token, 40 + (g * 53) % 1000, 'EUR', '5812', 'SE', 'chip',
                                         'tap-money-' || g) a \gset

\set money_view pg_temp.tap_money
\ir ../include/money_accounts.sql
CREATE TEMP VIEW tap_accounts AS
SELECT * FROM pg_temp.tap_money WHERE id IN (SELECT account_id FROM tap_card);

SELECT is((SELECT count(*)::int FROM tap_accounts WHERE held <> pending_holds), 0,
    'held = sum of pending holds, on every account');
SELECT is((SELECT count(*)::int FROM tap_accounts WHERE balance <> credits_minus_captures), 0,
    'balance = credits - captures, on every account');
SELECT is((SELECT count(*)::int FROM tap_accounts WHERE balance - held < 0), 0,
    'no account has negative available funds');

-- Every limit's running spend equals what its current window holds.
SELECT is((SELECT count(*)::int
             FROM card.spend_limit l
            WHERE l.period <> 'per_authorization'
              AND (l.card_id IN (SELECT card_id FROM tap_card) OR l.account_id IN (SELECT account_id FROM tap_card))
              AND l.spent <> (SELECT coalesce(sum(h.held + h.captured), 0)
                                FROM card."authorization" h
                               WHERE h.approved
                                 AND (h.card_id = l.card_id OR h.account_id = l.account_id)
                                 AND h.created_at >= l.window_start
                                 AND (l.categories IS NULL OR l.categories @> h.mcc::integer))),
    0, 'every limit counter equals the approved, unreleased spend of its window');
SELECT is((SELECT count(*)::int FROM card.spend_limit l
            WHERE l.card_id IN (SELECT card_id FROM tap_card) AND l.spent > l.amount), 0,
    'no card limit is exceeded');

-- Expire what is left: the invariants still hold and nothing is held.
UPDATE card."authorization" SET expires_at = now() WHERE status = 'pending';
SELECT card.authorization_expire_due() AS expired \gset
SELECT is((SELECT count(*)::int FROM tap_accounts WHERE held <> 0 OR pending_holds <> 0
              OR balance <> credits_minus_captures), 0,
    'after expiry: nothing held, balance = credits - captures');
SELECT is((SELECT count(*)::int FROM card.spend_limit l
            WHERE l.card_id IN (SELECT card_id FROM tap_card) AND l.period <> 'per_authorization'
              AND l.spent <> (SELECT coalesce(sum(h.captured), 0) FROM card."authorization" h
                               WHERE h.card_id = l.card_id AND h.created_at >= l.window_start
                                 AND (l.categories IS NULL OR l.categories @> h.mcc::integer))),
    0, 'after expiry: card limits count only what was captured');

SELECT * FROM finish();
ROLLBACK;
