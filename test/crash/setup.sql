-- test/crash/setup.sql: the data the crash test's load starts from.
-- Two programmes (different BINs and brands), four cardholders in each,
-- two accounts per holder with another holder as authorised user, every
-- account funded; spending limits on half the accounts and on some cards;
-- for each of :clients clients six cards named 'crash c<client> s<k>',
-- spread over the accounts so that clients share accounts (their payments
-- queue on the same account lock), four of them activated by
-- card_set_status; and two cards that every client uses.  psql variables:
-- clients.
\set ON_ERROR_STOP 1
CREATE EXTENSION card;
CREATE EXTENSION amcheck;

CREATE TEMP TABLE setup_programme AS
SELECT n, card.programme_create(name, bin, brand) AS id
  FROM (VALUES (1, 'Crash A', '45671299', 'visa'),
               (2, 'Crash B', '52345678', 'mastercard')) p(n, name, bin, brand);

CREATE TEMP TABLE setup_individual AS
SELECT p.n AS programme_n, p.id AS programme_id, i AS k,
       card.individual_create(p.id, 'Crash holder ' || p.n || '/' || i) AS id
  FROM setup_programme p, generate_series(1, 4) i;

-- Accounts 0..15: holder k of programme p holds two; the programme's next
-- holder is an authorised user.
CREATE TEMP TABLE setup_account AS
SELECT row_number() OVER (ORDER BY h.programme_n, h.k, j) - 1 AS n, h.programme_id,
       h.id AS holder, card.account_open(h.programme_id, h.id, 'EUR') AS id
  FROM setup_individual h, generate_series(1, 2) j;
SELECT count(*) AS members FROM setup_account a
  JOIN setup_individual i ON i.programme_id = a.programme_id
   AND i.k = 1 + (SELECT h.k FROM setup_individual h WHERE h.id = a.holder) % 4,
  LATERAL card.account_member_add(a.id, i.id) \gset
SELECT count(*) AS funded FROM setup_account a,
  LATERAL card.account_credit(a.id, 5000000, 'seed-' || a.n) \gset
SELECT count(*) AS limited FROM setup_account a,
  LATERAL card.account_set_controls(a.id, CASE WHEN a.n % 4 = 0
      THEN '{"spending_limits": [{"amount": 20000000, "interval": "monthly"}]}'::jsonb
      ELSE '{"spending_limits": [{"amount": 400000, "interval": "all_time", "categories": ["5812-5814"]}]}'::jsonb END)
 WHERE a.n % 2 = 0 \gset

-- Six cards per client, on accounts (3 * client + k) mod 16.
CREATE TEMP TABLE setup_card AS
SELECT c AS client, k, a.id AS account_id,
       (card.card_order(a.holder, a.id, 'crash c' || c || ' s' || k, NULL, NULL,
                        CASE WHEN k = 5 THEN 'physical' ELSE 'virtual' END::card.card_type,
                        'setup-' || c || '-' || k)).id AS card_id
  FROM generate_series(0, :clients - 1) c
 CROSS JOIN generate_series(0, 5) k
  JOIN setup_account a ON a.n = (3 * c + k) % 16;
SELECT count(*) AS activated FROM setup_card s,
  LATERAL card.card_set_status(s.card_id, 'active', 'setup', 'api') WHERE s.k < 4 \gset
SELECT count(*) AS controlled FROM setup_card s,
  LATERAL card.card_set_controls(s.card_id,
      '{"spending_limits": [{"amount": 1500000, "interval": "all_time"},
                            {"amount": 60000, "interval": "monthly", "categories": ["5411"]},
                            {"amount": 4500, "interval": "per_authorization"}]}')
 WHERE s.k = 0 \gset
SELECT count(*) AS controlled FROM setup_card s,
  LATERAL card.card_set_controls(s.card_id, '{"channels": {"atm": false}, "blocked_countries": ["FR"]}')
 WHERE s.k = 1 \gset

-- Two cards every client freezes, unfreezes and pays with ('crash shared
-- <n>'): status changes of one card from many sessions at once.
SELECT count(*) AS shared FROM setup_account a,
  LATERAL card.card_order(a.holder, a.id, 'crash shared ' || a.n, NULL, NULL, 'virtual',
                          'setup-shared-' || a.n) c,
  LATERAL card.card_set_status(c.id, 'active', 'setup', 'api')
 WHERE a.n IN (1, 9) \gset

SELECT (SELECT count(*) FROM card.programme) AS programmes,
       (SELECT count(*) FROM card.account) AS accounts,
       (SELECT count(*) FROM card.card) AS cards,
       (SELECT count(*) FROM card.card WHERE status = 'active') AS active;
