\set ON_ERROR_STOP 1
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS card;

-- Programme isolation (DESIGN.md section 10): two programmes, two login
-- roles.  Each sees and changes only its own programme; the other's
-- objects read as not found (P0002), its rows as absent, and row-level
-- security refuses a row written into it.
BEGIN;
SELECT plan(58);
\ir include/run_as.sql

-- Tenant A creates its programme itself (and so is granted it); tenant B
-- gets a programme the superuser created, through a group role.
CREATE ROLE tap_tenant_a LOGIN IN ROLE card_admin, card_api, card_processor, card_hosted_pages, card_reader;
CREATE ROLE tap_group_b NOLOGIN;
CREATE ROLE tap_tenant_b LOGIN IN ROLE card_admin, card_api, card_processor, card_hosted_pages, card_reader,
    tap_group_b;

SET LOCAL ROLE tap_tenant_a;
SELECT card.programme_create('TAP tenant A', '45671234') AS prog_a \gset
RESET ROLE;
SELECT card.programme_create('TAP tenant B', '51234567', 'mastercard') AS prog_b \gset
SELECT ok(card.programme_grant(:'prog_b', 'tap_group_b'), 'the superuser grants programme B to a group role');
SELECT ok(NOT card.programme_grant(:'prog_b', 'tap_group_b'), 'granting it again changes nothing');
SELECT is((SELECT array_agg(role_name::text ORDER BY role_name) FROM card.programme_role
            WHERE programme_id IN (:'prog_a', :'prog_b')),
    ARRAY['tap_group_b', 'tap_tenant_a'], 'A is granted to its creator, B to the group');

-- Each tenant builds the same things in its own programme.
SET LOCAL ROLE tap_tenant_a;
SELECT card.individual_create(:'prog_a', 'Holder A') AS ind_a \gset
SELECT card.account_open(:'prog_a', :'ind_a') AS acc_a \gset
SELECT balance FROM card.account_credit(:'acc_a', 50000, 'seed-a') \gset
SELECT id AS card_a FROM card.card_order(:'ind_a', :'acc_a', 'Card A') \gset
SELECT id AS card_a2 FROM card.card_order(:'ind_a', :'acc_a', 'Card A2') \gset
SELECT status FROM card.card_set_status(:'card_a', 'active') \gset
SELECT card.card_set_controls(:'card_a', '{"spending_limits": [{"amount": 9000, "interval": "daily"}]}') AS ctl \gset
SELECT card.card_token(:'card_a') AS token_a \gset
SELECT authorization_id AS auth_a FROM card.card_authorize(:'token_a', 1000, 'EUR', '5411', 'SE', 'chip', 'a-1') \gset
SELECT substring(redirect_url FROM 'token=(.*)$') AS act_a
  FROM card.card_activation_start(:'card_a2', 'https://app.example.com/done') \gset
SELECT substring(redirect_url FROM 'token=(.*)$') AS rev_a
  FROM card.card_reveal_start(:'card_a', 'https://app.example.com/done') \gset
RESET ROLE;

SET LOCAL ROLE tap_tenant_b;
SELECT card.individual_create(:'prog_b', 'Holder B') AS ind_b \gset
SELECT card.account_open(:'prog_b', :'ind_b') AS acc_b \gset
SELECT balance FROM card.account_credit(:'acc_b', 70000, 'seed-b') \gset
SELECT id AS card_b FROM card.card_order(:'ind_b', :'acc_b', 'Card B') \gset
SELECT status FROM card.card_set_status(:'card_b', 'active') \gset
SELECT card.card_token(:'card_b') AS token_b \gset
SELECT authorization_id AS auth_b FROM card.card_authorize(:'token_b', 2000, 'EUR', '5411', 'SE', 'chip', 'b-1') \gset
RESET ROLE;

-- ---------------------------------------------------------------------------
-- Reads: the views and the feed show only the caller's programme
-- ---------------------------------------------------------------------------

CREATE FUNCTION pg_temp.tap_count_as(role name, query text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', role);
    EXECUTE query INTO n;
    RESET ROLE;
    RETURN n;
END $$;

SELECT is(pg_temp.tap_count_as('tap_tenant_a', 'SELECT count(*) FROM card.cards'), 2::bigint,
    'A sees its two cards in card.cards');
SELECT is(pg_temp.tap_count_as('tap_tenant_b', 'SELECT count(*) FROM card.cards'), 1::bigint,
    'B sees its one card');
SELECT is(pg_temp.tap_count_as('tap_tenant_b', format('SELECT count(*) FROM card.cards WHERE id = %L', :'card_a')),
    0::bigint, 'A''s card is not in B''s card.cards');
SELECT is(pg_temp.tap_count_as('tap_tenant_b', format('SELECT count(*) FROM card.balances WHERE account_id = %L', :'acc_a')),
    0::bigint, 'A''s balance is not in B''s card.balances');
SELECT is(pg_temp.tap_count_as('tap_tenant_a', 'SELECT count(*) FROM card.balances'), 1::bigint,
    'A sees its own balance');
SELECT is(pg_temp.tap_count_as('tap_tenant_b', format('SELECT count(*) FROM card.event WHERE programme_id = %L', :'prog_a')),
    0::bigint, 'B reads none of A''s events in card.event');
SELECT cmp_ok(pg_temp.tap_count_as('tap_tenant_b', format('SELECT count(*) FROM card.event WHERE programme_id = %L', :'prog_b')),
    '>=', 4::bigint, 'B reads its own events');
SELECT is(pg_temp.tap_count_as('tap_tenant_b', format('SELECT count(*) FROM card.event WHERE programme_id IS DISTINCT FROM %L', :'prog_b')),
    0::bigint, 'every event B reads is of programme B');

-- Should a DBA grant more, the tables themselves hold: with SELECT on every
-- table, each tenant still reads only its own rows.
GRANT SELECT ON ALL TABLES IN SCHEMA card TO tap_tenant_a, tap_tenant_b;
CREATE TEMP TABLE tap_rows ON COMMIT DROP AS
SELECT r.role, c.relname::text AS tbl,
       pg_temp.tap_count_as(r.role, format('SELECT count(*) FROM %s', c.oid::regclass)) AS seen,
       (xpath('/row/n/text()',
              query_to_xml(format('SELECT count(*) AS n FROM %s', c.oid::regclass), false, true, '')))[1]::text::bigint AS total
  FROM unnest(ARRAY['tap_tenant_a', 'tap_tenant_b']::name[]) r(role)
  CROSS JOIN pg_class c
 WHERE c.relnamespace = 'card'::regnamespace AND c.relkind = 'r';
SELECT is((SELECT count(*)::int FROM pg_class c WHERE c.relnamespace = 'card'::regnamespace AND c.relkind = 'r'
              AND NOT c.relrowsecurity), 0, 'every table of the extension has row-level security');
SELECT is(pg_temp.tap_count_as('tap_tenant_b',
    format($q$SELECT count(*) FROM (
        SELECT programme_id FROM card.individual UNION ALL SELECT programme_id FROM card.account
        UNION ALL SELECT programme_id FROM card.account_member UNION ALL SELECT programme_id FROM card.card
        UNION ALL SELECT programme_id FROM card."authorization" UNION ALL SELECT programme_id FROM card.event
        UNION ALL SELECT id FROM card.programme UNION ALL SELECT programme_id FROM card.programme_role) t
      WHERE programme_id IS DISTINCT FROM %L$q$, :'prog_b')),
    0::bigint, 'every row B reads in a table with a programme is of programme B');
SELECT is(pg_temp.tap_count_as('tap_tenant_b',
    format($q$SELECT (SELECT count(*) FROM card.card_status_change WHERE card_id IN (%L, %L))
                   + (SELECT count(*) FROM card.hosted_link WHERE card_id = %L)
                   + (SELECT count(*) FROM card.account_credit WHERE account_id = %L)
                   + (SELECT count(*) FROM card.spend_limit WHERE card_id = %L)$q$,
           :'card_a', :'card_a2', :'card_a2', :'acc_a', :'card_a')),
    0::bigint, 'B reads none of A''s audit rows, activation links, credits or limits');
SELECT ok((SELECT seen > 0 AND seen < total FROM tap_rows WHERE role = 'tap_tenant_a' AND tbl = 'card_status_change'),
    'A reads its own audit rows and not all of them');
REVOKE SELECT ON ALL TABLES IN SCHEMA card FROM tap_tenant_a, tap_tenant_b;

-- ---------------------------------------------------------------------------
-- Calls: every function given an object of the other programme finds none
-- ---------------------------------------------------------------------------

CREATE TEMP TABLE tap_cross (call text) ON COMMIT DROP;
INSERT INTO tap_cross VALUES
  (format('SELECT card.individual_create(%L, %L)', :'prog_a', 'Intruder')),
  (format('SELECT card.account_open(%L, %L)', :'prog_a', :'ind_a')),
  (format('SELECT card.account_open(%L, %L)', :'prog_b', :'ind_a')),
  (format('SELECT card.account_member_add(%L, %L)', :'acc_a', :'ind_b')),
  (format('SELECT card.account_member_add(%L, %L)', :'acc_b', :'ind_a')),
  (format('SELECT card.account_credit(%L, 100, %L)', :'acc_a', 'cross')),
  (format('SELECT card.account_set_controls(%L, %L)', :'acc_a', '{}')),
  (format('SELECT card.account_controls(%L)', :'acc_a')),
  (format('SELECT card.card_order(%L, %L, %L)', :'ind_a', :'acc_a', 'Intruder card')),
  (format('SELECT card.card_order(%L, %L, %L)', :'ind_a', :'acc_b', 'Intruder card')),
  (format('SELECT card.card_order(%L::jsonb)', json_build_object('individual_id', :'ind_a', 'account_id', :'acc_a', 'display_name', 'X'))),
  (format('SELECT card.card_set_status(%L, %L)', :'card_a', 'frozen')),
  (format('SELECT card.card_update(%L, %L)', :'card_a', '{"status": "frozen"}')),
  (format('SELECT card.card_update(%L, %L)', :'card_a2', '{"return_url": "https://app.example.com/x"}')),
  (format('SELECT card.card_activation_start(%L, %L)', :'card_a2', 'https://app.example.com/x')),
  (format('SELECT card.card_activation_complete(%L, %L)', :'act_a', '1234')),
  (format('SELECT card.card_set_controls(%L, %L)', :'card_a', '{}')),
  (format('SELECT card.card_controls(%L)', :'card_a')),
  (format('SELECT card.card_spend_status(%L)', :'card_a')),
  (format('SELECT card.card_token(%L)', :'card_a')),
  (format('SELECT card.pan_check(%L)', :'card_a')),
  (format('SELECT card.card_authorize(%L, 100, %L, %L, %L, %L, %L)', :'token_a', 'EUR', '5411', 'SE', 'chip', 'b-cross')),
  (format('SELECT card.authorization_capture(%L)', :'auth_a')),
  (format('SELECT card.authorization_reverse(%L)', :'auth_a')),
  (format('SELECT card.card_reveal_start(%L, %L)', :'card_a', 'https://app.example.com/x')),
  (format('SELECT card.card_reveal(%L)', :'rev_a')),
  (format('SELECT card.card_replace(%L, %L)', :'card_a', 'damaged')),
  (format('SELECT card.card_pin_reset_start(%L, %L)', :'card_a', 'https://app.example.com/x')),
  (format('SELECT card.card_pin_check(%L, %L)', :'token_a', '1234')),
  (format('SELECT card.programme_grant(%L, %L)', :'prog_a', 'tap_tenant_b')),
  (format('SELECT card.programme_revoke(%L, %L)', :'prog_a', 'tap_tenant_a'));

CREATE TEMP TABLE tap_cross_result ON COMMIT DROP AS
SELECT call, pg_temp.tap_run_as('tap_tenant_b', call) AS outcome FROM tap_cross;
SELECT is((SELECT count(*)::int FROM tap_cross_result), 31, 'B tried 31 calls on A''s objects');
SELECT is((SELECT string_agg(call || ' => ' || outcome, '; ') FROM tap_cross_result WHERE outcome <> 'P0002'),
    NULL, 'each of them fails as not found (P0002), none as a permission hint');

-- Nothing of A changed through B's attempts.
SELECT is((SELECT status FROM card.card WHERE id = :'card_a'), 'active'::card.card_status,
    'A''s card is still active');
SELECT is((SELECT count(*)::int FROM card.card WHERE display_name = 'Intruder card'), 0,
    'B ordered no card on A''s account');
SELECT is((SELECT count(*)::int FROM card.individual WHERE name = 'Intruder'), 0,
    'B created no individual in programme A');
SELECT is((SELECT count(*)::int FROM card.card WHERE replacement_for = :'card_a'), 0,
    'B replaced none of A''s cards');
SELECT is((SELECT count(*)::int FROM card.event WHERE card_id = :'card_a' AND type = 'card.revealed'), 0,
    'B revealed nothing of A''s');
SELECT is((SELECT count(*)::int FROM card."authorization" WHERE external_id = 'b-cross'), 0,
    'B''s authorisation with A''s token left no record');
SELECT is((SELECT status FROM card."authorization" WHERE id = :'auth_a'), 'pending'::card.authorization_status,
    'A''s hold is still pending');

-- The same calls as A itself get past the programme check (they may fail
-- later for their own reasons, never as not found), so P0002 above came
-- from the isolation and not from a bad argument.
SELECT is((SELECT string_agg(call || ' => ' || outcome, '; ')
             FROM (SELECT call, pg_temp.tap_run_as('tap_tenant_a', call) AS outcome FROM tap_cross
                    WHERE call NOT LIKE '%' || :'acc_b' || '%' AND call NOT LIKE '%' || :'prog_b' || '%'
                      AND call NOT LIKE '%' || :'ind_b' || '%' AND call NOT LIKE '%programme_%') t
            WHERE outcome = 'P0002'),
    NULL, 'the same calls by A find every object');

-- Sweeps see only the caller's programmes.
UPDATE card."authorization" SET expires_at = now() WHERE status = 'pending';
SET LOCAL ROLE tap_tenant_b;
SELECT is(card.authorization_expire_due(), 1,
    'B''s hold sweep expires B''s hold only');
RESET ROLE;
SELECT is((SELECT status FROM card."authorization" WHERE id = :'auth_b'), 'expired'::card.authorization_status,
    'B''s hold expired');
SELECT isnt((SELECT status FROM card."authorization" WHERE id = :'auth_a'), 'expired'::card.authorization_status,
    'A''s hold did not');
UPDATE card.card SET exp_month = '01', exp_year = '2020' WHERE id IN (:'card_a', :'card_b');
SET LOCAL ROLE tap_tenant_b;
SELECT is(card.card_expire_due(), 1, 'B''s expiry sweep records B''s lapsed card only');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM card.card WHERE programme_id = :'prog_a' AND status = 'expired'), 0,
    'no card of A expired');

-- ---------------------------------------------------------------------------
-- Writes: row-level security refuses a row put into another programme
-- ---------------------------------------------------------------------------

GRANT INSERT ON card.individual, card.programme_role TO tap_tenant_b;
SELECT is(pg_temp.tap_run_as('tap_tenant_b',
    format('INSERT INTO card.individual (programme_id, name) VALUES (%L, %L)', :'prog_a', 'Smuggled')),
    '42501', 'a direct insert into A''s programme violates the row-level security policy');
SELECT is(pg_temp.tap_run_as('tap_tenant_b',
    format('INSERT INTO card.programme_role (programme_id, role_name) VALUES (%L, %L)', :'prog_a', 'tap_tenant_b')),
    '42501', 'B cannot grant itself programme A by writing the grant table');
SELECT is(pg_temp.tap_run_as('tap_tenant_b',
    format('INSERT INTO card.individual (programme_id, name) VALUES (%L, %L)', :'prog_b', 'Direct')),
    'ran', 'the same insert into its own programme passes the policy (the control)');
REVOKE INSERT ON card.individual, card.programme_role FROM tap_tenant_b;

-- ---------------------------------------------------------------------------
-- Grants: group roles, SET ROLE, revoke, dropped roles
-- ---------------------------------------------------------------------------

SELECT is(pg_temp.tap_count_as('tap_tenant_b', format('SELECT count(*) FROM card.cards WHERE id = %L', :'card_b')),
    1::bigint, 'B sees programme B through its group role');
SELECT is(pg_temp.tap_run_as('tap_tenant_a', format('SELECT card.card_token(%L)', :'card_b')), 'P0002',
    'A does not');
SELECT ok(card.programme_grant(:'prog_b', 'tap_tenant_a'), 'the superuser grants B to A as well');
SELECT is(pg_temp.tap_run_as('tap_tenant_a', format('SELECT card.card_token(%L)', :'card_b')), 'ran',
    'now A reaches B''s card');
SET LOCAL ROLE tap_tenant_a;
SELECT ok(card.programme_revoke(:'prog_b', 'tap_tenant_a'), 'A revokes its own grant of B');
RESET ROLE;
SELECT is(pg_temp.tap_run_as('tap_tenant_a', format('SELECT card.card_token(%L)', :'card_b')), 'P0002',
    'and no longer reaches B''s card');
SELECT is(pg_temp.tap_run_as('tap_tenant_a', format('SELECT card.programme_grant(%L, %L)', :'prog_a', 'no_such_role')),
    '42704', 'granting to a role that does not exist fails with 42704');
SELECT is(pg_temp.tap_run_as('tap_tenant_a', format('SELECT card.programme_grant(%L, NULL)', :'prog_a')),
    '23502', 'a missing role fails with 23502');

-- A tenant grants its programme only to roles it controls (issue 10,
-- defect 6: A's admin made A's cards visible to B's roles and to every
-- tenant's processors): never to another tenant's roles, nor to a shared
-- capability or predefined role; to itself or to a role it holds WITH
-- ADMIN OPTION it may.  Superusers keep full control.
CREATE ROLE tap_a_proc NOLOGIN IN ROLE card_processor;
GRANT tap_a_proc TO tap_tenant_a WITH ADMIN OPTION;
SELECT is(pg_temp.tap_run_as('tap_tenant_a', format('SELECT card.programme_grant(%L, %L)', :'prog_a', r)),
    '42501', 'A cannot grant its programme to ' || r)
  FROM unnest(ARRAY['tap_tenant_b', 'tap_group_b', 'card_processor', 'card_reader', 'pg_read_all_data']) r;
SELECT is((SELECT count(*)::int FROM card.programme_role WHERE programme_id = :'prog_a'
              AND role_name IN ('tap_tenant_b', 'tap_group_b', 'card_processor', 'card_reader', 'pg_read_all_data')),
    0, 'none of those grants was written');
SELECT is(pg_temp.tap_run_as('tap_tenant_a', format('SELECT card.programme_grant(%L, %L)', :'prog_a', 'tap_a_proc')),
    'ran', 'A grants its programme to a role it holds WITH ADMIN OPTION');
SELECT is(pg_temp.tap_run_as('tap_tenant_a', format('SELECT card.programme_grant(%L, %L)', :'prog_a', 'tap_tenant_a')),
    'ran', 'and to itself');

-- A grant outlives its role harmlessly: nobody holds a dropped role.
CREATE ROLE tap_gone NOLOGIN;
SELECT ok(card.programme_grant(:'prog_a', 'tap_gone'), 'A is granted to a role that is then dropped');
DROP ROLE tap_gone;
SELECT is(pg_temp.tap_count_as('tap_tenant_b', 'SELECT count(*) FROM card.cards'), 1::bigint,
    'visibility checks still work, and B still sees only its own card');

-- SET ROLE decides, not the login role: a superuser session that becomes B
-- sees what B sees, through the functions as through the views.
SET LOCAL ROLE tap_tenant_b;
SELECT is(card.caller(), 'tap_tenant_b'::name, 'card.caller() is the role the session runs as');
SELECT ok(NOT card.programme_visible(:'prog_a') AND card.programme_visible(:'prog_b'),
    'programme_visible answers for that role');
RESET ROLE;
SELECT ok(card.caller_sees_all() AND card.programme_visible(:'prog_a'), 'a superuser sees every programme');

-- Consumers are per role: the same name for two roles is two consumers.
SET LOCAL ROLE tap_tenant_a;
SELECT is(card.consumer_register('tap-shared', 5), 5::bigint, 'A registers consumer tap-shared at 5');
RESET ROLE;
SET LOCAL ROLE tap_tenant_b;
SELECT is(card.consumer_register('tap-shared', 9), 9::bigint, 'B registers its own tap-shared at 9');
SELECT is(card.consumer_ack('tap-shared', 11), 11::bigint, 'B acks its own');
RESET ROLE;
SELECT is((SELECT array_agg(role_name::text || '=' || cursor ORDER BY role_name) FROM card.event_consumer
            WHERE name = 'tap-shared'),
    ARRAY['tap_tenant_a=5', 'tap_tenant_b=11'], 'A''s cursor did not move');

SELECT * FROM finish();
ROLLBACK;
