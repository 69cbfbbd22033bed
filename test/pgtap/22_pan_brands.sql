\set ON_ERROR_STOP 1
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS card;

-- PAN lengths per brand (DESIGN.md section 3, issue 16): Mastercard issues
-- 16 digits, Visa 16 or 19.  Every brand and length pair from 13 to 19,
-- through programme_create and through a direct UPDATE by the owner, with
-- the SQLSTATE of each refusal and the hint naming the lengths; and a
-- programme from before 1.2 with a length now refused (as the update
-- leaves one): it keeps its cards, takes no new one (55000) until its
-- length is changed, and still answers a retried order.
BEGIN;
SELECT plan(49);

\ir include/run_as.sql

-- The SQLSTATE and hint of a statement, or 'ran'.
CREATE FUNCTION pg_temp.tap_refusal(statement text, OUT state text, OUT hint text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    state := 'ran';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, hint = PG_EXCEPTION_HINT;
END $$;

CREATE TEMP TABLE tap_pairs ON COMMIT DROP AS
SELECT b.brand, b.bin, l AS pan_length,
       (b.brand = 'visa' AND l IN (16, 19)) OR (b.brand = 'mastercard' AND l = 16) AS allowed
  FROM (VALUES ('visa', '45671234'), ('mastercard', '51234567')) b(brand, bin),
       generate_series(13, 19) l;

-- ---------------------------------------------------------------------------
-- programme_create: 14 pairs
-- ---------------------------------------------------------------------------
CREATE TEMP TABLE tap_created ON COMMIT DROP AS
SELECT p.*, r.state, r.hint
  FROM tap_pairs p,
       pg_temp.tap_refusal(format('SELECT card.programme_create(%L, %L, %L, pan_length => %s)',
                                  'TAP brands ' || p.brand || ' ' || p.pan_length, p.bin, p.brand,
                                  p.pan_length)) r;
SELECT is(c.state, CASE WHEN c.allowed THEN 'ran' ELSE '22023' END,
          format('programme_create %s with pan_length %s: %s', c.brand, c.pan_length,
                 CASE WHEN c.allowed THEN 'accepted' ELSE 'refused with 22023' END))
  FROM tap_created c ORDER BY c.brand DESC, c.pan_length;
SELECT is((SELECT string_agg(DISTINCT c.brand || ': ' || c.hint, ' | ') FROM tap_created c WHERE NOT c.allowed),
    'mastercard: A mastercard PAN has 16 digits. | visa: A visa PAN has 16 or 19 digits.',
    'each refusal hints at the lengths its brand issues');
SELECT is((SELECT string_agg(p.brand || ' ' || p.pan_length, ', ' ORDER BY p.brand DESC, p.pan_length)
             FROM card.programme p WHERE p.name LIKE 'TAP brands %'),
    'visa 16, visa 19, mastercard 16',
    'exactly the accepted pairs made programmes');
SELECT is(pg_temp.tap_state($$SELECT card.programme_create('TAP brands 12', '45671234', pan_length => 12)$$),
    '22023', 'a length below 13 is refused with 22023');
SELECT is(pg_temp.tap_state($$SELECT card.programme_create('TAP brands 20', '45671234', pan_length => 20)$$),
    '22023', 'a length above 19 is refused with 22023');
SELECT is(pg_temp.tap_state($$SELECT card.programme_create('TAP brands 2-series', '22210000', 'mastercard', pan_length => 19)$$),
    '22023', 'a 2-series Mastercard BIN does not make 19 digits acceptable');

-- ---------------------------------------------------------------------------
-- A direct UPDATE by the owner: the same 14 pairs, and a change of brand
-- ---------------------------------------------------------------------------
SELECT card.programme_create('TAP brands update visa', '45671299') AS upd_visa \gset
SELECT card.programme_create('TAP brands update mastercard', '51234599', 'mastercard') AS upd_mc \gset
CREATE TEMP TABLE tap_updated ON COMMIT DROP AS
SELECT p.*, r.state, r.hint
  FROM tap_pairs p,
       pg_temp.tap_refusal(format('UPDATE card.programme SET pan_length = %s WHERE id = %L', p.pan_length,
                                  CASE p.brand WHEN 'visa' THEN :'upd_visa' ELSE :'upd_mc' END)) r;
SELECT is(u.state, CASE WHEN u.allowed THEN 'ran' ELSE '22023' END,
          format('UPDATE of a %s programme to pan_length %s: %s', u.brand, u.pan_length,
                 CASE WHEN u.allowed THEN 'accepted' ELSE 'refused with 22023' END))
  FROM tap_updated u ORDER BY u.brand DESC, u.pan_length;
SELECT is((SELECT string_agg(DISTINCT u.brand || ': ' || u.hint, ' | ') FROM tap_updated u WHERE NOT u.allowed),
    'mastercard: A mastercard PAN has 16 digits. | visa: A visa PAN has 16 or 19 digits.',
    'each refused UPDATE hints at the lengths its brand issues');
SELECT results_eq(
    format('SELECT brand, pan_length::int FROM card.programme WHERE id IN (%L, %L) ORDER BY brand DESC', :'upd_visa', :'upd_mc'),
    $$VALUES ('visa', 19), ('mastercard', 16)$$,
    'the last accepted UPDATE stands, every refused one changed nothing');
SELECT is(pg_temp.tap_state(format($$UPDATE card.programme SET brand = 'mastercard', bin = '51234598' WHERE id = %L$$, :'upd_visa')),
    '22023', 'a Visa programme of 19 digits cannot become a Mastercard one');
SELECT is(pg_temp.tap_state(format($$UPDATE card.programme SET brand = 'mastercard', bin = '51234598', pan_length = 16 WHERE id = %L$$, :'upd_visa')),
    'ran', 'it can with 16 digits');

-- ---------------------------------------------------------------------------
-- A programme from before 1.2 with a length now refused
-- ---------------------------------------------------------------------------
-- Made as 1.1 would have made it: a card ordered, then its length set
-- past the trigger (the update leaves such programmes as they were).
SELECT card.programme_create('TAP brands legacy', '51234597', 'mastercard') AS legacy \gset
SELECT card.individual_create(:'legacy', 'Legacy holder') AS legacy_ind \gset
SELECT card.account_open(:'legacy', :'legacy_ind') AS legacy_acc \gset
SELECT id AS legacy_card FROM card.card_order(:'legacy_ind', :'legacy_acc', 'Before', idempotency_key => 'tap-legacy-1') \gset
ALTER TABLE card.programme DISABLE TRIGGER programme_pan_length_guard;
UPDATE card.programme SET pan_length = 19 WHERE id = :'legacy';
ALTER TABLE card.programme ENABLE TRIGGER programme_pan_length_guard;

SELECT is((pg_temp.tap_refusal(format('SELECT card.card_order(%L, %L, %L)', :'legacy_ind', :'legacy_acc', 'New'))).state,
    '55000', 'card_order under a programme whose length its brand does not issue: 55000');
SELECT is((pg_temp.tap_refusal(format('SELECT card.card_order(%L, %L, %L)', :'legacy_ind', :'legacy_acc', 'New'))).hint,
    'A mastercard PAN has 16 digits. Change the programme''s pan_length to one of them (as the extension''s owner: UPDATE card.programme).',
    'with a hint naming the lengths and how to change it');
SELECT is((pg_temp.tap_refusal(format('SELECT card.card_order(%L::jsonb)', jsonb_build_object(
              'individual_id', :'legacy_ind', 'account_id', :'legacy_acc', 'display_name', 'New')))).state,
    '55000', 'the JSON form refuses it too');
SELECT is((SELECT count(*)::int FROM card.card WHERE programme_id = :'legacy'), 1, 'and nothing was ordered');
SELECT is((card.card_order(:'legacy_ind', :'legacy_acc', 'Before', idempotency_key => 'tap-legacy-1')).id, :'legacy_card'::uuid,
    'a retried order whose key already made its card still returns that card');
SELECT is((card.card_set_status(:'legacy_card', 'active')).status, 'active'::card.card_status,
    'the programme''s card keeps working (activated)');
SELECT is(pg_temp.tap_state(format($$SELECT card.card_replace(%L, 'lost')$$, :'legacy_card')), '55000',
    'a lost card''s replacement, which needs a new PAN, is refused too');
SELECT is((SELECT status FROM card.card WHERE id = :'legacy_card'), 'active'::card.card_status,
    'and the card is not ended by the refused replacement');
SELECT is(pg_temp.tap_state(format($$UPDATE card.programme SET name = 'TAP brands legacy renamed' WHERE id = %L$$, :'legacy')),
    'ran', 'a change that leaves its length alone is allowed');
SELECT is(pg_temp.tap_state(format($$UPDATE card.programme SET pan_length = 13 WHERE id = %L$$, :'legacy')),
    '22023', 'a change to another refused length is not');
SELECT is(pg_temp.tap_state(format($$UPDATE card.programme SET pan_length = 16 WHERE id = %L$$, :'legacy')),
    'ran', 'the owner changes its length to 16');
SELECT is((SELECT k.pan_length FROM card.card_order(:'legacy_ind', :'legacy_acc', 'After') c, card.pan_check(c.id) k),
    16, 'and it orders cards again, of 16 digits');

SELECT * FROM finish();
ROLLBACK;
