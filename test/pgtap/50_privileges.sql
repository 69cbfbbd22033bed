\set ON_ERROR_STOP 1
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS card;

-- Roles per capability (DESIGN.md section 10): each role can call exactly
-- its functions, every other one fails with 42501; no role writes a table.
BEGIN;
SELECT plan(29);

SELECT has_role(r, 'role ' || r || ' exists')
  FROM unnest(ARRAY['card_admin', 'card_api', 'card_processor', 'card_hosted_pages', 'card_reader']) r;
SELECT is((SELECT count(*)::int FROM pg_roles
            WHERE rolname IN ('card_admin', 'card_api', 'card_processor', 'card_hosted_pages', 'card_reader')
              AND (rolcanlogin OR rolsuper OR rolbypassrls OR rolcreaterole OR rolcreatedb)),
    0, 'the roles are NOLOGIN and hold no special attribute');

-- What each role may call.
CREATE TEMP TABLE tap_allowed (role name, fn text) ON COMMIT DROP;
INSERT INTO tap_allowed VALUES
  ('card_admin', 'programme_create'), ('card_admin', 'individual_create'), ('card_admin', 'account_open'),
  ('card_admin', 'account_member_add'), ('card_admin', 'account_credit'), ('card_admin', 'account_set_controls'),
  ('card_admin', 'account_controls'), ('card_admin', 'card_expire_due'), ('card_admin', 'authorization_expire_due'),
  ('card_admin', 'events_prune'), ('card_admin', 'pan_check'), ('card_admin', 'card_status_transitions'),
  ('card_api', 'card_order'), ('card_api', 'card_set_status'), ('card_api', 'card_update'),
  ('card_api', 'card_activation_start'), ('card_api', 'card_set_controls'), ('card_api', 'card_controls'),
  ('card_api', 'account_set_controls'), ('card_api', 'account_controls'), ('card_api', 'account_credit'),
  ('card_api', 'card_spend_status'), ('card_api', 'card_token'), ('card_api', 'card_status_transitions'),
  ('card_processor', 'card_authorize'), ('card_processor', 'authorization_capture'),
  ('card_processor', 'authorization_reverse'), ('card_processor', 'authorization_expire_due'),
  ('card_hosted_pages', 'card_activation_complete'),
  ('card_reader', 'card_controls'), ('card_reader', 'account_controls'), ('card_reader', 'card_spend_status'),
  ('card_reader', 'card_status_transitions'), ('card_reader', 'events_after'), ('card_reader', 'consumer_register'),
  ('card_reader', 'consumer_ack'), ('card_reader', 'consumer_unregister'),
  ('card_admin', 'programme_grant'), ('card_admin', 'programme_revoke'), ('card_admin', 'pan_key_versions'),
  ('card_api', 'card_reveal_start'), ('card_api', 'card_replace'), ('card_api', 'card_pin_reset_start'),
  ('card_processor', 'card_pin_check'), ('card_processor', 'card_pin_result'),
  ('card_hosted_pages', 'card_reveal'), ('card_hosted_pages', 'card_pin_reset'),
  -- 1.6: the reads and settlement calls of the HTTP API's JSON forms
  ('card_admin', 'card_get'), ('card_api', 'card_get'), ('card_reader', 'card_get'),
  ('card_admin', 'account_get'), ('card_api', 'account_get'), ('card_reader', 'account_get'),
  ('card_processor', 'authorization_capture_request'), ('card_processor', 'authorization_reverse_request'),
  -- 1.8: a programme made on every shard with one id (the scale-out proxy)
  ('card_admin', 'programme_adopt'), ('card_admin', 'programme_seal');

-- What row-level security policies and the views evaluate as the querying
-- role: every role may call them; each tells only about the caller itself.
CREATE TEMP TABLE tap_policy_helpers (fn text) ON COMMIT DROP;
INSERT INTO tap_policy_helpers VALUES ('caller'), ('caller_sees_all'), ('caller_has_role'),
  ('programme_visible'), ('visible_programmes'), ('effective_status'),
  -- 1.8: which shard an id or token belongs to (pure functions of their argument)
  ('shard'), ('shard_of'), ('shard_of_token'), ('new_id');
INSERT INTO tap_allowed
SELECT r, h.fn FROM tap_policy_helpers h,
       unnest(ARRAY['card_admin', 'card_api', 'card_processor', 'card_hosted_pages', 'card_reader']::name[]) r;

-- Call every function of the schema as each role, with NULL arguments:
-- a refused call fails with 42501 before its arguments matter.
\ir include/run_as.sql

-- A call of a function with NULL for every argument.
CREATE FUNCTION pg_temp.tap_null_call(fn regprocedure) RETURNS text LANGUAGE sql AS $$
    SELECT format(CASE WHEN (SELECT prokind FROM pg_proc WHERE oid = fn) = 'p' THEN 'CALL %s(%s)'
                       ELSE 'SELECT %s(%s)' END, fn::oid::regproc,
                  (SELECT string_agg('NULL::' || format_type(t, NULL), ', ')
                     FROM unnest((SELECT proargtypes::oid[] FROM pg_proc WHERE oid = fn)) t))
$$;

CREATE TEMP TABLE tap_calls ON COMMIT DROP AS
SELECT r.role, p.proname::text AS fn,
       pg_temp.tap_run_as(r.role, pg_temp.tap_null_call(p.oid::regprocedure)) AS outcome
  FROM unnest(ARRAY['card_admin', 'card_api', 'card_processor', 'card_hosted_pages', 'card_reader']::name[]) r(role)
  CROSS JOIN pg_proc p
 WHERE p.pronamespace = 'card'::regnamespace AND p.prorettype <> 'trigger'::regtype;

SELECT cmp_ok((SELECT count(*)::int FROM tap_calls), '>', 200, 'every function was called as every role');
SELECT is((SELECT count(*)::int FROM tap_calls c
            WHERE (c.outcome = '42501') = EXISTS (SELECT 1 FROM tap_allowed a WHERE a.role = c.role AND a.fn = c.fn)),
    0, 'each role can call exactly its functions; every other call fails with 42501');
SELECT is((SELECT string_agg(c.role || ':' || c.fn || '=' || c.outcome, ', ' ORDER BY c.role, c.fn) FROM tap_calls c
            WHERE (c.outcome = '42501') = EXISTS (SELECT 1 FROM tap_allowed a WHERE a.role = c.role AND a.fn = c.fn)),
    NULL, 'no exception to the table above');
SELECT is((SELECT count(DISTINCT fn)::int FROM tap_allowed a
            WHERE NOT EXISTS (SELECT 1 FROM tap_calls c WHERE c.fn = a.fn)), 0,
    'every allowed function exists');

-- The entry points run as the owner with a fixed search_path; helpers are not callable.
-- Entry points are SECURITY INVOKER C functions that switch to the owner
-- themselves, keeping the acting role as the caller (src/tenancy.c); a
-- PL/pgSQL or SQL entry point's body lives in card_internal, callable by
-- nobody but the owner, and its C wrapper in card.
SELECT is((SELECT count(*)::int FROM pg_proc p
            WHERE p.pronamespace = 'card'::regnamespace
              AND p.proname IN (SELECT fn FROM tap_allowed WHERE fn <> 'card_status_transitions')
              AND p.proname NOT IN (SELECT fn FROM tap_policy_helpers)
              AND NOT (p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'c') AND NOT p.prosecdef)),
    0, 'every entry point is a SECURITY INVOKER C function');
SELECT is((SELECT count(*)::int FROM pg_proc p
            WHERE p.pronamespace IN ('card'::regnamespace, 'card_internal'::regnamespace) AND p.prosecdef),
    0, 'no function of the extension is SECURITY DEFINER (the entry points switch in C)');
SELECT is((SELECT count(*)::int FROM pg_proc p
            WHERE p.pronamespace = 'card'::regnamespace AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'c')
              AND p.proname IN (SELECT fn FROM tap_allowed)
              AND p.prosrc <> 'card_plpgsql_entry'
              AND NOT ('search_path=pg_catalog, pg_temp' = ANY (p.proconfig))),
    0, 'every C entry point with statements of its own runs with search_path = pg_catalog, pg_temp');
SELECT is((SELECT count(*)::int FROM pg_proc p
            WHERE p.pronamespace = 'card'::regnamespace AND p.prosrc = 'card_plpgsql_entry'
              AND NOT EXISTS (SELECT FROM pg_proc b
                               WHERE b.pronamespace = 'card_internal'::regnamespace
                                 AND b.proname = p.proname AND b.proargtypes = p.proargtypes
                                 AND 'search_path=pg_catalog, pg_temp' = ANY (b.proconfig)
                                 AND NOT EXISTS (SELECT FROM aclexplode(b.proacl) a WHERE a.grantee <> b.proowner))),
    0, 'every wrapper has its body in card_internal, with a fixed search_path and no grant to anyone');
SELECT ok(NOT has_schema_privilege(r, 'card_internal', 'USAGE'), r || ' has no usage of card_internal')
  FROM unnest(ARRAY['card_admin', 'card_api', 'card_processor', 'card_hosted_pages', 'card_reader']) r;

-- No role writes any table directly.
-- A write of each kind to a table (UPDATE sets a plain column: identity and
-- generated ones refuse updates before privileges are checked).
CREATE FUNCTION pg_temp.tap_write(tbl regclass, verb text) RETURNS text LANGUAGE sql AS $$
    SELECT CASE verb
        WHEN 'insert' THEN format('INSERT INTO %s DEFAULT VALUES', tbl)
        WHEN 'update' THEN format('UPDATE %s SET %I = %I WHERE false', tbl, col, col)
        WHEN 'delete' THEN format('DELETE FROM %s WHERE false', tbl)
        WHEN 'truncate' THEN format('TRUNCATE %s', tbl) END
      FROM (SELECT attname AS col FROM pg_attribute
             WHERE attrelid = tbl AND attnum > 0 AND NOT attisdropped
               AND attidentity = '' AND attgenerated = '' ORDER BY attnum LIMIT 1) c
$$;
SELECT is((SELECT count(*)::int
             FROM unnest(ARRAY['card_admin', 'card_api', 'card_processor', 'card_hosted_pages', 'card_reader']::name[]) r(role)
             CROSS JOIN (SELECT c.oid::regclass AS tbl FROM pg_class c
                          WHERE c.relnamespace = 'card'::regnamespace AND c.relkind = 'r') t
             CROSS JOIN unnest(ARRAY['insert', 'update', 'delete', 'truncate']) v(verb)
            WHERE pg_temp.tap_run_as(r.role, pg_temp.tap_write(t.tbl, v.verb)) <> '42501'),
    0, 'INSERT, UPDATE, DELETE and TRUNCATE on every table fail with 42501 for every role');

-- Reading: the views for the roles that read; the tables for nobody but the owner.
SELECT ok(has_table_privilege('card_reader', 'card.cards', 'SELECT'), 'card_reader reads card.cards');
SELECT ok(has_table_privilege('card_api', 'card.balances', 'SELECT'), 'card_api reads card.balances');
SELECT ok(NOT has_table_privilege('card_processor', 'card.cards', 'SELECT'), 'card_processor does not read card.cards');
-- Who reads which view (1.7): the backend's roles read cards, balances,
-- authorisations, status history and cardholders; the processor and the
-- hosted pages read none (they work through their functions only).
CREATE TEMP TABLE tap_view_readers (role name, view text) ON COMMIT DROP;
INSERT INTO tap_view_readers
SELECT r, v FROM unnest(ARRAY['card_admin', 'card_api', 'card_reader']::name[]) r,
       unnest(ARRAY['cards', 'balances', 'authorizations', 'status_history', 'individuals']) v;
SELECT is((SELECT string_agg(format('%s %s card.%s', r, CASE WHEN t.role IS NULL THEN 'reads' ELSE 'cannot read' END, c.relname), ', ')
             FROM pg_class c
             CROSS JOIN unnest(ARRAY['card_admin', 'card_api', 'card_processor', 'card_hosted_pages', 'card_reader']::name[]) r
             LEFT JOIN tap_view_readers t ON t.role = r AND t.view = c.relname
            WHERE c.relnamespace = 'card'::regnamespace AND c.relkind = 'v'
              AND has_table_privilege(r, c.oid, 'SELECT') <> (t.role IS NOT NULL)),
    NULL, 'each role reads exactly the views of its table');
SELECT is((SELECT string_agg(c.relname, ', ') FROM pg_class c
            WHERE c.relnamespace = 'card'::regnamespace AND c.relkind = 'v'
              AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)),
    NULL, 'every view reads its tables as the querying role (security_invoker), so their policies apply');
SELECT is((SELECT count(*)::int FROM pg_class c
             CROSS JOIN unnest(ARRAY['card_admin', 'card_api', 'card_processor', 'card_hosted_pages', 'card_reader']) r
            WHERE c.relnamespace = 'card'::regnamespace AND c.relkind = 'r' AND c.relname <> 'event'
              AND has_table_privilege(r, c.oid, 'SELECT')),
    0, 'no role reads a whole table directly (card.event to card_reader only)');
SELECT is((SELECT string_agg(r || ':' || col, ', ')
             FROM unnest(ARRAY['card_admin', 'card_api', 'card_processor', 'card_hosted_pages', 'card_reader']) r
             CROSS JOIN unnest(ARRAY['pan_ciphertext', 'pan_key_version', 'pan_fingerprint', 'pin_hash',
                                     'token', 'idempotency_key', 'order_request_hash']) col
            WHERE has_column_privilege(r, 'card.card', col, 'SELECT')),
    NULL, 'no role reads a secret column of card.card');

-- A login role granted card_api works through the functions, and the audit
-- trail names it, not the extension's owner.
CREATE ROLE tap_api_user LOGIN IN ROLE card_api;
SELECT card.programme_create('TAP privileges', '45671234') AS prog \gset
SELECT card.individual_create(:'prog', 'Privileged holder') AS holder \gset
SELECT card.account_open(:'prog', :'holder') AS acct \gset
SELECT card.programme_grant(:'prog', 'tap_api_user');
SET LOCAL ROLE tap_api_user;
SELECT id AS api_card FROM card.card_order(:'holder', :'acct', 'Ordered by the API') \gset
SELECT is((card.card_set_status(:'api_card', 'active')).status, 'active'::card.card_status,
    'a role granted card_api orders and activates a virtual card');
RESET ROLE;
SELECT is((SELECT array_agg(DISTINCT actor::text) FROM card.card_status_change WHERE card_id = :'api_card'),
    ARRAY['tap_api_user'], 'the audit trail names the calling role');

SELECT * FROM finish();
ROLLBACK;
