\set ON_ERROR_STOP 1
-- The card lifecycle (DESIGN.md section 5): every move that
-- card.card_status_transitions() calls forbidden or terminal is refused with
-- 55000, every allowed one succeeds; the same holds for a direct UPDATE; each
-- real change writes exactly one audit row and a no-op writes none.
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS card;

BEGIN;
SELECT plan(97);

-- ---------------------------------------------------------------------------
-- Set-up
-- ---------------------------------------------------------------------------

CREATE TEMP TABLE tap_ctx ON COMMIT DROP AS
SELECT p AS prog, i AS ind, card.account_open(p, i) AS acc
  FROM card.programme_create('TAP lifecycle', '45679876') p,
       card.individual_create(p, 'Tap Lifecycle') i;

-- A new card of the given type, driven into status s through the API.
CREATE FUNCTION pg_temp.tap_card_in(s card.card_status, t card.card_type DEFAULT 'virtual')
    RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    card_id uuid;
    link text;
BEGIN
    SELECT c.id INTO card_id
      FROM tap_ctx x, card.card_order(x.ind, x.acc, 'Tap ' || s, type => t) c;
    IF s IN ('active', 'frozen') THEN
        IF t = 'virtual' THEN
            PERFORM card.card_set_status(card_id, 'active');
        ELSE
            SELECT redirect_url INTO link
              FROM card.card_activation_start(card_id, 'https://app.example.com/done');
            PERFORM card.card_activation_complete(substring(link FROM '[?&]token=([^&#]*)$'), '2468');
        END IF;
    END IF;
    IF s <> 'not_activated' AND s <> 'active' THEN
        PERFORM card.card_set_status(card_id, s);
    END IF;
    RETURN card_id;
END
$$;

CREATE FUNCTION pg_temp.tap_status(card_id uuid) RETURNS text LANGUAGE sql AS $$
    SELECT status::text FROM card.card WHERE id = card_id
$$;

CREATE FUNCTION pg_temp.tap_audit_count(card_id uuid) RETURNS int LANGUAGE sql AS $$
    SELECT count(*)::int FROM card.card_status_change s WHERE s.card_id = tap_audit_count.card_id
$$;

-- The last audit row of a card as (from, to, reason, channel, actor).
CREATE FUNCTION pg_temp.tap_last_change(card_id uuid) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s>%s %s/%s by %s', s.from_status, s.to_status, s.reason, s.channel, s.actor)
      FROM card.card_status_change s WHERE s.card_id = tap_last_change.card_id
     ORDER BY s.id DESC LIMIT 1
$$;

-- One fresh card per (from, to) pair of the transition table, in status from.
CREATE TEMP TABLE tap_move ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY t.from_status, t.to_status) AS n,
       t.from_status, t.to_status, t.rule,
       pg_temp.tap_card_in(t.from_status) AS card_id
  FROM card.card_status_transitions() t;
ALTER TABLE tap_move ADD COLUMN audit_before int;
UPDATE tap_move SET audit_before = pg_temp.tap_audit_count(card_id);

SELECT is((SELECT count(*)::int FROM tap_move), 49, 'one card per pair of the transition table');
SELECT is(
    (SELECT count(*)::int FROM tap_move WHERE pg_temp.tap_status(card_id) <> from_status::text),
    0, 'every card of the matrix starts in its from-status');
SELECT is(
    (SELECT count(*)::int FROM tap_move
      WHERE audit_before <> 1 + CASE from_status WHEN 'not_activated' THEN 0
                                                 WHEN 'frozen' THEN 2 ELSE 1 END),
    0, 'setting the cards up wrote one audit row per order and per real change');

-- ---------------------------------------------------------------------------
-- The matrix through card.card_set_status, one test per pair
-- ---------------------------------------------------------------------------

-- 3 forbidden + 24 terminal moves.
SELECT throws_ok(
    format('SELECT card.card_set_status(%L, %L, %L, %L)', card_id, to_status, 'tap move', 'operator'),
    '55000', NULL,
    format('%s -> %s (%s) is refused with 55000', from_status, to_status, rule))
  FROM (SELECT * FROM tap_move WHERE rule IN ('forbidden', 'terminal') ORDER BY n) m;

-- 14 allowed moves and the activation of a virtual card.
SELECT lives_ok(
    format('SELECT card.card_set_status(%L, %L, %L, %L)', card_id, to_status, 'tap move', 'operator'),
    format('%s -> %s (%s) succeeds', from_status, to_status, rule))
  FROM (SELECT * FROM tap_move WHERE rule IN ('allowed', 'activation') ORDER BY n) m;

-- 7 no-ops: setting the status a card has.
SELECT lives_ok(
    format('SELECT card.card_set_status(%L, %L, %L, %L)', card_id, to_status, 'tap move', 'operator'),
    format('%s -> %s (%s) is accepted', from_status, to_status, rule))
  FROM (SELECT * FROM tap_move WHERE rule = 'no-op' ORDER BY n) m;

SELECT is(
    (SELECT count(*)::int FROM tap_move), 3 + 24 + 15 + 7,
    'the matrix has 3 forbidden, 24 terminal, 15 allowed or activation, 7 no-op pairs');
SELECT is(
    (SELECT string_agg(from_status || '>' || to_status, ', ') FROM tap_move
      WHERE rule IN ('allowed', 'activation', 'no-op')
        AND pg_temp.tap_status(card_id) <> to_status::text),
    NULL, 'every accepted move left the card in its to-status');
SELECT is(
    (SELECT string_agg(from_status || '>' || to_status, ', ') FROM tap_move
      WHERE rule IN ('forbidden', 'terminal')
        AND pg_temp.tap_status(card_id) <> from_status::text),
    NULL, 'every refused move left the card in its from-status');
SELECT is(
    (SELECT string_agg(from_status || '>' || to_status, ', ') FROM tap_move
      WHERE pg_temp.tap_audit_count(card_id)
            <> audit_before + CASE WHEN rule IN ('allowed', 'activation') THEN 1 ELSE 0 END),
    NULL, 'each real change added exactly one audit row; refusals and no-ops added none');
SELECT is(
    (SELECT string_agg(from_status || '>' || to_status, ', ') FROM tap_move
      WHERE rule IN ('allowed', 'activation')
        AND pg_temp.tap_last_change(card_id)
            <> format('%s>%s tap move/operator by %s', from_status, to_status, current_user)),
    NULL, 'the audit row of each change records from, to, reason, channel and actor');

-- ---------------------------------------------------------------------------
-- The same rules for a direct UPDATE (the trigger enforces them)
-- ---------------------------------------------------------------------------

-- Outcome of a direct UPDATE of status for a fresh card per pair: 'ok' or
-- the SQLSTATE, and the audit rows it added.
CREATE FUNCTION pg_temp.tap_direct_matrix(t card.card_type)
    RETURNS TABLE (from_status card.card_status, to_status card.card_status,
                   rule text, outcome text, status_after text, audit_added int, last_change text)
    LANGUAGE plpgsql AS $$
DECLARE
    m record;
    the_card uuid;
    before int;
BEGIN
    FOR m IN SELECT * FROM card.card_status_transitions() x
              WHERE x.from_status <> x.to_status
                AND (t = 'virtual' OR x.from_status = 'not_activated')
              ORDER BY 1, 2
    LOOP
        the_card := pg_temp.tap_card_in(m.from_status, t);
        before := pg_temp.tap_audit_count(the_card);
        from_status := m.from_status;
        to_status := m.to_status;
        rule := m.rule;
        BEGIN
            UPDATE card.card c SET status = m.to_status WHERE c.id = the_card;
            outcome := 'ok';
        EXCEPTION WHEN OTHERS THEN
            outcome := SQLSTATE;
        END;
        status_after := pg_temp.tap_status(the_card);
        audit_added := pg_temp.tap_audit_count(the_card) - before;
        last_change := pg_temp.tap_last_change(the_card);
        RETURN NEXT;
    END LOOP;
END
$$;

CREATE TEMP TABLE tap_direct ON COMMIT DROP AS
SELECT * FROM pg_temp.tap_direct_matrix('virtual');

SELECT is((SELECT count(*)::int FROM tap_direct), 42,
    'a direct UPDATE was tried for each of the 42 real moves');
SELECT is(
    (SELECT string_agg(from_status || '>' || to_status || ': ' || outcome, ', ') FROM tap_direct
      WHERE rule IN ('forbidden', 'terminal')
        AND (outcome <> '55000' OR status_after <> from_status::text OR audit_added <> 0)),
    NULL, 'a direct UPDATE making a forbidden or terminal move fails with 55000 and changes nothing');
SELECT is(
    (SELECT string_agg(from_status || '>' || to_status || ': ' || outcome, ', ') FROM tap_direct
      WHERE rule IN ('allowed', 'activation')
        AND (outcome <> 'ok' OR status_after <> to_status::text OR audit_added <> 1)),
    NULL, 'a direct UPDATE making an allowed move succeeds and writes one audit row');
SELECT is(
    (SELECT count(*)::int FROM tap_direct
      WHERE rule IN ('allowed', 'activation')
        AND last_change <> format('%s>%s direct update/operator by %s',
                                  from_status, to_status, current_user)),
    0, 'a direct UPDATE is audited as an operator change with reason "direct update"');

-- A physical card: card_set_status and direct UPDATEs cannot activate it.
CREATE TEMP TABLE tap_direct_physical ON COMMIT DROP AS
SELECT * FROM pg_temp.tap_direct_matrix('physical');
SELECT results_eq(
    $$SELECT to_status::text, outcome, audit_added FROM tap_direct_physical
       WHERE rule = 'activation'$$,
    $$VALUES ('active', '55000', 0)$$,
    'a direct UPDATE cannot activate a physical card');
SELECT is(
    (SELECT count(*)::int FROM tap_direct_physical
      WHERE rule <> 'activation' AND (outcome = 'ok') <> (rule = 'allowed')),
    0, 'the other moves of a not_activated physical card follow the table');

-- A card's type never changes (it would skip the hosted activation flow).
SELECT throws_ok(
    $$UPDATE card.card SET type = CASE type WHEN 'virtual' THEN 'physical'::card.card_type ELSE 'virtual' END
       WHERE id = (SELECT card_id FROM tap_move ORDER BY n LIMIT 1)$$,
    '55000', NULL, 'a card cannot change its type');

-- ---------------------------------------------------------------------------
-- A scripted sequence: the audit trail counts exactly the real changes
-- ---------------------------------------------------------------------------

SELECT pg_temp.tap_card_in('not_activated') AS seq_card \gset

SELECT lives_ok(format($$
    SELECT card.card_set_status(%1$L, 'active');
    SELECT card.card_set_status(%1$L, 'active');
    SELECT card.card_set_status(%1$L, 'frozen', 'holder froze it', 'holder');
    SELECT card.card_set_status(%1$L, 'frozen');
    SELECT card.card_update(%1$L, '{"status": "active"}');
    SELECT card.card_update(%1$L, '{"status": "frozen"}');
    UPDATE card.card SET status = 'frozen' WHERE id = %1$L;
    SELECT card.card_update(%1$L, '{"status": "block", "reason": "fraud suspected", "channel": "fraud"}');
    SELECT card.card_set_status(%1$L, 'blocked');
    $$, :'seq_card'),
    'active, active, frozen, frozen, active, frozen, frozen, block, blocked: all accepted');
SELECT throws_ok(
    format($$SELECT card.card_set_status(%L, 'active')$$, :'seq_card'),
    '55000', NULL, 'a blocked card cannot be reactivated');
SELECT throws_ok(
    format($$SELECT card.card_update(%L, '{"status": "frozen"}')$$, :'seq_card'),
    '55000', NULL, 'a blocked card cannot be frozen through the JSON form either');
SELECT is(pg_temp.tap_audit_count(:'seq_card'), 1 + 5,
    'audit rows = 1 (order) + 5 real changes; the 4 no-ops and 2 refusals wrote none');
SELECT results_eq(
    format($$SELECT from_status::text, to_status::text, reason, channel
               FROM card.card_status_change WHERE card_id = %L ORDER BY id$$, :'seq_card'),
    $$VALUES (NULL, 'not_activated', 'ordered', 'api'),
             ('not_activated', 'active', NULL, 'api'),
             ('active', 'frozen', 'holder froze it', 'holder'),
             ('frozen', 'active', NULL, 'api'),
             ('active', 'frozen', NULL, 'api'),
             ('frozen', 'blocked', 'fraud suspected', 'fraud')$$,
    'the audit trail lists each real change in order, with reason and channel');
SELECT is(
    (SELECT count(*)::int FROM card.card_status_change
      WHERE card_id = :'seq_card' AND actor <> current_user),
    0, 'the actor of each change is the calling role');
SELECT results_eq(
    format($$SELECT status::text FROM card.cards WHERE id = %L$$, :'seq_card'),
    ARRAY['blocked'], 'card.cards shows the card blocked');

-- ---------------------------------------------------------------------------
-- Physical cards are activated by the hosted flow only
-- ---------------------------------------------------------------------------

SELECT pg_temp.tap_card_in('not_activated', 'physical') AS phys \gset

SELECT throws_ok(
    format($$SELECT card.card_set_status(%L, 'active')$$, :'phys'),
    '55000', NULL, 'card_set_status cannot activate a physical card');
SELECT throws_ok(
    format($$SELECT card.card_update(%L, '{"status": "active"}')$$, :'phys'),
    '55000', NULL, 'card_update cannot activate a physical card');
SELECT redirect_url AS phys_link FROM card.card_activation_start(:'phys', 'https://app.example.com/done') \gset
SELECT results_eq(
    format($$SELECT c.card_id, c.status::text, c.return_url
               FROM card.card_activation_complete(substring(%L FROM '[?&]token=([^&#]*)$'), '1357') c$$,
           :'phys_link'),
    format($$VALUES (%L::uuid, 'active', 'https://app.example.com/done')$$, :'phys'),
    'the hosted activation flow activates a physical card');
SELECT is(pg_temp.tap_last_change(:'phys'),
    format('not_activated>active activation/holder by %s', current_user),
    'the activation is audited as a holder change');
SELECT throws_ok(
    format($$SELECT * FROM card.card_activation_complete(substring(%L FROM '[?&]token=([^&#]*)$'), '1357')$$,
           :'phys_link'),
    '55000', NULL, 'an activation token works once');
SELECT throws_ok(
    format($$SELECT * FROM card.card_activation_start(%L, 'https://app.example.com/done')$$, :'phys'),
    '55000', NULL, 'an active card cannot start activation again');
SELECT is(pg_temp.tap_audit_count(:'phys'), 2,
    'the physical card has two audit rows: ordered, activated');
SELECT lives_ok(
    format($$SELECT card.card_set_status(%1$L, 'frozen'); SELECT card.card_set_status(%1$L, 'active')$$, :'phys'),
    'an activated physical card can be frozen and unfrozen by card_set_status');
SELECT is(pg_temp.tap_audit_count(:'phys'), 4, 'freeze and unfreeze wrote two audit rows');

-- ---------------------------------------------------------------------------
-- Expiry: a card whose month has ended is expired for every purpose
-- ---------------------------------------------------------------------------

SELECT pg_temp.tap_card_in('active') AS old_card \gset
UPDATE card.card SET exp_month = '01', exp_year = '2020' WHERE id = :'old_card';

SELECT results_eq(
    format($$SELECT c.status::text, v.status::text FROM card.card c JOIN card.cards v USING (id)
              WHERE id = %L$$, :'old_card'),
    $$VALUES ('active', 'expired')$$,
    'a card past its expiry month is stored active but shown expired');
SELECT throws_ok(
    format($$SELECT card.card_set_status(%L, 'frozen')$$, :'old_card'),
    '55000', NULL, 'an expired card cannot be frozen before the sweep');
SELECT throws_ok(
    format($$SELECT card.card_set_status(%L, 'active')$$, :'old_card'),
    '55000', NULL, 'an expired card cannot stay active');
SELECT throws_ok(
    format($$UPDATE card.card SET status = 'frozen' WHERE id = %L$$, :'old_card'),
    '55000', NULL, 'a direct UPDATE cannot freeze an expired card either');
SELECT is(pg_temp.tap_audit_count(:'old_card'), 2, 'the refused moves wrote no audit row');

-- The sweep, as of today, records it (and every other card already due).
SELECT count(*)::int AS due_today FROM card.card
 WHERE status IN ('not_activated', 'active', 'frozen')
   AND expires_on <= (now() AT TIME ZONE 'UTC')::date \gset
SELECT cmp_ok(:due_today, '>=', 1, 'at least the backdated card is due');
SELECT is(card.card_expire_due(), :due_today, 'card_expire_due() expires exactly the cards that are due');
SELECT is(pg_temp.tap_last_change(:'old_card'),
    format('active>expired expiry/system by %s', current_user),
    'the sweep records the expiry as a system change');
SELECT is(card.card_expire_due(), 0, 'a second sweep finds nothing to do');
SELECT is(pg_temp.tap_audit_count(:'old_card'), 3, 'the second sweep wrote no audit row');
SELECT lives_ok(
    format($$SELECT card.card_set_status(%L, 'expired')$$, :'old_card'),
    'setting expired on an expired card is a no-op');
SELECT is(pg_temp.tap_audit_count(:'old_card'), 3, 'the no-op wrote no audit row');

-- A sweep may not run ahead of the calendar (expired is final).
SELECT count(*)::int AS live_cards FROM card.card
 WHERE status IN ('not_activated', 'active', 'frozen') \gset
SELECT count(*)::int AS audit_rows FROM card.card_status_change \gset
SELECT cmp_ok(:live_cards, '>=', 10, 'many live cards remain before the final sweep');
SELECT throws_ok($$SELECT card.card_expire_due(as_of => date '2999-12-31')$$, '22023', NULL,
    'card_expire_due(as_of => far future) is refused');

-- Last: once every live card's month has ended, the sweep expires each once.
UPDATE card.card SET exp_month = '01', exp_year = '2020'
 WHERE status IN ('not_activated', 'active', 'frozen');
SELECT is(card.card_expire_due(), :live_cards,
    'card_expire_due() expires every live card whose month has ended');
SELECT is((SELECT count(*)::int FROM card.card WHERE status IN ('not_activated', 'active', 'frozen')),
    0, 'no live card is left');
SELECT is((SELECT count(*)::int FROM card.card_status_change), :audit_rows + :live_cards,
    'the sweep wrote exactly one audit row per expired card');

SELECT * FROM finish();
ROLLBACK;
