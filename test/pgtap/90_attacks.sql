\set ON_ERROR_STOP 1
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS card;

-- Adversarial tenancy (issue 10, "Suites that keep them out"): what a hostile
-- tenant can do with nothing but its own login roles.  A tenant's login holds
-- the shared capability roles (card_admin, ..., card_reader) and so may
-- SET ROLE to them; PostgreSQL then says the shared role is acting, and
-- the extension takes it as the caller.  Each test here failed on 1.2 as
-- first written; the multi-session attacks of the same review are in the
-- isolation specs (chain-race: two calls in one transaction against an
-- authorisation; events-tenancy) and test/leak.sh (literal secrets in a
-- failing statement).
BEGIN;
SELECT plan(7);
\ir include/run_as.sql

CREATE ROLE tap_atk_a LOGIN IN ROLE card_admin, card_api, card_processor, card_hosted_pages, card_reader;
CREATE ROLE tap_atk_b LOGIN IN ROLE card_admin, card_api, card_processor, card_hosted_pages, card_reader;

SET LOCAL ROLE tap_atk_a;
SELECT card.programme_create('TAP attack A', '45671234') AS prog_a \gset
RESET ROLE;
SET LOCAL ROLE tap_atk_b;
SELECT card.programme_create('TAP attack B', '51234567', 'mastercard') AS prog_b \gset
RESET ROLE;

-- ---------------------------------------------------------------------------
-- Consumers: "two roles may each have a consumer called billing, and neither
-- can move or drop the other's" (README).  B's login may SET ROLE
-- card_reader; a consumer it registers so belongs to card_reader, and
-- consumer_role() then hands that row to every role with card_reader's
-- privileges that has no consumer of that name yet: A's new consumer is
-- B's, which B moves and drops at will.
-- ---------------------------------------------------------------------------

-- B squats the name, acting as card_reader (what its login's SET ROLE card_reader does).
SET LOCAL ROLE card_reader;
SELECT pg_temp.tap_state($$SELECT card.consumer_register('tap-atk-billing', 0)$$) AS squatted \gset
RESET ROLE;
-- A registers its billing consumer, at 0.
SET LOCAL ROLE tap_atk_a;
SELECT pg_temp.tap_state($$SELECT card.consumer_register('tap-atk-billing', 0)$$) AS a_registered \gset
RESET ROLE;
-- B, as its own login, acknowledges far ahead.
SELECT pg_temp.tap_run_as('tap_atk_b', $$SELECT card.consumer_ack('tap-atk-billing', 1000000000000)$$) AS b_acked \gset
SET LOCAL ROLE tap_atk_a;
SELECT is(card.consumer_register('tap-atk-billing', 0), 0::bigint,
    'another tenant cannot move A''s consumer (a name first registered while acting as card_reader)');
RESET ROLE;
-- B drops it.
SELECT pg_temp.tap_run_as('tap_atk_b', $$SELECT card.consumer_unregister('tap-atk-billing')$$) AS b_dropped \gset
SELECT is(pg_temp.tap_run_as('tap_atk_a', $$SELECT card.consumer_ack('tap-atk-billing', 0)$$), 'ran',
    'another tenant cannot drop A''s consumer');

-- ---------------------------------------------------------------------------
-- Programmes reach no shared capability role (DESIGN.md section 10; README
-- "Granting": never to card_admin, card_api, card_processor,
-- card_hosted_pages or card_reader, which every tenant's roles hold).
-- programme_grant refuses it, but programme_create grants the new programme
-- to the caller, and a tenant's login acting as card_admin is card_admin:
-- every tenant's admin then sees the programme, its events reach their
-- feeds, and its open transactions stall their events_after.
-- ---------------------------------------------------------------------------

SET LOCAL ROLE card_admin;   -- what tap_atk_a's SET ROLE card_admin does
SELECT pg_temp.tap_state($$SELECT card.programme_create('TAP attack shared', '45679999')$$) AS created \gset
RESET ROLE;
SELECT coalesce((SELECT id::text FROM card.programme WHERE name = 'TAP attack shared'),
                '00000000-0000-0000-0000-000000000000') AS prog_shared \gset
SELECT is((SELECT count(*)::int FROM card.programme_role g
            WHERE g.programme_id = :'prog_shared'
              AND g.role_name IN ('card_admin', 'card_api', 'card_processor', 'card_hosted_pages', 'card_reader')),
    0, 'programme_create acting as card_admin grants the programme to no shared capability role');
SET LOCAL ROLE tap_atk_b;
SELECT ok(NOT card.programme_visible(:'prog_shared'),
    'another tenant does not see a programme A created while acting as card_admin');
RESET ROLE;

-- A role the tenant holds WITH ADMIN OPTION is a legitimate grantee (README
-- "Granting": "whose members it chooses"), but the tenant may then make a
-- shared capability role one of its members: every tenant's reader then
-- sees A's programme, which programme_grant refuses to allow directly.
CREATE ROLE tap_atk_team NOLOGIN;
GRANT tap_atk_team TO tap_atk_a WITH ADMIN OPTION;
SET LOCAL ROLE tap_atk_a;
SELECT card.programme_grant(:'prog_a', 'tap_atk_team') AS granted \gset
GRANT tap_atk_team TO card_reader;   -- A chooses the members of its team role
RESET ROLE;
SET LOCAL ROLE tap_atk_b;
SELECT ok(NOT card.programme_visible(:'prog_a'),
    'a programme granted to a role A administers does not reach another tenant through a shared role A made a member');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- Memberships must be agreed to (second review).  A tenant holding its team
-- role WITH ADMIN OPTION can push that role onto another tenant's login
-- (GRANT team TO b_login) without asking: B would see A's programme, A's
-- events would reach B's feed, and B's events_after would wait for A's
-- writers.  Such a membership carries no programme; one granted by a
-- superuser (as a DBA sets a tenant's roles up) does.
-- ---------------------------------------------------------------------------
CREATE ROLE tap_atk_push NOLOGIN;
GRANT tap_atk_push TO tap_atk_a WITH ADMIN OPTION;
SET LOCAL ROLE tap_atk_a;
SELECT card.programme_grant(:'prog_a', 'tap_atk_push') AS pushed_grant \gset
GRANT tap_atk_push TO tap_atk_b;   -- A pushes its role onto B's login
RESET ROLE;
SET LOCAL ROLE tap_atk_b;
SELECT ok(NOT card.programme_visible(:'prog_a'),
    'a programme does not reach another tenant''s login that the granting tenant made a member of its role');
RESET ROLE;
CREATE ROLE tap_atk_a_proc LOGIN IN ROLE card_processor;
GRANT tap_atk_push TO tap_atk_a_proc;
SET LOCAL ROLE tap_atk_a_proc;
SELECT ok(card.programme_visible(:'prog_a'), 'a membership granted by a superuser carries the programme');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
