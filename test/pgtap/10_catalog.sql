\set ON_ERROR_STOP 1
-- Catalog facts of the card extension: types, tables, the public view, the
-- API functions and their signatures, triggers, privileges, where secrets
-- may live, pg_dump registration and the transition table (DESIGN.md 3-7).
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS card;

BEGIN;
SELECT plan(113);

-- ---------------------------------------------------------------------------
-- Schema and types
-- ---------------------------------------------------------------------------

SELECT has_schema('card', 'schema card exists');

SELECT has_enum('card', 'card_status', 'enum card.card_status exists');
SELECT enum_has_labels('card', 'card_status',
    ARRAY['not_activated', 'active', 'frozen', 'blocked', 'lost', 'stolen', 'expired'],
    'card.card_status has exactly the lifecycle labels, in order');

SELECT has_enum('card', 'card_type', 'enum card.card_type exists');
SELECT enum_has_labels('card', 'card_type', ARRAY['virtual', 'physical'],
    'card.card_type has exactly the labels virtual, physical');

-- ---------------------------------------------------------------------------
-- Tables and the public view
-- ---------------------------------------------------------------------------

SELECT has_table('card', 'programme', 'table card.programme exists');
SELECT has_table('card', 'individual', 'table card.individual exists');
SELECT has_table('card', 'account', 'table card.account exists');
SELECT has_table('card', 'account_member', 'table card.account_member exists');
SELECT has_table('card', 'card', 'table card.card exists');
SELECT has_table('card', 'card_status_change', 'table card.card_status_change exists');
SELECT has_table('card', 'hosted_link', 'table card.hosted_link exists');

SELECT has_view('card', 'cards', 'view card.cards exists');
SELECT columns_are('card', 'cards',
    ARRAY['id', 'display_name', 'type', 'brand', 'region', 'exp_month', 'exp_year',
          'last4', 'currency', 'account_id', 'individual_id', 'status'],
    'card.cards has exactly the columns of the JSON response');
SELECT results_eq(
    $$SELECT column_name::text COLLATE "default" FROM information_schema.columns
       WHERE table_schema = 'card' AND table_name = 'cards'
       ORDER BY ordinal_position$$,
    ARRAY['id', 'display_name', 'type', 'brand', 'region', 'exp_month', 'exp_year',
          'last4', 'currency', 'account_id', 'individual_id', 'status'],
    'card.cards columns come in the order of the JSON response');
SELECT col_type_is('card', 'cards', 'status', 'card', 'card_status',
    'card.cards.status is a card.card_status');

-- Audit trail columns of DESIGN.md section 3.
SELECT results_eq(
    $$SELECT count(*)::int FROM information_schema.columns
       WHERE table_schema = 'card' AND table_name = 'card_status_change'
         AND column_name IN ('card_id', 'from_status', 'to_status', 'reason',
                             'channel', 'actor', 'changed_at')$$,
    ARRAY[7],
    'card.card_status_change has card_id, from_status, to_status, reason, channel, actor, changed_at');

-- ---------------------------------------------------------------------------
-- API functions: existence with argument types, return types
-- ---------------------------------------------------------------------------

SELECT has_function('card', 'card_order',
    ARRAY['uuid', 'uuid', 'text', 'text', 'text', 'card.card_type', 'text'],
    'card.card_order(individual_id, account_id, display_name, exp_month, exp_year, type, idempotency_key) exists');
SELECT has_function('card', 'card_order', ARRAY['jsonb'],
    'card.card_order(jsonb) exists');
SELECT has_function('card', 'card_set_status',
    ARRAY['uuid', 'card.card_status', 'text', 'text'],
    'card.card_set_status(uuid, card_status, text, text) exists');
SELECT has_function('card', 'card_update', ARRAY['uuid', 'jsonb'],
    'card.card_update(uuid, jsonb) exists');
SELECT has_function('card', 'card_activation_start', ARRAY['uuid', 'text'],
    'card.card_activation_start(uuid, text) exists');
SELECT has_function('card', 'card_activation_complete', ARRAY['text', 'text'],
    'card.card_activation_complete(text, text) exists');
SELECT has_function('card', 'card_expire_due', ARRAY['date'],
    'card.card_expire_due(date) exists');
SELECT has_function('card', 'card_status_transitions', ARRAY[]::name[],
    'card.card_status_transitions() exists');
SELECT has_function('card', 'programme_create',
    ARRAY['text', 'text', 'text', 'text', 'integer', 'integer', 'interval', 'interval'],
    'card.programme_create(text, text, text, text, integer, integer, interval, interval) exists');
SELECT has_function('card', 'individual_create', ARRAY['uuid', 'text'],
    'card.individual_create(uuid, text) exists');
SELECT has_function('card', 'account_open', ARRAY['uuid', 'uuid', 'text'],
    'card.account_open(uuid, uuid, text) exists');
SELECT has_function('card', 'account_member_add', ARRAY['uuid', 'uuid'],
    'card.account_member_add(uuid, uuid) exists');
SELECT has_function('card', 'card_token', ARRAY['uuid'],
    'card.card_token(uuid) exists');
SELECT has_function('card', 'pan_check', ARRAY['uuid'],
    'card.pan_check(uuid) exists');

-- function_returns compares argument types as regtype prints them: types in
-- schema card are schema-qualified (card is not on the search_path).
SELECT function_returns('card', 'card_order',
    ARRAY['uuid', 'uuid', 'text', 'text', 'text', 'card.card_type', 'text'], 'card.cards',
    'card.card_order(typed) returns card.cards');
SELECT function_returns('card', 'card_order', ARRAY['jsonb'], 'jsonb',
    'card.card_order(jsonb) returns jsonb');
SELECT function_returns('card', 'card_set_status',
    ARRAY['uuid', 'card.card_status', 'text', 'text'], 'card.cards',
    'card.card_set_status returns card.cards');
SELECT function_returns('card', 'card_update', ARRAY['uuid', 'jsonb'], 'jsonb',
    'card.card_update returns jsonb');
SELECT function_returns('card', 'card_activation_start', ARRAY['uuid', 'text'], 'setof record',
    'card.card_activation_start returns a table');
SELECT function_returns('card', 'card_activation_complete', ARRAY['text', 'text'], 'setof record',
    'card.card_activation_complete returns a table');
SELECT function_returns('card', 'card_expire_due', ARRAY['date'], 'integer',
    'card.card_expire_due returns integer');
SELECT function_returns('card', 'card_status_transitions', ARRAY[]::name[], 'setof record',
    'card.card_status_transitions returns a set of rows');
SELECT function_returns('card', 'programme_create',
    ARRAY['text', 'text', 'text', 'text', 'integer', 'integer', 'interval', 'interval'], 'uuid',
    'card.programme_create returns uuid');
SELECT function_returns('card', 'individual_create', ARRAY['uuid', 'text'], 'uuid',
    'card.individual_create returns uuid');
SELECT function_returns('card', 'account_open', ARRAY['uuid', 'uuid', 'text'], 'uuid',
    'card.account_open returns uuid');
SELECT function_returns('card', 'account_member_add', ARRAY['uuid', 'uuid'], 'void',
    'card.account_member_add returns void');
SELECT function_returns('card', 'card_token', ARRAY['uuid'], 'text',
    'card.card_token returns text');
SELECT function_returns('card', 'pan_check', ARRAY['uuid'], 'record',
    'card.pan_check returns one record');

-- Named parameters match the JSON fields (DESIGN.md section 4).
SELECT is(
    (SELECT proargnames FROM pg_proc
      WHERE oid = 'card.card_order(uuid, uuid, text, text, text, card.card_type, text)'::regprocedure),
    ARRAY['individual_id', 'account_id', 'display_name', 'exp_month', 'exp_year',
          'type', 'idempotency_key'],
    'card.card_order parameters are named as the JSON request fields');
SELECT is(
    (SELECT proargnames FROM pg_proc
      WHERE oid = 'card.card_set_status(uuid, card.card_status, text, text)'::regprocedure),
    ARRAY['card_id', 'status', 'reason', 'channel'],
    'card.card_set_status parameters are card_id, status, reason, channel');
SELECT is(
    (SELECT proargnames[1:5] FROM pg_proc
      WHERE oid = 'card.programme_create(text, text, text, text, integer, integer, interval, interval)'::regprocedure),
    ARRAY['name', 'bin', 'brand', 'region', 'pan_length'],
    'card.programme_create parameters start with name, bin, brand, region, pan_length');
SELECT is(
    (SELECT proargnames FROM pg_proc
      WHERE oid = 'card.account_open(uuid, uuid, text)'::regprocedure),
    ARRAY['programme_id', 'individual_id', 'currency'],
    'card.account_open parameters are programme_id, individual_id, currency');
SELECT is(
    (SELECT proargnames FROM pg_proc
      WHERE oid = 'card.card_activation_start(uuid, text)'::regprocedure)::text[],
    ARRAY['card_id', 'return_url', 'redirect_url', 'expires_at'],
    'card.card_activation_start takes card_id, return_url and returns redirect_url, expires_at');
SELECT is(
    (SELECT proargnames FROM pg_proc
      WHERE oid = 'card.pan_check(uuid)'::regprocedure)::text[],
    ARRAY['card_id', 'pan_length', 'luhn_valid', 'bin_matches', 'last4_matches',
          'fingerprint_matches'],
    'card.pan_check reports pan_length, luhn_valid, bin_matches, last4_matches, fingerprint_matches');

-- Defaults of DESIGN.md section 4: type virtual, channel api, currency EUR, ...
SELECT is(
    (SELECT pronargdefaults::int FROM pg_proc
      WHERE oid = 'card.card_order(uuid, uuid, text, text, text, card.card_type, text)'::regprocedure),
    4, 'card.card_order defaults exp_month, exp_year, type and idempotency_key');
SELECT matches(
    pg_get_function_arguments('card.card_order(uuid, uuid, text, text, text, card.card_type, text)'::regprocedure),
    $$type card\.card_type DEFAULT 'virtual'::card\.card_type$$,
    'card.card_order type defaults to virtual');
SELECT matches(
    pg_get_function_arguments('card.card_set_status(uuid, card.card_status, text, text)'::regprocedure),
    $$channel text DEFAULT 'api'::text$$,
    'card.card_set_status channel defaults to api');
SELECT matches(
    pg_get_function_arguments('card.account_open(uuid, uuid, text)'::regprocedure),
    $$currency text DEFAULT 'EUR'::text$$,
    'card.account_open currency defaults to EUR');

-- The C entry points.
SELECT function_lang_is('card', 'card_order',
    ARRAY['uuid', 'uuid', 'text', 'text', 'text', 'card.card_type', 'text'], 'c',
    'card.card_order(typed) is written in C');
SELECT function_lang_is('card', 'card_set_status',
    ARRAY['uuid', 'card.card_status', 'text', 'text'], 'c',
    'card.card_set_status is written in C');
SELECT function_lang_is('card', 'card_expire_due', ARRAY['date'], 'c',
    'card.card_expire_due is written in C');
SELECT function_lang_is('card', 'card_activation_start', ARRAY['uuid', 'text'], 'c',
    'card.card_activation_start is written in C');
SELECT function_lang_is('card', 'card_activation_complete', ARRAY['text', 'text'], 'c',
    'card.card_activation_complete is written in C');
SELECT function_lang_is('card', 'card_status_transitions', ARRAY[]::name[], 'c',
    'card.card_status_transitions is written in C');
SELECT function_lang_is('card', 'pan_check', ARRAY['uuid'], 'c',
    'card.pan_check is written in C');
SELECT function_lang_is('card', 'card_status_guard', ARRAY[]::name[], 'c',
    'trigger function card.card_status_guard is written in C');
SELECT function_lang_is('card', 'card_status_audit', ARRAY[]::name[], 'c',
    'trigger function card.card_status_audit is written in C');
SELECT is(
    (SELECT probin FROM pg_proc WHERE oid = 'card.card_status_guard()'::regprocedure),
    '$libdir/card',
    'C functions come from $libdir/card');

-- ---------------------------------------------------------------------------
-- Triggers on card.card (DESIGN.md section 5)
-- ---------------------------------------------------------------------------

SELECT has_trigger('card', 'card', 'card_status_guard', 'trigger card_status_guard exists on card.card');
SELECT has_trigger('card', 'card', 'card_status_audit', 'trigger card_status_audit exists on card.card');
SELECT trigger_is('card', 'card', 'card_status_guard', 'card', 'card_status_guard',
    'trigger card_status_guard calls card.card_status_guard()');
SELECT trigger_is('card', 'card', 'card_status_audit', 'card', 'card_status_audit',
    'trigger card_status_audit calls card.card_status_audit()');
SELECT matches(
    (SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t
      WHERE t.tgrelid = 'card.card'::regclass AND t.tgname = 'card_status_guard'),
    'BEFORE UPDATE OF status, type, exp_month, exp_year ON card\.card FOR EACH ROW',
    'card_status_guard runs BEFORE UPDATE OF status, type and expiry, for each row');
SELECT matches(
    (SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t
      WHERE t.tgrelid = 'card.card'::regclass AND t.tgname = 'card_status_audit'),
    'AFTER UPDATE OF status ON card\.card FOR EACH ROW',
    'card_status_audit runs AFTER UPDATE OF status, for each row');
SELECT is(
    (SELECT count(*)::int FROM pg_trigger t
      WHERE t.tgrelid = 'card.card'::regclass
        AND t.tgname IN ('card_status_guard', 'card_status_audit')
        AND t.tgenabled = 'O'),
    2, 'both lifecycle triggers are enabled');

-- ---------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC (DESIGN.md section 10)
-- ---------------------------------------------------------------------------

CREATE ROLE card_tap_nobody NOLOGIN;

SELECT cmp_ok(
    (SELECT count(*)::int FROM pg_proc WHERE pronamespace = 'card'::regnamespace),
    '>=', 19, 'schema card holds the API functions (the privilege checks below are not vacuous)');
SELECT is(
    (SELECT count(*)::int FROM pg_proc p
      WHERE p.pronamespace = 'card'::regnamespace
        AND has_function_privilege('public', p.oid, 'EXECUTE')),
    0, 'PUBLIC has EXECUTE on no function in schema card');
SELECT is(
    (SELECT count(*)::int FROM pg_proc p
      WHERE p.pronamespace = 'card'::regnamespace
        AND (p.proacl IS NULL
             OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0))),
    0, 'no function in schema card has a default or explicit ACL entry for PUBLIC');
SELECT is(
    (SELECT count(*)::int FROM pg_proc p
      WHERE p.pronamespace = 'card'::regnamespace
        AND has_function_privilege('card_tap_nobody', p.oid, 'EXECUTE')),
    0, 'a role without grants has EXECUTE on no function in schema card');

SELECT table_privs_are('card', 'programme', 'card_tap_nobody', ARRAY[]::name[],
    'a role without grants has no privilege on card.programme');
SELECT table_privs_are('card', 'individual', 'card_tap_nobody', ARRAY[]::name[],
    'a role without grants has no privilege on card.individual');
SELECT table_privs_are('card', 'account', 'card_tap_nobody', ARRAY[]::name[],
    'a role without grants has no privilege on card.account');
SELECT table_privs_are('card', 'account_member', 'card_tap_nobody', ARRAY[]::name[],
    'a role without grants has no privilege on card.account_member');
SELECT table_privs_are('card', 'card', 'card_tap_nobody', ARRAY[]::name[],
    'a role without grants has no privilege on card.card');
SELECT table_privs_are('card', 'card_status_change', 'card_tap_nobody', ARRAY[]::name[],
    'a role without grants has no privilege on card.card_status_change');
SELECT table_privs_are('card', 'hosted_link', 'card_tap_nobody', ARRAY[]::name[],
    'a role without grants has no privilege on card.hosted_link');
SELECT table_privs_are('card', 'cards', 'card_tap_nobody', ARRAY[]::name[],
    'a role without grants has no privilege on view card.cards');
SELECT is(
    (SELECT count(*)::int FROM pg_class c
      WHERE c.relnamespace = 'card'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
        AND has_table_privilege('public', c.oid,
                'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')),
    0, 'PUBLIC has no privilege on any table or view in schema card');
SELECT is(
    (SELECT count(*)::int FROM pg_class c
      WHERE c.relnamespace = 'card'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
        AND has_any_column_privilege('card_tap_nobody', c.oid, 'SELECT, INSERT, UPDATE, REFERENCES')),
    0, 'a role without grants has no column privilege on any table in schema card');
SELECT is(
    (SELECT count(*)::int FROM pg_class c
      WHERE c.relnamespace = 'card'::regnamespace
        AND CASE WHEN c.relkind = 'S'
                 THEN has_sequence_privilege('card_tap_nobody', c.oid, 'USAGE, SELECT, UPDATE')
                 ELSE false END),
    0, 'a role without grants has no privilege on any sequence in schema card');

-- And in practice: such a role can neither call nor read.
SELECT throws_ok(
    $$SET LOCAL ROLE card_tap_nobody; SELECT * FROM card.card_status_transitions()$$,
    '42501', NULL, 'a role without grants cannot call card.card_status_transitions()');
SELECT throws_ok(
    $$SET LOCAL ROLE card_tap_nobody; SELECT card.card_token('00000000-0000-4000-8000-000000000000')$$,
    '42501', NULL, 'a role without grants cannot call card.card_token()');
SELECT throws_ok(
    $$SET LOCAL ROLE card_tap_nobody; SELECT count(*) FROM card.cards$$,
    '42501', NULL, 'a role without grants cannot read card.cards');
SELECT throws_ok(
    $$SET LOCAL ROLE card_tap_nobody; SELECT count(*) FROM card.card$$,
    '42501', NULL, 'a role without grants cannot read card.card');
SELECT is(current_user::text, 'postgres', 'the failed SET ROLE attempts were rolled back');

-- ---------------------------------------------------------------------------
-- Where secrets may live (DESIGN.md sections 3 and 6)
-- ---------------------------------------------------------------------------

SELECT is(
    (SELECT count(*)::int FROM information_schema.columns
      WHERE table_schema = 'card'
        AND column_name IN ('pan', 'pin', 'cvv', 'cvc', 'pan_clear', 'pin_clear')),
    0, 'no column in schema card is named pan, pin, cvv, cvc, pan_clear or pin_clear');
SELECT is(
    (SELECT count(*)::int FROM information_schema.columns
      WHERE table_schema = 'card' AND (column_name LIKE '%cvv%' OR column_name LIKE '%cvc%')),
    0, 'no column in schema card holds a CVV');
SELECT is(
    (SELECT string_agg(table_name || '.' || column_name || ' ' || data_type, ', ')
       FROM information_schema.columns
      WHERE table_schema = 'card'
        AND (column_name LIKE '%pan%' OR column_name LIKE '%pin%')
        AND column_name NOT IN ('pan_length', 'pan_key_version', 'pan_sequence', 'pin_tries')
        AND data_type <> 'bytea'),
    NULL, 'every PAN or PIN column in schema card (but pan_length, pan_key_version, pan_sequence, pin_tries) is bytea');
SELECT set_eq(
    $$SELECT column_name::text COLLATE "default" FROM information_schema.columns
       WHERE table_schema = 'card' AND table_name = 'card'
         AND (column_name LIKE '%pan%' OR column_name LIKE '%pin%')
         AND column_name NOT IN ('pan_length', 'pan_key_version', 'pan_sequence', 'pin_tries')$$,
    ARRAY['pan_ciphertext', 'pan_fingerprint', 'pin_hash'],
    'card.card keeps the PAN as pan_ciphertext and pan_fingerprint, the PIN as pin_hash');
SELECT is(
    (SELECT count(*)::int FROM information_schema.columns
      WHERE table_schema = 'card' AND table_name = 'cards'
        AND (column_name LIKE '%pan%' OR column_name LIKE '%pin%'
             OR column_name IN ('token', 'pan_key_version'))),
    0, 'the public view card.cards shows no PAN, PIN or token column');

-- ---------------------------------------------------------------------------
-- pg_dump keeps the data (pg_extension_config_dump)
-- ---------------------------------------------------------------------------

SELECT set_has(
    $$SELECT unnest(extconfig)::regclass::text FROM pg_extension WHERE extname = 'card'$$,
    $$VALUES ('card.programme'), ('card.individual'), ('card.account'),
             ('card.account_member'), ('card.card'), ('card.card_status_change'),
             ('card.hosted_link')$$,
    'every table holding data is registered with pg_extension_config_dump');
SELECT is(
    (SELECT string_agg(c.oid::regclass::text, ', ')
       FROM pg_class c
      WHERE c.relnamespace = 'card'::regnamespace AND c.relkind IN ('r', 'p')
        AND NOT EXISTS (SELECT 1 FROM pg_extension e
                         WHERE e.extname = 'card' AND c.oid = ANY (e.extconfig))),
    NULL, 'no table in schema card is left out of pg_dump');
-- The identity sequence of card.card_status_change is an extension member
-- too: unless it is registered, pg_dump does not keep its value and, after a
-- restore, the next status change fails with 23505 on card_status_change_pkey.
SELECT is(
    (SELECT string_agg(c.oid::regclass::text, ', ')
       FROM pg_class c
      WHERE c.relnamespace = 'card'::regnamespace AND c.relkind = 'S'
        AND NOT EXISTS (SELECT 1 FROM pg_extension e
                         WHERE e.extname = 'card' AND c.oid = ANY (e.extconfig))),
    NULL, 'no sequence in schema card is left out of pg_dump');
SELECT is(
    (SELECT count(*)::int FROM pg_extension e, unnest(e.extcondition) AS cond
      WHERE e.extname = 'card' AND cond <> ''),
    0, 'pg_dump keeps every row of the config tables (no filter condition)');

-- ---------------------------------------------------------------------------
-- The transition table (DESIGN.md section 5)
-- ---------------------------------------------------------------------------

SELECT is((SELECT count(*)::int FROM card.card_status_transitions()), 49,
    'card.card_status_transitions() returns 49 rows');
SELECT is(
    (SELECT count(DISTINCT (from_status, to_status))::int FROM card.card_status_transitions()),
    49, 'one row per (from, to) pair');
SELECT is_empty(
    $$SELECT f, t FROM unnest(enum_range(NULL::card.card_status)) f,
                       unnest(enum_range(NULL::card.card_status)) t
      EXCEPT
      SELECT from_status, to_status FROM card.card_status_transitions()$$,
    'every pair of statuses is covered');
SELECT is(
    (SELECT count(*)::int FROM card.card_status_transitions()
      WHERE rule IS NULL OR who_may IS NULL OR who_may = ''),
    0, 'every transition names its rule and who may make it');

SELECT results_eq(
    $$SELECT rule FROM card.card_status_transitions()
       WHERE from_status = 'blocked' AND to_status = 'active'$$,
    ARRAY['terminal'], 'blocked -> active is terminal');
SELECT results_eq(
    $$SELECT rule FROM card.card_status_transitions()
       WHERE from_status = 'not_activated' AND to_status = 'frozen'$$,
    ARRAY['forbidden'], 'not_activated -> frozen is forbidden');
SELECT results_eq(
    $$SELECT rule FROM card.card_status_transitions()
       WHERE from_status = 'frozen' AND to_status = 'active'$$,
    ARRAY['allowed'], 'frozen -> active is allowed');
SELECT results_eq(
    $$SELECT rule FROM card.card_status_transitions()
       WHERE from_status = 'not_activated' AND to_status = 'active'$$,
    ARRAY['activation'], 'not_activated -> active is activation');
SELECT results_eq(
    $$SELECT rule FROM card.card_status_transitions()
       WHERE from_status = 'active' AND to_status = 'active'$$,
    ARRAY['no-op'], 'active -> active is a no-op');

-- The whole matrix, derived independently from the table in DESIGN.md 5.
SELECT set_eq(
    $$SELECT from_status::text, to_status::text, rule FROM card.card_status_transitions()$$,
    $$SELECT f::text, t::text,
             CASE WHEN f = t THEN 'no-op'
                  WHEN f IN ('blocked', 'lost', 'stolen', 'expired') THEN 'terminal'
                  WHEN t = 'not_activated' THEN 'forbidden'
                  WHEN f = 'not_activated' AND t = 'active' THEN 'activation'
                  WHEN f = 'not_activated' AND t = 'frozen' THEN 'forbidden'
                  ELSE 'allowed' END
        FROM unnest(enum_range(NULL::card.card_status)) f,
             unnest(enum_range(NULL::card.card_status)) t$$,
    'the transition table is exactly the lifecycle of DESIGN.md section 5');
SELECT is(
    (SELECT count(*)::int FROM card.card_status_transitions()
      WHERE from_status IN ('blocked', 'lost', 'stolen', 'expired')
        AND from_status <> to_status AND rule <> 'terminal'),
    0, 'nothing leaves blocked, lost, stolen or expired');
SELECT is(
    (SELECT count(*)::int FROM card.card_status_transitions()
      WHERE to_status = 'not_activated' AND from_status <> 'not_activated'
        AND rule NOT IN ('forbidden', 'terminal')),
    0, 'no card ever goes back to not_activated');

SELECT * FROM finish();
ROLLBACK;
