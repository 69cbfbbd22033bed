-- Ordering cards: typed and JSON forms, defaults, the response shape.
\set VERBOSITY sqlstate
SELECT programme_id AS prog, individual_id AS holder, account_id AS acct
  FROM test_account('Order programme') \gset

-- Typed: expiry from the programme's validity (3 years), status not_activated.
SELECT display_name, type, brand, region, last4 ~ '^[0-9]{4}$' AS last4_ok, currency,
       account_id = :'acct' AS account_ok, individual_id = :'holder' AS holder_ok, status,
       exp_month = to_char(now() AT TIME ZONE 'UTC', 'MM') AS month_ok,
       exp_year::int = extract(year FROM now() AT TIME ZONE 'UTC')::int + 3 AS year_ok
  FROM card.card_order(individual_id => :'holder', account_id => :'acct',
                       display_name => 'Ada Lovelace');

-- Explicit expiry, physical; a one-digit month is normalised.
SELECT type, exp_month, exp_year, status
  FROM card.card_order(:'holder', :'acct', 'Ada Physical', '3', '2031', 'physical');

-- JSON: exactly the response fields of POST /v3/cards.
SELECT array(SELECT jsonb_object_keys(r) ORDER BY 1) AS keys,
       r ->> 'status' AS status, r ->> 'type' AS type, r ->> 'exp_month' AS exp_month,
       r ->> 'exp_year' AS exp_year, r ->> 'brand' AS brand, r ->> 'currency' AS currency
  FROM card.card_order(jsonb_build_object(
        'individual_id', :'holder', 'account_id', :'acct', 'display_name', 'JSON card',
        'exp_month', '12', 'exp_year', '2030', 'type', 'physical')) AS r;

-- The view shows the same and nothing secret.
SELECT array(SELECT attname FROM pg_attribute
              WHERE attrelid = 'card.cards'::regclass AND attnum > 0 ORDER BY attnum) AS view_columns;

-- Every order wrote one audit row "ordered" with no from_status.
SELECT from_status, to_status, reason, channel, actor = current_user AS actor_ok, count(*)
  FROM card.card_status_change s JOIN card.card c ON c.id = s.card_id
 WHERE c.account_id = :'acct'
 GROUP BY 1, 2, 3, 4, 5;

-- The PAN is stored encrypted, under key version 1, with a 32-byte fingerprint.
SELECT count(*) AS cards, bool_and(pan_key_version = 1) AS key_v1,
       bool_and(length(pan_fingerprint) = 32) AS fingerprint_32,
       bool_and(length(pan_ciphertext) = 12 + 16 + 16) AS sealed_len
  FROM card.card WHERE account_id = :'acct';
SELECT (p).* FROM (SELECT card.pan_check(id) AS p FROM card.card WHERE account_id = :'acct') s;

-- An authorised user of the account may hold a card; others may not.
SELECT card.individual_create(:'prog', 'Second user') AS second \gset
SELECT card.card_order(:'second', :'acct', 'Not yet');
SELECT card.account_member_add(:'acct', :'second');
SELECT status FROM card.card_order(:'second', :'acct', 'Authorised user');

-- The database holds the same rule (1.9): a card row written by hand for an
-- individual of the programme who is not a member of the account, or for a
-- member under another programme than the account's, fails its foreign key
-- to card.account_member; the member's row passes.
SELECT card.individual_create(:'prog', 'Not a member') AS outsider \gset
SELECT programme_id AS other_prog FROM test_account('Order programme, by hand') \gset
CREATE TEMP TABLE by_hand (programme_id, individual_id) AS
VALUES (:'prog'::uuid, :'outsider'::uuid), (:'other_prog', :'second'), (:'prog', :'second');
SELECT e.state, e.message
  FROM by_hand h,
       test_error(format($$INSERT INTO card.card (id, programme_id, account_id, individual_id,
                             display_name, type, exp_month, exp_year, last4, token,
                             pan_ciphertext, pan_key_version, pan_fingerprint)
                           VALUES (card.new_id(), %L, %L, %L, 'By hand', 'virtual', '12', '2030',
                                   '0000', 'ct_by_hand', '\x00', 1, '\x01')$$,
                         h.programme_id, :'acct', h.individual_id)) e;
DELETE FROM card.card WHERE token = 'ct_by_hand';

-- An individual of another programme cannot hold a card on this account.
SELECT individual_id AS foreign_holder FROM test_account('Other order programme') \gset
SELECT card.card_order(:'foreign_holder', :'acct', 'Foreign');

-- A closed account takes no new cards.
UPDATE card.account SET status = 'closed' WHERE id = :'acct';
SELECT card.card_order(:'holder', :'acct', 'Too late');
UPDATE card.account SET status = 'active' WHERE id = :'acct';

-- PAN lengths per brand (issue 16): Mastercard 16, Visa 16 or 19; every
-- other pair is refused with 22023 and a hint naming the brand's lengths,
-- through programme_create and through a direct UPDATE alike.  Rolled
-- back, so that the suites after this one see none of these programmes.
BEGIN;
SELECT b.brand, l AS pan_length, e.state, e.message, e.hint
  FROM (VALUES ('visa', '45671234'), ('mastercard', '51234567')) b(brand, bin)
 CROSS JOIN generate_series(13, 19) l
 CROSS JOIN LATERAL test_error(format('SELECT card.programme_create(%L, %L, %L, pan_length => %s)',
                                      'Length ' || b.brand || ' ' || l, b.bin, b.brand, l)) e
 ORDER BY b.brand DESC, l;
SELECT card.programme_create('Length update mastercard', '51234568', 'mastercard') AS len_mc \gset
SELECT programme_id AS len_visa FROM test_account('Length update visa') \gset
SELECT p.brand, l AS pan_length, e.state, e.hint
  FROM (VALUES ('visa', :'len_visa'::uuid), ('mastercard', :'len_mc'::uuid)) p(brand, id)
 CROSS JOIN generate_series(13, 19) l
 CROSS JOIN LATERAL test_error(format('UPDATE card.programme SET pan_length = %s WHERE id = %L', l, p.id)) e
 ORDER BY p.brand DESC, l;

-- A card of each accepted pair has a PAN of that length, BIN and Luhn digit.
SELECT p.brand, p.pan_length, length(test_pan(c.id)) AS revealed_length, k.luhn_valid, k.bin_matches
  FROM card.programme p
 CROSS JOIN LATERAL card.individual_create(p.id, 'Length holder') i
 CROSS JOIN LATERAL card.account_open(p.id, i) a
 CROSS JOIN LATERAL card.card_order(i, a, 'Length card') c
 CROSS JOIN LATERAL card.pan_check(c.id) k
 WHERE p.name IN ('Length visa 16', 'Length visa 19', 'Length mastercard 16')
 ORDER BY 1 DESC, 2;

-- A programme whose length its brand no longer issues (one from 1.1, made
-- here past the trigger): its card stays and works, card_order refuses a
-- new one (55000) until the owner changes the length.
SELECT programme_id AS old_prog, individual_id AS old_holder, account_id AS old_acct
  FROM test_account('Length legacy') \gset
SELECT id AS old_card FROM card.card_order(:'old_holder', :'old_acct', 'Before') \gset
SELECT id AS keyed_card FROM card.card_order(:'old_holder', :'old_acct', 'Keyed',
                                             idempotency_key => 'legacy-key') \gset
ALTER TABLE card.programme DISABLE TRIGGER programme_pan_length_guard;
UPDATE card.programme SET pan_length = 13 WHERE id = :'old_prog';
ALTER TABLE card.programme ENABLE TRIGGER programme_pan_length_guard;
SELECT e.state, e.message = format('programme "Length legacy" (%s) orders no new cards: its pan_length 13 is not one visa issues',
                                   :'old_prog') AS message_ok, e.hint
  FROM test_error(format('SELECT card.card_order(%L, %L, %L)', :'old_holder', :'old_acct', 'After')) e;
SELECT status FROM card.card_set_status(:'old_card', 'active');
-- The same refusal comes after the idempotent replay: an order retried
-- with its key still gets its card.  A lost card's replacement (a new PAN)
-- is refused alike; a damaged card's reissue keeps its PAN and is made.
-- A bad expiry is still the first refusal, as for any order (22023).
SELECT e.state, e.message FROM test_error(format('SELECT card.card_order(%L, %L, %L, %L, %L)',
                                                 :'old_holder', :'old_acct', 'Past', '01', '2020')) e;
SELECT id = :'keyed_card' AS retry_answered
  FROM card.card_order(:'old_holder', :'old_acct', 'Keyed', idempotency_key => 'legacy-key');
SELECT e.state, e.message = format('programme "Length legacy" (%s) orders no new cards: its pan_length 13 is not one visa issues',
                                   :'old_prog') AS message_ok
  FROM test_error(format('SELECT card.card_replace(%L, %L)', :'old_card', 'lost')) e;
SELECT status FROM card.card WHERE id = :'old_card';
SELECT status, length(test_pan(id)) AS revealed_length FROM card.card_replace(:'keyed_card', 'damaged');
UPDATE card.programme SET pan_length = 16 WHERE id = :'old_prog';
SELECT status, length(test_pan(id)) AS revealed_length
  FROM card.card_order(:'old_holder', :'old_acct', 'After');
ROLLBACK;

-- card_order writes the card, its first audit row and its card.ordered
-- event in one statement, and returns the card as card.cards shows it.
SELECT max(seq) AS seq_before FROM card.event \gset
SELECT row_to_json(r)::text AS ordered, r.id AS ordered_id
  FROM card.card_order(:'holder', :'acct', 'One statement') r \gset
SELECT :'ordered' = row_to_json(v)::text AS returned_as_the_view_shows FROM card.cards v WHERE v.id = :'ordered_id';
SELECT from_status, to_status, reason, channel, actor = current_user AS by_caller
  FROM card.card_status_change WHERE card_id = :'ordered_id';
SELECT type, data - 'last4' - 'exp_month' - 'exp_year' AS data,
       data ->> 'last4' = (SELECT last4 FROM card.card WHERE id = :'ordered_id') AS last4_matches
  FROM card.event WHERE seq > :seq_before;
