\set ON_ERROR_STOP 1
-- A PAN is unique in the whole database (DESIGN.md section 6; issue 10,
-- defect 8: the fingerprint was unique per programme, so two programmes
-- sharing a BIN could issue the same PAN).  A collision is forced by
-- writing a second card with the first card's fingerprint under another
-- programme of the same BIN, as the superuser can.
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS card;

BEGIN;
SELECT plan(4);

SELECT card.programme_create('TAP shared BIN 1', '45671299') AS prog1 \gset
SELECT card.programme_create('TAP shared BIN 2', '45671299') AS prog2 \gset
SELECT card.individual_create(:'prog1', 'Holder one') AS ind1 \gset
SELECT card.account_open(:'prog1', :'ind1') AS acc1 \gset
SELECT card.individual_create(:'prog2', 'Holder two') AS ind2 \gset
SELECT card.account_open(:'prog2', :'ind2') AS acc2 \gset
SELECT id AS first FROM card.card_order(:'ind1', :'acc1', 'First') \gset
SELECT id AS second FROM card.card_order(:'ind2', :'acc2', 'Second') \gset

SELECT col_is_unique('card', 'card', ARRAY['pan_fingerprint', 'pan_sequence'],
    'the fingerprint and sequence are unique across programmes');
SELECT throws_ok(format(
    'UPDATE card.card SET pan_fingerprint = (SELECT pan_fingerprint FROM card.card WHERE id = %L) WHERE id = %L',
    :'first', :'second'), '23505', NULL,
    'a card of another programme cannot hold a PAN already issued');
SELECT is((SELECT count(DISTINCT pan_fingerprint)::int FROM card.card WHERE id IN (:'first', :'second')), 2,
    'both cards keep their own PANs');
-- A reissue shares its PAN, told apart by pan_sequence.
SELECT id AS reissue FROM card.card_replace(:'first', 'damaged') \gset
SELECT is((SELECT count(*)::int FROM card.card c JOIN card.card f ON f.pan_fingerprint = c.pan_fingerprint
            WHERE f.id = :'first'), 2, 'a reissue carries its PAN under the same fingerprint');

SELECT * FROM finish();
ROLLBACK;
