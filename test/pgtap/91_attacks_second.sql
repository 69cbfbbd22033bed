\set ON_ERROR_STOP 1
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS card;

-- Second attack review (issue 10 fixes).  Each test fails on the code it
-- was written against; the multi-session reproduction of the same finding
-- (another tenant's feed stalled by the attacker's open writer, and the
-- attacker's events delivered to it) is in /tmp/attacks2 of that review.
BEGIN;
SELECT plan(2);
\ir include/run_as.sql

CREATE ROLE tap_atk2_a LOGIN IN ROLE card_admin, card_api, card_processor, card_hosted_pages, card_reader;
CREATE ROLE tap_atk2_b LOGIN IN ROLE card_admin, card_api, card_processor, card_hosted_pages, card_reader;

SET LOCAL ROLE tap_atk2_a;
SELECT card.programme_create('TAP attack2 A', '45671299') AS prog_a \gset
RESET ROLE;
SET LOCAL ROLE tap_atk2_b;
SELECT card.programme_create('TAP attack2 B', '51234599', 'mastercard') AS prog_b \gset
RESET ROLE;

-- ---------------------------------------------------------------------------
-- Finding 1: a tenant pushes its programme onto another tenant's role by
-- role membership.  programme_grant refuses B's login as a grantee (defect
-- 6), and role_reaches_shared() only stops a *shared* role being made a
-- member.  But A may grant its programme to a role it holds WITH ADMIN
-- OPTION (README "Granting") and then, with that ADMIN OPTION, GRANT the
-- role TO B's login: no consent from B is needed.  B then sees A's
-- programme (defect 6 again), A's events arrive in B's feed as if they were
-- B's, and every events_after of B waits for A's open writers (defect 4
-- again).
-- ---------------------------------------------------------------------------
CREATE ROLE tap_atk2_team NOLOGIN;
GRANT tap_atk2_team TO tap_atk2_a WITH ADMIN OPTION;   -- a DBA gives A a team role
SET LOCAL ROLE tap_atk2_a;
SELECT card.programme_grant(:'prog_a', 'tap_atk2_team') AS granted \gset
GRANT tap_atk2_team TO tap_atk2_b;   -- A pushes its team role onto B's login
RESET ROLE;

SET LOCAL ROLE tap_atk2_b;
SELECT ok(NOT card.programme_visible(:'prog_a'),
    'a programme does not reach another tenant''s login that the granting tenant made a member of its role');
RESET ROLE;
-- A membership the member's side agreed to still carries the programme: one
-- granted by a superuser (as a DBA sets a tenant's roles up).
CREATE ROLE tap_atk2_a_proc LOGIN IN ROLE card_processor;
GRANT tap_atk2_team TO tap_atk2_a_proc;
SET LOCAL ROLE tap_atk2_a_proc;
SELECT ok(card.programme_visible(:'prog_a'),
    'a membership granted by a superuser carries the programme');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
