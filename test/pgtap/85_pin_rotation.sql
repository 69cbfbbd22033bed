\set ON_ERROR_STOP 1
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS card;

-- PIN tries and key rotation (DESIGN.md section 11), the parts that fit in
-- one transaction: 50 cards activated through the hosted flow, their PINs
-- checked, blocked and reset; rotation's bookkeeping and refusals.  The
-- rotation itself commits per batch: sql/rotate.sql and test/rotate.sh.
BEGIN;
SELECT plan(21);

\ir include/run_as.sql

-- A PIN check and its verdict, read from the table: card_pin_result()
-- gives verdicts only to a later transaction (tested below and in sql/pin.sql).
CREATE FUNCTION pg_temp.tap_verdict(token text, pin text, OUT verified boolean, OUT tries_left integer)
LANGUAGE plpgsql AS $$
DECLARE
    chk uuid := card.card_pin_check(token, pin);
BEGIN
    SELECT p.verified, p.tries_left INTO verified, tries_left FROM card.pin_check p WHERE p.id = chk;
END $$;

SELECT card.programme_create('TAP PIN', '45671234') AS prog \gset
SELECT card.individual_create(:'prog', 'Tap Holder') AS ind \gset
SELECT card.account_open(:'prog', :'ind') AS acc \gset
-- 50 physical cards, each activated with its own PIN (1000 + n).
CREATE TEMP TABLE tap_cards ON COMMIT DROP AS
SELECT c.id, g AS n, (1000 + g)::text AS pin, NULL::text AS token
  FROM generate_series(1, 50) g, LATERAL card.card_order(:'ind', :'acc', 'Card ' || g, type => 'physical') c;
UPDATE tap_cards SET token = card.card_token(id);
SELECT count(*) FROM tap_cards t,
       LATERAL card.card_activation_start(t.id, 'https://app.example.com/back') l,
       LATERAL card.card_activation_complete(substring(l.redirect_url FROM 'token=(.*)$'), t.pin) a;

SELECT is((SELECT count(*)::int FROM card.card k JOIN tap_cards t USING (id)
            WHERE k.status = 'active' AND length(k.pin_hash) = 32 AND k.pin_tries = 0), 50,
    'every card is active with a 32-byte PIN hash and no tries counted');
SELECT is((SELECT count(DISTINCT k.pin_hash)::int FROM card.card k JOIN tap_cards t USING (id)), 50,
    'every PIN hash differs');
-- Within one transaction every try counts, right or wrong: what a check
-- writes must not tell its verdict (a right PIN's count is cleared when its
-- verdict is read, in a later transaction: sql/pin.sql).
SELECT is((SELECT count(*)::int FROM tap_cards t, pg_temp.tap_verdict(t.token, t.pin) v
            WHERE v.verified), 50, 'each card''s own PIN verifies');
SELECT is((SELECT count(*)::int FROM card.card k JOIN tap_cards t USING (id) WHERE k.pin_tries = 1), 50,
    'and is counted like any try until its verdict is read');
SELECT is((SELECT count(*)::int FROM tap_cards t, pg_temp.tap_verdict(t.token, '99' || t.n::text || '9') v
            WHERE NOT v.verified AND v.tries_left = 1), 50, 'a wrong PIN is refused and counted');
SELECT is((SELECT count(*)::int FROM tap_cards t, pg_temp.tap_verdict(t.token, (SELECT pin FROM tap_cards o WHERE o.n = t.n % 50 + 1)) v
            WHERE NOT v.verified AND v.tries_left = 0), 50, 'another card''s PIN does not verify, and uses the last try');
SELECT is((SELECT count(*)::int FROM card.card k JOIN tap_cards t USING (id) WHERE k.pin_tries = 3), 50,
    'three tries on each card');
SELECT is((SELECT count(*)::int FROM tap_cards t, pg_temp.tap_verdict(t.token, t.pin) v
            WHERE NOT v.verified AND v.tries_left = 0), 50, 'a blocked PIN refuses even the right PIN');
SELECT is((SELECT count(*)::int FROM card.pin_check p JOIN tap_cards t ON t.id = p.card_id
            WHERE p.used_last_try AND NOT p.verified), 50,
    'for each card, the one wrong try that used the last try is marked (its verdict will report the block)');
SELECT is((SELECT count(*)::int FROM card.event e JOIN tap_cards t ON t.id = e.card_id WHERE e.type = 'card.pin_blocked'), 0,
    'no card.pin_blocked event before a verdict is read');
SELECT is((SELECT count(*)::int FROM card.pin_check p JOIN tap_cards t ON t.id = p.card_id), 200,
    'every check is kept until its verdict is read');
-- Reset through the hosted page, each to a new PIN (2000 + n).
SELECT count(*) FROM tap_cards t,
       LATERAL card.card_pin_reset_start(t.id, 'https://app.example.com/pin') l,
       LATERAL card.card_pin_reset(substring(l.redirect_url FROM 'token=(.*)$'), (2000 + t.n)::text) r;
SELECT is((SELECT count(*)::int FROM card.card k JOIN tap_cards t USING (id) WHERE k.pin_tries = 0), 50,
    'the reset cleared every count');
SELECT is((SELECT count(*)::int FROM tap_cards t, pg_temp.tap_verdict(t.token, (2000 + t.n)::text) v
            WHERE v.verified AND v.tries_left = 2), 50, 'after the reset the new PIN verifies');
SELECT is((SELECT count(*)::int FROM tap_cards t, pg_temp.tap_verdict(t.token, t.pin) v WHERE v.verified), 0,
    'and the old one no longer does');
SELECT pin_tries AS tries_before FROM card.card WHERE id = (SELECT id FROM tap_cards WHERE n = 1) \gset
SELECT is(pg_temp.tap_state(format('SELECT pg_temp.tap_verdict(%L, %L)', (SELECT token FROM tap_cards WHERE n = 1), '12a4')),
    '22023', 'a malformed PIN: 22023');
SELECT is(pg_temp.tap_state(format('SELECT card.card_pin_result(%L)',
                                   card.card_pin_check((SELECT token FROM tap_cards WHERE n = 2), '2002'))),
    '55000', 'the verdict of a check of this very transaction is refused: 55000');
SELECT is((SELECT pin_tries FROM card.card WHERE id = (SELECT id FROM tap_cards WHERE n = 1)), :'tries_before'::smallint,
    'and it counted nothing');

-- ---------------------------------------------------------------------------
-- Key rotation
-- ---------------------------------------------------------------------------
SELECT is((SELECT sum(cards)::int FROM card.pan_key_versions()), (SELECT count(*)::int FROM card.card),
    'pan_key_versions accounts for every card');
SELECT is((SELECT row(rotated, done)::text FROM card.rotate_keys_batch(10)), '(0,t)',
    'with every PAN under the newest version, a batch finds nothing to do');
SELECT is(pg_temp.tap_state('SELECT card.rotate_keys_batch(0)'), '22023', 'a batch of 0: 22023');
SELECT is(pg_temp.tap_state('CALL card.rotate_keys(10)'), '2D000',
    'rotate_keys inside a transaction: 2D000 (it commits per batch)');

SELECT * FROM finish();
ROLLBACK;
