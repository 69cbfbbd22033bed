-- Programme isolation where a transaction of its own is needed: the feed
-- (card.events_after refuses a transaction that wrote events) and the
-- consumer registry.  The pgTAP suite test/pgtap/70_tenancy.sql covers the
-- rest.  Roles are cluster-wide: made here and dropped at the end.
\set VERBOSITY sqlstate
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_tenant_a, regress_tenant_b;
RESET client_min_messages;
CREATE ROLE regress_tenant_a LOGIN IN ROLE card_reader, card_api, card_admin;
CREATE ROLE regress_tenant_b LOGIN IN ROLE card_reader, card_api, card_admin;
SELECT programme_id AS prog_a, individual_id AS holder_a, account_id AS acct_a
  FROM test_account('Tenancy A') \gset
SELECT programme_id AS prog_b, individual_id AS holder_b, account_id AS acct_b
  FROM test_account('Tenancy B', '41111111') \gset
SELECT card.programme_grant(:'prog_a', 'regress_tenant_a') AS granted_a,
       card.programme_grant(:'prog_b', 'regress_tenant_b') AS granted_b;
SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS base FROM card.event_seq \gset

-- Interleaved changes in both programmes.
SELECT balance FROM card.account_credit(:'acct_a', 100, 'tenancy-a-1');
SELECT balance FROM card.account_credit(:'acct_b', 200, 'tenancy-b-1');
SELECT status FROM card.card_order(:'holder_a', :'acct_a', 'Tenancy A card');
SELECT status FROM card.card_order(:'holder_b', :'acct_b', 'Tenancy B card');
SELECT balance FROM card.account_credit(:'acct_a', 300, 'tenancy-a-2');

-- Each reader's feed holds its own programme's events, in order; the
-- superuser's holds all five.
SET ROLE regress_tenant_a;
SELECT seq - :base AS n, type, programme_id = :'prog_a' AS own FROM card.events_after(:base);
SELECT count(*) AS rows_read FROM card.event WHERE seq > :base;
SET ROLE regress_tenant_b;
SELECT seq - :base AS n, type, programme_id = :'prog_b' AS own FROM card.events_after(:base);
-- A cursor past the other programme's events reads on from there.
SELECT seq - :base AS n, type FROM card.events_after(:base + 2);
RESET ROLE;
SELECT count(*) AS all_events FROM card.events_after(:base);

-- Consumer names are per role; each role acks and drops only its own.
SET ROLE regress_tenant_a;
SELECT card.consumer_register('ledger', :base) - :base AS a_cursor;
SELECT card.consumer_ack('ledger', :base + 5) - :base AS a_acked;
SET ROLE regress_tenant_b;
SELECT card.consumer_register('ledger', :base) - :base AS b_cursor;
SELECT card.consumer_unregister('ledger');
SELECT card.consumer_ack('ledger', :base + 1);
RESET ROLE;
SELECT role_name, cursor - :base AS cursor FROM card.event_consumer WHERE name = 'ledger';
SET ROLE regress_tenant_a;
SELECT card.consumer_unregister('ledger');
RESET ROLE;

-- Pruning by a tenant removes only its own programme's events.
SET ROLE regress_tenant_b;
SELECT card.events_prune(now() + interval '1 day') AS pruned_by_b;
RESET ROLE;
SELECT programme_id = :'prog_a' AS of_a, count(*) FROM card.event WHERE seq > :base GROUP BY 1 ORDER BY 1;

-- A SECURITY DEFINER function acts as its owner: B's function, whoever
-- calls it (A, or a superuser), reads with B's programmes, never with its
-- caller's.
CREATE SCHEMA regress_b_code AUTHORIZATION regress_tenant_b;
SET ROLE regress_tenant_b;
CREATE FUNCTION regress_b_code.cards_seen() RETURNS text LANGUAGE sql SECURITY DEFINER
    AS 'SELECT string_agg(display_name, '','' ORDER BY display_name) FROM card.cards';
GRANT USAGE ON SCHEMA regress_b_code TO regress_tenant_a;
SET ROLE regress_tenant_a;
SELECT regress_b_code.cards_seen() AS b_function_called_by_a,
       (SELECT string_agg(display_name, ',' ORDER BY display_name) FROM card.cards) AS a_itself;
RESET ROLE;
SELECT regress_b_code.cards_seen() AS b_function_called_by_superuser;
-- The same holds for the entry points B's code calls (issue 10, defect 3:
-- they acted with the caller's programmes): called by A or by a superuser,
-- B's function finds A's card nowhere, through a C entry point or a
-- PL/pgSQL one, and blocks nothing of A's; B's own card it finds.
SET ROLE regress_tenant_b;
CREATE FUNCTION regress_b_code.block(c uuid) RETURNS text LANGUAGE sql SECURITY DEFINER
    AS 'SELECT status::text FROM card.card_set_status(c, ''blocked'', ''b code'')';
CREATE FUNCTION regress_b_code.controls(c uuid) RETURNS jsonb LANGUAGE sql SECURITY DEFINER
    AS 'SELECT card.card_controls(c)';
RESET ROLE;
SELECT id AS card_a FROM card.card WHERE programme_id = :'prog_a' LIMIT 1 \gset
SELECT id AS card_b FROM card.card WHERE programme_id = :'prog_b' LIMIT 1 \gset
SET ROLE regress_tenant_a;
SELECT regress_b_code.block(:'card_a');
SELECT regress_b_code.controls(:'card_a');
RESET ROLE;
SELECT regress_b_code.block(:'card_a');
SELECT regress_b_code.controls(:'card_a');
SELECT status AS a_card_untouched FROM card.cards WHERE id = :'card_a';
SELECT regress_b_code.controls(:'card_b') IS NOT NULL AS b_finds_its_own;
DROP SCHEMA regress_b_code CASCADE;

-- A statement in parallel mode may not take a new snapshot: the set of
-- programmes read there serves that call only (1.4's first cut failed with
-- "cannot update SecondarySnapshot during a parallel operation" whenever
-- the set was cold, as after any role change).
CREATE ROLE regress_cold;
DROP ROLE regress_cold;
SET ROLE regress_tenant_a;
SET force_parallel_mode = on;
SELECT count(*) > 0 AS a_sees_its_cards FROM card.cards;
SELECT card.programme_visible(:'prog_a') AS a_sees_a, card.programme_visible(:'prog_b') AS a_sees_b;
RESET force_parallel_mode;
SELECT card.programme_visible(:'prog_a') AS a_sees_a_after;
RESET ROLE;

DROP ROLE regress_tenant_a, regress_tenant_b;

-- Inside a security-restricted operation (an index expression evaluated by
-- CREATE INDEX, ANALYZE or autovacuum) the session's role is not the one
-- whose code runs, so the extension refuses to answer who is calling.
CREATE FUNCTION tenancy_probe(i integer) RETURNS integer LANGUAGE sql IMMUTABLE
    AS 'SELECT length(card.caller()) + i';
CREATE TABLE tenancy_probe_rows (i integer);
INSERT INTO tenancy_probe_rows VALUES (1);
CREATE INDEX ON tenancy_probe_rows ((tenancy_probe(i)));
SELECT tenancy_probe(1) > 1 AS outside_it_answers;
SELECT card.programme_visible(:'prog_a') AS visible_outside;
DROP TABLE tenancy_probe_rows;
DROP FUNCTION tenancy_probe(integer);
