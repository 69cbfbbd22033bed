\set ON_ERROR_STOP 1
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS card;

-- Reveal and replacement in bulk (DESIGN.md section 11): 200 cards
-- revealed, 120 replaced for every reason; the properties that must hold
-- for each of them, and the refusals with their SQLSTATEs.
BEGIN;
SELECT plan(30);

SELECT card.programme_create('TAP reveal', '45671234') AS prog \gset
SELECT card.individual_create(:'prog', 'Tap Holder') AS ind \gset
SELECT card.account_open(:'prog', :'ind') AS acc \gset
CREATE TEMP TABLE tap_cards ON COMMIT DROP AS
SELECT c.id, g AS n FROM generate_series(1, 200) g, LATERAL card.card_order(:'ind', :'acc', 'Card ' || g) c;
SELECT count(*) FROM tap_cards t, card.card_set_status(t.id, 'active') s;

-- What the hosted page is shown, for each card, through a fresh link.
\ir include/reveal.sql
CREATE TEMP TABLE tap_shown ON COMMIT DROP AS
SELECT t.id, r.* FROM tap_cards t, pg_temp.tap_reveal(t.id) r;

-- ---------------------------------------------------------------------------
-- Reveal
-- ---------------------------------------------------------------------------
SELECT is((SELECT count(DISTINCT pan)::int FROM tap_shown), 200, 'each card reveals its own PAN');
SELECT is((SELECT count(*)::int FROM tap_shown s JOIN card.card k USING (id)
            WHERE s.pan !~ '^45671234[0-9]{8}$' OR right(s.pan, 4) <> k.last4
               OR (s.exp_month, s.exp_year) <> (k.exp_month, k.exp_year)),
    0, 'every revealed PAN has the BIN, the card''s last4 and expiry');
SELECT is((SELECT count(*)::int FROM tap_shown s, card.pan_check(s.id) p WHERE NOT p.luhn_valid), 0,
    'every revealed PAN is the one pan_check finds Luhn-valid');
SELECT is((SELECT count(*)::int FROM tap_shown WHERE cvv !~ '^[0-9]{3}$'), 0, 'every CVV is three digits');
SELECT cmp_ok((SELECT count(DISTINCT cvv)::int FROM tap_shown), '>', 150,
    'CVVs spread over the thousand values (200 cards, more than 150 distinct)');
SELECT is((SELECT count(*)::int FROM tap_shown s, pg_temp.tap_reveal(s.id) again
            WHERE again.pan <> s.pan OR again.cvv <> s.cvv), 0,
    'a second reveal shows the same PAN and CVV (derived, not random)');
SELECT is((SELECT count(*)::int FROM card.event e WHERE e.type = 'card.revealed'
              AND e.card_id IN (SELECT id FROM tap_cards)), 400, 'each of the 400 reveals wrote one card.revealed event');
SELECT is((SELECT count(*)::int FROM card.event e, tap_shown s
            WHERE e.card_id IN (SELECT id FROM tap_cards)
              AND (e.data::text LIKE '%' || s.pan || '%' OR e.data::text LIKE '%' || substr(s.pan, 5, 12) || '%')),
    0, 'no event holds a revealed PAN or twelve of its digits');
SELECT is((SELECT count(*)::int FROM card.hosted_link l
            WHERE l.purpose = 'reveal' AND l.card_id IN (SELECT id FROM tap_cards)
              AND (l.consumed_at IS NULL OR l.outcome <> 'completed' OR length(l.token_hash) <> 32)),
    0, 'every reveal link was used once and is kept only as a 32-byte hash');

-- Refusals (the SQLSTATE of each).
\ir include/run_as.sql
SELECT substring(redirect_url FROM 'token=(.*)$') AS used
  FROM card.card_reveal_start((SELECT id FROM tap_cards WHERE n = 1), 'https://app.example.com/back') \gset
SELECT count(*) FROM card.card_reveal(:'used');
SELECT is(pg_temp.tap_state(format('SELECT card.card_reveal(%L)', :'used')), '55000', 'a used reveal token: 55000');
SELECT is(pg_temp.tap_state($$SELECT card.card_reveal('rvl_' || repeat('x', 43))$$), 'P0002', 'an unknown reveal token: P0002');
SELECT is(pg_temp.tap_state($$SELECT card.card_reveal('act_' || repeat('x', 43))$$), '22023', 'a token of another kind: 22023');
SELECT is(pg_temp.tap_state($$SELECT card.card_reveal(NULL)$$), '23502', 'no token: 23502');
SELECT is(pg_temp.tap_state(format('SELECT card.card_reveal_start(%L, %L)', (SELECT id FROM tap_cards WHERE n = 1), 'http://x.example.com')),
    '22023', 'a return URL that is not https: 22023');

-- ---------------------------------------------------------------------------
-- Replacement: 30 cards for each reason
-- ---------------------------------------------------------------------------
UPDATE card.card SET exp_month = '01', exp_year = '2020'
 WHERE id IN (SELECT id FROM tap_cards WHERE n BETWEEN 91 AND 120);
CREATE TEMP TABLE tap_replaced ON COMMIT DROP AS
SELECT t.id AS old_id, t.n, r.reason, (card.card_replace(t.id, r.reason)).id AS new_id
  FROM tap_cards t
  JOIN (VALUES (0, 'lost'), (1, 'stolen'), (2, 'damaged'), (3, 'expired')) r(k, reason)
    ON (t.n - 1) / 30 = r.k
 WHERE t.n <= 120;
SELECT is((SELECT count(*)::int FROM tap_replaced), 120, '120 cards were replaced');
SELECT is((SELECT count(*)::int FROM tap_replaced x JOIN card.card k ON k.id = x.new_id
            WHERE k.replacement_for = x.old_id AND k.replacement_reason::text = x.reason
              AND k.chain_id = x.old_id AND k.status = 'not_activated'),
    120, 'each replacement names its card and reason, belongs to its chain, and awaits activation');
SELECT is((SELECT count(*)::int FROM tap_replaced x JOIN card.card n ON n.id = x.new_id JOIN card.card o ON o.id = x.old_id
            WHERE (x.reason IN ('damaged', 'expired')) <> (n.pan_fingerprint = o.pan_fingerprint AND n.pan_sequence = o.pan_sequence + 1)),
    0, 'damaged and expired keep the PAN (next sequence); lost and stolen get another');
SELECT is((SELECT count(*)::int FROM tap_replaced x, pg_temp.tap_reveal(x.new_id) r, tap_shown s
            WHERE s.id = x.old_id AND (r.pan = s.pan) <> (x.reason IN ('damaged', 'expired'))),
    0, 'and the hosted page shows it so');
SELECT is((SELECT count(*)::int FROM tap_replaced x, pg_temp.tap_reveal(x.new_id) r, tap_shown s
            WHERE s.id = x.old_id AND x.reason = 'damaged'
              AND (r.cvv = s.cvv) <> ((r.exp_month, r.exp_year) = (s.exp_month, s.exp_year))),
    0, 'a reissue within its card''s expiry month has the same PAN and expiry, so the same CVV');
SELECT is((SELECT string_agg(DISTINCT x.reason || '=' || k.status, ',' ORDER BY x.reason || '=' || k.status)
             FROM tap_replaced x JOIN card.cards k ON k.id = x.old_id),
    'damaged=active,expired=expired,lost=lost,stolen=stolen',
    'lost and stolen cards ended; a damaged card works on; an expired one stays expired');
SELECT is((SELECT count(*)::int FROM tap_replaced x JOIN card.card n ON n.id = x.new_id JOIN card.card o ON o.id = x.old_id
            WHERE n.controls <> o.controls OR n.channels_blocked <> o.channels_blocked),
    0, 'every replacement keeps its card''s controls');
SELECT is((SELECT count(*)::int FROM tap_replaced x WHERE (card.card_replace(x.old_id, x.reason)).id <> x.new_id),
    0, 'replacing each card again for the same reason returns the first replacement');
SELECT is((SELECT count(*)::int FROM card.card WHERE replacement_for IN (SELECT id FROM tap_cards)), 120,
    'and issues nothing new');
SELECT is((SELECT count(*)::int FROM card.event e JOIN tap_replaced x ON e.card_id = x.old_id
            WHERE e.type = 'card.replaced' AND e.data ->> 'replacement_id' = x.new_id::text AND e.data ->> 'reason' = x.reason),
    120, 'each replacement wrote one card.replaced event on the old card');

-- Activating the damaged cards' reissues closes the old cards.
SELECT count(*) FROM tap_replaced x, card.card_set_status(x.new_id, 'active') s WHERE x.reason = 'damaged';
SELECT is((SELECT count(*)::int FROM tap_replaced x JOIN card.card o ON o.id = x.old_id
            WHERE x.reason = 'damaged' AND o.status = 'blocked'), 30,
    'activating a reissue blocked the card it replaces');
SELECT is((SELECT count(*)::int FROM card.card_status_change c JOIN tap_replaced x ON c.card_id = x.old_id
            WHERE x.reason = 'damaged' AND c.to_status = 'blocked' AND c.channel = 'system'
              AND c.reason = 'replaced by card ' || x.new_id), 30,
    'and recorded why, as a system change');

-- Refusals.
SELECT is(pg_temp.tap_state(format('SELECT card.card_replace(%L, %L)', (SELECT id FROM tap_cards WHERE n = 200), 'worn')),
    '22023', 'an unknown reason: 22023');
SELECT is(pg_temp.tap_state(format('SELECT card.card_replace(%L, %L)', (SELECT old_id FROM tap_replaced WHERE n = 31), 'damaged')),
    '55000', 'a stolen card cannot be reissued as damaged: 55000');
SELECT is(pg_temp.tap_state(format('SELECT card.card_replace(%L, %L)', (SELECT old_id FROM tap_replaced WHERE n = 61), 'expired')),
    '55000', 'a card already reissued cannot be reissued again: 55000');
SELECT is(pg_temp.tap_state($$SELECT card.card_replace('00000000-0000-0000-0000-000000000000', 'lost')$$),
    'P0002', 'an unknown card: P0002');

SELECT * FROM finish();
ROLLBACK;
