\set ON_ERROR_STOP 1
-- PAN, last4 and token (DESIGN.md section 6): 2000 virtual cards ordered in
-- one statement, then checked in bulk.  No PAN is ever printed: card.pan_check
-- reports facts about each stored PAN.
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS card;

BEGIN;
SELECT plan(57);

-- ---------------------------------------------------------------------------
-- Set-up: a Visa programme with an 8-digit BIN, one holder, one account
-- ---------------------------------------------------------------------------

SELECT card.programme_create('TAP', '45671234') AS prog \gset
SELECT card.individual_create(:'prog', 'Tap Holder') AS ind \gset
SELECT card.account_open(:'prog', :'ind') AS acc \gset

CREATE TEMP TABLE tap_cards ON COMMIT DROP AS
SELECT c.*
  FROM generate_series(1, 2000) g,
       LATERAL card.card_order(:'ind', :'acc', 'Card ' || g) c;

-- The secret columns, joined once for the checks below.
CREATE TEMP TABLE tap_secret ON COMMIT DROP AS
SELECT k.id, k.last4, k.token, k.pan_ciphertext, k.pan_key_version, k.pan_fingerprint
  FROM card.card k JOIN tap_cards t USING (id);

-- ---------------------------------------------------------------------------
-- The order
-- ---------------------------------------------------------------------------

SELECT is((SELECT count(*)::int FROM tap_cards), 2000,
    'one statement ordered 2000 cards');
SELECT is((SELECT count(*)::int FROM card.card WHERE programme_id = :'prog'), 2000,
    'the programme holds the 2000 cards');
SELECT is((SELECT count(DISTINCT id)::int FROM tap_cards), 2000,
    'every ordered card has its own id');
SELECT is(
    (SELECT count(*)::int FROM tap_cards
      WHERE (status, type, brand, region, currency, account_id, individual_id)
            IS DISTINCT FROM ('not_activated'::card.card_status, 'virtual'::card.card_type,
                              'visa', 'europe', 'EUR', :'acc'::uuid, :'ind'::uuid)),
    0, 'every card is a not_activated virtual visa card in europe on the EUR account');
SELECT is(
    (SELECT count(*)::int FROM tap_cards
      WHERE make_date(exp_year::int, exp_month::int, 1)
            <> (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '3 years')::date),
    0, 'without exp_month/exp_year a card expires after the programme''s default 3 years');
SELECT is(
    (SELECT count(*)::int FROM tap_cards t JOIN card.cards v USING (id)
      WHERE row(t.*) IS DISTINCT FROM row(v.*)),
    0, 'card.card_order returns the card as card.cards shows it');
SELECT is(
    (SELECT count(*)::int FROM card.card_status_change s JOIN tap_cards t ON t.id = s.card_id
      WHERE s.from_status IS NULL AND s.to_status = 'not_activated'),
    2000, 'each order wrote one audit row (none -> not_activated)');

-- ---------------------------------------------------------------------------
-- Tokens: unique, URL-safe, opaque
-- ---------------------------------------------------------------------------

SELECT is((SELECT count(DISTINCT token)::int FROM tap_secret), 2000,
    'the 2000 tokens are all different');
SELECT is(
    (SELECT count(*)::int FROM card.card a JOIN card.card b
         ON a.token = b.token AND a.id <> b.id),
    0, 'no card shares its token with any other card');
SELECT is(
    (SELECT count(*)::int FROM tap_secret WHERE token !~ '^ct_[A-Za-z0-9_-]+$'),
    0, 'every token matches ^ct_[A-Za-z0-9_-]+$ (URL-safe)');
SELECT is(
    (SELECT count(*)::int FROM tap_secret WHERE length(token) < 3 + 22),
    0, 'every token carries at least 128 bits (22 base64url characters after ct_)');
SELECT is(
    (SELECT count(*)::int FROM tap_secret WHERE token ~ '[0-9]{13}'),
    0, 'no token holds a run of 13 or more digits (a PAN is at least 13)');
SELECT is(
    (SELECT count(*)::int FROM tap_secret WHERE strpos(token, '45671234') > 0),
    0, 'no token holds the BIN');
SELECT is(
    (SELECT count(*)::int FROM tap_secret WHERE card.card_token(id) IS DISTINCT FROM token),
    0, 'card.card_token(id) returns the token of every card');
SELECT throws_ok(
    format('SELECT card.card_token(%L)', gen_random_uuid()),
    'P0002', NULL, 'card.card_token of an unknown card raises P0002');
SELECT throws_ok(
    'SELECT card.card_token(NULL)',
    'P0002', NULL, 'card.card_token(NULL) raises P0002');

-- ---------------------------------------------------------------------------
-- last4: the PAN's last four digits, spread over 0000-9999
-- ---------------------------------------------------------------------------

-- 2000 uniform draws from 10000 values give about 1813 distinct ones
-- (standard deviation about 12); 1500 is over 25 deviations below.
SELECT cmp_ok((SELECT count(DISTINCT last4)::int FROM tap_cards), '>', 1500,
    'more than 1500 distinct last4 values among 2000 cards');
-- Each digit of each position is Binomial(2000, 0.1): mean 200, sd 13.4.
-- P(outside 120..280) is 6.0e-9 per cell (exact binomial tail), 2.4e-7 for
-- all 40 cells together: a failure means a biased or broken generator.
SELECT is(
    (SELECT count(*)::int FROM generate_series(0, 9) d
       LEFT JOIN (SELECT substr(last4, 1, 1)::int AS d, count(*) AS n
                    FROM tap_cards GROUP BY 1) s USING (d)
      WHERE coalesce(s.n, 0) BETWEEN 120 AND 280),
    10, 'each first digit 0-9 of last4 occurs 120 to 280 times in 2000');
SELECT is(
    (SELECT count(*)::int FROM generate_series(1, 4) pos, generate_series(0, 9) d
       LEFT JOIN LATERAL (SELECT count(*) AS n FROM tap_cards
                           WHERE substr(last4, pos, 1)::int = d) s ON true
      WHERE s.n BETWEEN 120 AND 280),
    40, 'each digit 0-9 occurs 120 to 280 times in each position of last4');

-- ---------------------------------------------------------------------------
-- The stored PAN, checked without revealing it
-- ---------------------------------------------------------------------------

SELECT is(
    (SELECT count(*)::int FROM tap_cards t, LATERAL card.pan_check(t.id) k
      WHERE (k.pan_length = 16 AND k.luhn_valid AND k.bin_matches
             AND k.last4_matches AND k.fingerprint_matches) IS NOT TRUE),
    0, 'every PAN has 16 digits, passes Luhn, starts with the BIN, ends with last4 and matches its fingerprint');
SELECT is(
    (SELECT count(*)::int FROM tap_cards t, LATERAL card.pan_check(t.id) k),
    2000, 'card.pan_check reports on each of the 2000 cards');

SELECT is((SELECT count(DISTINCT pan_ciphertext)::int FROM tap_secret), 2000,
    'pan_ciphertext differs for every card');
SELECT is((SELECT count(DISTINCT pan_fingerprint)::int FROM tap_secret), 2000,
    'pan_fingerprint differs for every card (PANs are unique in the programme)');
SELECT is(
    (SELECT count(*)::int FROM tap_secret WHERE octet_length(pan_fingerprint) <> 32),
    0, 'every pan_fingerprint is 32 bytes (HMAC-SHA-256)');
SELECT is(
    (SELECT count(*)::int FROM tap_secret
      WHERE pan_ciphertext = convert_to(last4, 'UTF8')
         OR position(convert_to('45671234', 'UTF8') IN pan_ciphertext) > 0),
    0, 'no pan_ciphertext is the plain last4 or holds the BIN in clear');
SELECT is(
    (SELECT count(*)::int FROM tap_secret
      WHERE position(convert_to('45671234', 'UTF8') IN pan_fingerprint) > 0),
    0, 'no pan_fingerprint holds the BIN in clear');
SELECT is(
    (SELECT count(*)::int FROM tap_secret WHERE octet_length(pan_ciphertext) < 16 + 28),
    0, 'every pan_ciphertext has room for the PAN, a 12-byte IV and a 16-byte GCM tag');
SELECT results_eq(
    $$SELECT count(DISTINCT pan_key_version)::int, bool_and(pan_key_version > 0)
        FROM tap_secret$$,
    $$VALUES (1, true)$$,
    'all new cards are sealed under one (the newest) key version');

-- pan_check is not vacuous: it notices a wrong last4, BIN or fingerprint.
SELECT id AS victim FROM tap_cards ORDER BY id LIMIT 1 \gset
SELECT id AS other FROM tap_cards ORDER BY id DESC LIMIT 1 \gset

UPDATE card.card SET last4 = CASE WHEN last4 = '0000' THEN '0001' ELSE '0000' END
 WHERE id = :'victim';
SELECT results_eq(
    format('SELECT luhn_valid, bin_matches, last4_matches, fingerprint_matches FROM card.pan_check(%L)', :'victim'),
    $$VALUES (true, true, false, true)$$,
    'pan_check reports last4_matches false for a tampered last4');
UPDATE card.card c SET last4 = t.last4 FROM tap_cards t
 WHERE c.id = t.id AND c.id = :'victim';

UPDATE card.card SET pan_fingerprint = set_byte(pan_fingerprint, 31, get_byte(pan_fingerprint, 31) # 1)
 WHERE id = :'victim';
SELECT results_eq(
    format('SELECT last4_matches, fingerprint_matches FROM card.pan_check(%L)', :'victim'),
    $$VALUES (true, false)$$,
    'pan_check reports fingerprint_matches false for an altered fingerprint');
UPDATE card.card c SET pan_fingerprint = s.pan_fingerprint FROM tap_secret s
 WHERE c.id = s.id AND c.id = :'victim';

UPDATE card.programme SET bin = '45671235' WHERE id = :'prog';
SELECT results_eq(
    format('SELECT pan_length, bin_matches, last4_matches FROM card.pan_check(%L)', :'victim'),
    $$VALUES (16, false, true)$$,
    'pan_check reports bin_matches false when the PAN does not start with the BIN');
UPDATE card.programme SET bin = '45671234' WHERE id = :'prog';

-- The ciphertext is bound to its card (AES-GCM associated data) and sealed.
SELECT throws_ok(
    format($$UPDATE card.card SET pan_ciphertext = (SELECT pan_ciphertext FROM card.card WHERE id = %L)
              WHERE id = %L;
             SELECT card.pan_check(%L)$$, :'other', :'victim', :'victim'),
    'XX001', NULL, 'another card''s ciphertext does not decrypt for this card');
SELECT throws_ok(
    format($$UPDATE card.card
                SET pan_ciphertext = set_byte(pan_ciphertext, 20, get_byte(pan_ciphertext, 20) # 1)
              WHERE id = %L;
             SELECT card.pan_check(%L)$$, :'victim', :'victim'),
    'XX001', NULL, 'a ciphertext with one flipped bit fails authentication');
SELECT is(
    (SELECT (k.luhn_valid AND k.last4_matches AND k.fingerprint_matches)
       FROM card.pan_check(:'victim') k),
    true, 'the failed tampering left the card intact');
SELECT throws_ok(
    format('SELECT * FROM card.pan_check(%L)', gen_random_uuid()),
    'P0002', NULL, 'card.pan_check of an unknown card raises P0002');

-- ---------------------------------------------------------------------------
-- A Mastercard programme: 6-digit BIN, 16-digit PANs (the only length
-- Mastercard issues), 5 years validity
-- ---------------------------------------------------------------------------

SELECT card.programme_create('TAP MC', '510510', 'mastercard', 'north_america', 16, 5) AS mc \gset
SELECT card.individual_create(:'mc', 'Tap MC Holder') AS mc_ind \gset
SELECT card.account_open(:'mc', :'mc_ind', 'USD') AS mc_acc \gset

CREATE TEMP TABLE tap_mc ON COMMIT DROP AS
SELECT c.*
  FROM generate_series(1, 25) g,
       LATERAL card.card_order(account_id => :'mc_acc', individual_id => :'mc_ind',
                               display_name => 'MC ' || g) c;

SELECT is((SELECT count(*)::int FROM tap_mc), 25, '25 Mastercard cards ordered');
SELECT is(
    (SELECT count(*)::int FROM tap_mc t, LATERAL card.pan_check(t.id) k
      WHERE (k.pan_length = 16 AND k.luhn_valid AND k.bin_matches
             AND k.last4_matches AND k.fingerprint_matches) IS NOT TRUE),
    0, 'every Mastercard PAN has 16 digits, passes Luhn, starts with 510510, ends with last4');
SELECT is(
    (SELECT count(*)::int FROM tap_mc
      WHERE (brand, region, currency) IS DISTINCT FROM ('mastercard', 'north_america', 'USD')),
    0, 'brand and region come from the programme, currency from the account');
SELECT is(
    (SELECT count(*)::int FROM tap_mc
      WHERE make_date(exp_year::int, exp_month::int, 1)
            <> (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '5 years')::date),
    0, 'the programme''s validity_years (5) sets the default expiry');
SELECT is(
    (SELECT count(*)::int FROM card.card c JOIN tap_mc t USING (id)
      WHERE octet_length(c.pan_fingerprint) <> 32 OR c.token !~ '^ct_[A-Za-z0-9_-]+$'
         OR position(convert_to('510510', 'UTF8') IN c.pan_ciphertext) > 0),
    0, 'Mastercard cards too have 32-byte fingerprints, URL-safe tokens, no BIN in clear');
SELECT is(
    (SELECT count(*)::int FROM card.card c JOIN tap_secret s ON s.token = c.token
      WHERE c.programme_id = :'mc'),
    0, 'no Mastercard token repeats a Visa card''s token');
SELECT is(
    (SELECT count(*)::int FROM card.card WHERE programme_id = :'prog'), 2000,
    'ordering in one programme adds nothing to another');

-- ---------------------------------------------------------------------------
-- Every accepted brand, length and BIN (issue 16), as a checkout sees it:
-- 200 PANs of each configuration revealed through the hosted page carry
-- the BIN, the length and a valid Luhn digit (computed here, not by
-- pan_check), and their random digits and check digits are uniform.
-- ---------------------------------------------------------------------------

CREATE TEMP TABLE tap_configs (config text, prog uuid, ind uuid, acc uuid) ON COMMIT DROP;
INSERT INTO tap_configs (config, prog) VALUES
  ('visa 16, 6-digit BIN', card.programme_create('TAP conf 1', '412345', 'visa', 'europe', 16)),
  ('visa 16, 8-digit BIN', card.programme_create('TAP conf 2', '41234567', 'visa', 'europe', 16)),
  ('visa 19, 6-digit BIN', card.programme_create('TAP conf 3', '498765', 'visa', 'europe', 19)),
  ('visa 19, 8-digit BIN', card.programme_create('TAP conf 4', '49876543', 'visa', 'europe', 19)),
  ('mastercard 16, 2-series 6-digit BIN', card.programme_create('TAP conf 5', '222100', 'mastercard', 'europe', 16)),
  ('mastercard 16, 2-series 8-digit BIN', card.programme_create('TAP conf 6', '27209876', 'mastercard', 'europe', 16)),
  ('mastercard 16, 5-series 6-digit BIN', card.programme_create('TAP conf 7', '550123', 'mastercard', 'europe', 16)),
  ('mastercard 16, 5-series 8-digit BIN', card.programme_create('TAP conf 8', '51987654', 'mastercard', 'europe', 16));
UPDATE tap_configs SET ind = card.individual_create(prog, 'Holder of ' || config);
UPDATE tap_configs SET acc = card.account_open(prog, ind);

-- The PAN the hosted page shows, through a fresh reveal link.
\ir include/reveal.sql

-- The Luhn (mod 10) check: from the right, every second digit doubled.
CREATE FUNCTION pg_temp.tap_luhn(pan text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT sum(CASE WHEN i % 2 = 0 THEN (2 * d) / 10 + (2 * d) % 10 ELSE d END) % 10 = 0
      FROM (SELECT i, substr(pan, length(pan) + 1 - i, 1)::int AS d
              FROM generate_series(1, length(pan)) i) s
$$;

CREATE TEMP TABLE tap_conf_pans ON COMMIT DROP AS
SELECT t.config, p.brand, p.bin, p.pan_length::int AS pan_length, c.id, c.brand AS card_brand, c.last4,
       (pg_temp.tap_reveal(c.id)).pan AS pan
  FROM tap_configs t
  JOIN card.programme p ON p.id = t.prog
  CROSS JOIN generate_series(1, 200) g
  CROSS JOIN LATERAL card.card_order(t.ind, t.acc, 'Conf card ' || g) c;

SELECT is(
    (SELECT count(*)::int FROM tap_conf_pans x
      WHERE x.config = t.config AND x.pan ~ '^[0-9]+$' AND length(x.pan) = x.pan_length
        AND left(x.pan, length(x.bin)) = x.bin AND pg_temp.tap_luhn(x.pan)
        AND right(x.pan, 4) = x.last4 AND x.card_brand = x.brand),
    200, t.config || ': 200 revealed PANs of ' || t.pan_length || ' digits, with the BIN, a valid Luhn digit and last4')
  FROM (SELECT DISTINCT config, pan_length FROM tap_conf_pans) t ORDER BY t.config;
SELECT is((SELECT count(DISTINCT pan)::int FROM tap_conf_pans), 1600, 'the 1600 PANs are all different');
-- The Luhn check above is not vacuous: any other last digit fails it.
SELECT is(
    (SELECT count(*)::int FROM tap_conf_pans x, generate_series(1, 9) k
      WHERE pg_temp.tap_luhn(left(x.pan, -1) || ((right(x.pan, 1)::int + k) % 10)::text)),
    0, 'each PAN with any other check digit fails the Luhn check');

-- Uniformity.  Within a configuration, each of the n random digits (after
-- the BIN, before the check digit; 1400 to 2400 of them) is 0-9 with
-- probability 1/10: each digit's count is Binomial(n, 0.1), and 6 standard
-- deviations either side is missed with probability about 2e-9 per cell,
-- 2e-7 for the 80 cells.  A generator that fills only 16 digits of a
-- 19-digit PAN, or skips a position, is far outside.
SELECT is(
    (SELECT count(*)::int
       FROM (SELECT x.config, d, count(*) FILTER (WHERE r.digit = d) AS hits, count(*) AS n
               FROM tap_conf_pans x
               CROSS JOIN LATERAL (SELECT substr(x.pan, i, 1)::int AS digit
                                     FROM generate_series(length(x.bin) + 1, x.pan_length - 1) i) r
               CROSS JOIN generate_series(0, 9) d
              GROUP BY x.config, d) s
      WHERE abs(s.hits - s.n / 10.0) > 6 * sqrt(s.n * 0.09)),
    0, 'in each configuration every random digit 0-9 occurs 10% of the time, within 6 standard deviations');
-- The check digit of a uniform payload is uniform too: over the 1600 PANs
-- each is Binomial(1600, 0.1), mean 160, sd 12; 88..232 is 6 sd.
SELECT is(
    (SELECT count(*)::int FROM generate_series(0, 9) d
       LEFT JOIN (SELECT right(pan, 1)::int AS d, count(*) AS n FROM tap_conf_pans GROUP BY 1) s USING (d)
      WHERE coalesce(s.n, 0) BETWEEN 88 AND 232),
    10, 'each check digit 0-9 ends 88 to 232 of the 1600 PANs');

-- ---------------------------------------------------------------------------
-- The JSON form answers with exactly the fields of the API
-- ---------------------------------------------------------------------------

SELECT card.card_order(jsonb_build_object(
           'individual_id', :'ind', 'account_id', :'acc', 'display_name', 'JSON card')) AS json_card \gset
SELECT set_eq(
    format('SELECT jsonb_object_keys(%L::jsonb)', :'json_card'),
    ARRAY['id', 'display_name', 'type', 'brand', 'region', 'exp_month', 'exp_year',
          'last4', 'currency', 'account_id', 'individual_id', 'status'],
    'card.card_order(jsonb) answers with exactly the fields of POST /v3/cards');
SELECT is(
    (SELECT k.last4_matches AND k.bin_matches AND k.luhn_valid
       FROM card.pan_check((:'json_card'::jsonb ->> 'id')::uuid) k),
    true, 'the card ordered through JSON has a valid PAN');
SELECT throws_ok(
    format('SELECT card.card_order(%L::jsonb)', jsonb_build_object(
        'individual_id', :'ind', 'account_id', :'acc', 'display_name', 'x', 'pan', '4567123400000000')),
    '22023', NULL, 'card.card_order(jsonb) refuses an unknown field such as pan');

SELECT * FROM finish();
ROLLBACK;
