\set ON_ERROR_STOP 1
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS card;

-- An unprivileged caller plants look-alikes of the extension's objects and
-- of pg_catalog functions and operators, in a schema it owns and in
-- pg_temp, puts them first on its search_path, and calls the functions it
-- may call: every entry point runs with search_path = pg_catalog, pg_temp
-- and schema-qualified names, so no look-alike is ever used.
BEGIN;
SELECT plan(14);

SELECT card.programme_create('TAP hijack', '45671234') AS prog \gset
SELECT card.individual_create(:'prog', 'Hijack holder') AS holder \gset
SELECT card.account_open(:'prog', :'holder') AS acct \gset
SELECT balance FROM card.account_credit(:'acct', 100000, 'hijack-seed') \gset

CREATE ROLE tap_attacker LOGIN IN ROLE card_api, card_processor;
SELECT card.programme_grant(:'prog', 'tap_attacker') \gset
CREATE SCHEMA evil AUTHORIZATION tap_attacker;
SET LOCAL ROLE tap_attacker;
SET LOCAL search_path = evil, pg_temp, pg_catalog;

-- Every look-alike records that it was called (and lies about its result).
CREATE TABLE evil.calls (what text);
CREATE FUNCTION evil.hit(what text) RETURNS void LANGUAGE sql AS $$ INSERT INTO evil.calls VALUES (what) $$;
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.hit('now'); RETURN '2000-01-01'; END $$;
CREATE FUNCTION evil.gen_random_uuid() RETURNS uuid LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.hit('gen_random_uuid'); RETURN '00000000-0000-0000-0000-000000000000'; END $$;
CREATE FUNCTION evil.length(text) RETURNS integer LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.hit('length'); RETURN 1; END $$;
CREATE FUNCTION evil.jsonb_typeof(jsonb) RETURNS text LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.hit('jsonb_typeof'); RETURN 'object'; END $$;
CREATE FUNCTION evil.greatest_of(bigint, bigint) RETURNS bigint LANGUAGE sql AS $$ SELECT 0::bigint $$;
CREATE FUNCTION evil.text_eq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.hit('text ='); RETURN true; END $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.text_eq);
CREATE FUNCTION evil.bigint_ge(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.hit('bigint >='); RETURN true; END $$;
CREATE OPERATOR evil.>= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.bigint_ge);
CREATE TABLE evil.card (id uuid, status text);
CREATE TABLE evil.account (id uuid, balance bigint, held bigint);
CREATE TABLE evil.cards (id uuid);
CREATE TEMP TABLE event (seq bigint);
CREATE TEMP TABLE card_status_change (card_id uuid);
CREATE FUNCTION pg_temp.card_status_transitions() RETURNS SETOF record LANGUAGE sql AS $$ SELECT 1 $$;

-- The calls a card_api / card_processor caller may make, through the
-- look-alikes' path (results kept with \gset; the checks run afterwards
-- under the normal path, since pgTAP itself would meet the look-alikes).
SELECT (card.card_order(:'holder', :'acct', 'Hijack card')).id AS c \gset
SELECT (card.card_set_status(:'c', 'active')).status AS activated \gset
SELECT card.card_order(jsonb_build_object('individual_id', :'holder', 'account_id', :'acct',
                                          'display_name', 'Hijack JSON')) ->> 'status' AS json_status \gset
SELECT card.card_set_controls(:'c', '{"spending_limits": [{"amount": 5000, "interval": "daily"}]}') AS controls \gset
SELECT card.card_token(:'c') AS tok \gset
SELECT approved AS a1_approved, available AS a1_available
  FROM card.card_authorize(:'tok', 4000, 'EUR', '5411', 'SE', 'chip', 'hijack-1') \gset
SELECT approved AS a2_approved, decline_reason AS a2_reason
  FROM card.card_authorize(:'tok', 2000, 'EUR', '5411', 'SE', 'chip', 'hijack-2') \gset
SELECT spent AS spent, remaining AS remaining FROM card.card_spend_status(:'c') \gset
SELECT card.card_update(:'c', '{"status": "frozen"}') ->> 'status' AS frozen \gset
SELECT count(*) AS transitions FROM card.card_status_transitions() \gset
SELECT expires_at > pg_catalog.now() AND redirect_url LIKE 'https://cards.example.com/reveal?token=rvl_%' AS reveal_link
  FROM card.card_reveal_start(:'c', 'https://app.example.com/shown') \gset
SELECT (r).status = 'not_activated' AS replaced, (r).id AS reissue
  FROM (SELECT card.card_replace(:'c', 'damaged') AS r) x \gset
SELECT count(*) AS calls FROM evil.calls \gset

RESET ROLE;
RESET search_path;
SELECT is(:'activated'::text, 'active', 'card_set_status ignores the look-alikes');
SELECT is(:'json_status'::text, 'not_activated', 'card_order(jsonb) ignores the look-alikes');
SELECT is(:'controls'::jsonb, '{"spending_limits": [{"amount": 5000, "interval": "daily"}]}'::jsonb,
    'card_set_controls ignores the look-alikes');
SELECT is(:'a1_approved' || '/' || :'a1_available', 't/96000'::text, 'card_authorize approves against the real balance');
SELECT is(:'a2_approved' || '/' || :'a2_reason', 'f/spending_limit'::text,
    'card_authorize still enforces the limit (no look-alike comparison says yes)');
SELECT is(:'spent' || '/' || :'remaining', '4000/1000'::text, 'card_spend_status counts with the real clock and operators');
SELECT is(:'frozen'::text, 'frozen', 'card_update ignores the look-alikes');
SELECT is(:'transitions'::int, 49, 'card_status_transitions is the extension''s, not pg_temp''s');
SELECT ok(:'reveal_link'::boolean, 'card_reveal_start issues a real, live link');
SELECT ok(:'replaced'::boolean AND (SELECT replacement_for FROM card.card WHERE id = :'reissue') = :'c'::uuid,
    'card_replace issues the real reissue');
SELECT is(:'calls'::int, 0, 'no look-alike was ever called');
SELECT is((SELECT count(*)::int FROM card.card WHERE id = :'c' AND status = 'frozen'), 1,
    'the real card row changed');
SELECT is((SELECT held FROM card.account WHERE id = :'acct'), 4000::bigint, 'the real account holds the payment');
SELECT is((SELECT count(*)::int FROM card.card_status_change WHERE card_id = :'c'), 3,
    'the real audit trail has the order, the activation and the freeze');

SELECT * FROM finish();
ROLLBACK;
