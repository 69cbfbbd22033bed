-- PIN tries: every wrong PIN counts, in activation of a reissued card and in
-- the processor's checks; after 3 the PIN is blocked until it is reset
-- through the hosted page flow.  Wrong PINs are answers, not errors, so
-- that the count survives; malformed PINs are errors and count nothing.
\set VERBOSITY sqlstate
SELECT programme_id AS prog, individual_id AS holder, account_id AS acct
  FROM test_account('PIN programme') \gset
-- test_card_in activates with PIN 2468.
SELECT test_card_in(:'acct', :'holder', 'active') AS c \gset
SELECT card.card_token(:'c') AS tok \gset

-- The processor's check: a counted try, then its verdict in a later
-- transaction (each statement here is its own transaction).
SELECT card.card_pin_check(:'tok', '2468') AS chk \gset
SELECT * FROM card.card_pin_result(:'chk');
SELECT card.card_pin_check(:'tok', '1111') AS chk \gset
SELECT * FROM card.card_pin_result(:'chk');
SELECT pin_tries FROM card.card WHERE id = :'c';
-- A right PIN clears the count.
SELECT card.card_pin_check(:'tok', '2468') AS chk \gset
SELECT * FROM card.card_pin_result(:'chk');
SELECT pin_tries FROM card.card WHERE id = :'c';
-- Malformed and missing PINs are refused and count nothing.
SELECT card.card_pin_check(:'tok', '12');
SELECT card.card_pin_check(:'tok', '12ab');
SELECT card.card_pin_check(:'tok', NULL);
SELECT card.card_pin_check(NULL, '2468');
SELECT card.card_pin_check('ct_no_such_token', '2468');
SELECT pin_tries FROM card.card WHERE id = :'c';
-- Three wrong: blocked, then even the right PIN is not compared.
SELECT card.card_pin_check(:'tok', '0000') AS chk \gset
SELECT * FROM card.card_pin_result(:'chk');
SELECT card.card_pin_check(:'tok', '0001') AS chk \gset
SELECT * FROM card.card_pin_result(:'chk');
SELECT card.card_pin_check(:'tok', '0002') AS chk \gset
SELECT * FROM card.card_pin_result(:'chk');
SELECT card.card_pin_check(:'tok', '2468') AS chk \gset
SELECT * FROM card.card_pin_result(:'chk');
SELECT pin_tries FROM card.card WHERE id = :'c';
SELECT type, data FROM card.event WHERE card_id = :'c' AND type IN ('card.pin_blocked', 'card.pin_reset') ORDER BY seq;
-- The verdict of a check made in the same transaction is refused (its
-- count could still be rolled back), and a verdict is given once.
BEGIN;
SELECT card.card_pin_check(:'tok', '5555') AS chk \gset
SELECT * FROM card.card_pin_result(:'chk');
ROLLBACK;
SELECT card.card_pin_check(:'tok', '5555') AS chk \gset
SELECT * FROM card.card_pin_result(:'chk');
SELECT * FROM card.card_pin_result(:'chk');
SELECT card.card_pin_result(NULL);
-- A card without a PIN yet.
SELECT test_card_in(:'acct', :'holder', 'not_activated') AS n \gset
SELECT card.card_pin_check(card.card_token(:'n'), '2468');

-- ---------------------------------------------------------------------------
-- Reset through the hosted page
-- ---------------------------------------------------------------------------
SELECT redirect_url ~ '^https://cards\.example\.com/pin\?token=pin_[A-Za-z0-9_-]{43}$' AS link_ok,
       expires_at - now() = interval '30 minutes' AS lifetime_ok
  FROM card.card_pin_reset_start(:'c', 'https://app.example.com/pin-done');
SELECT substring(redirect_url FROM 'token=(.*)$') AS reset
  FROM card.card_pin_reset_start(:'c', 'https://app.example.com/pin-done') \gset
-- A malformed PIN does not use the link up.
SELECT card.card_pin_reset(:'reset', '1');
SELECT card_id = :'c' AS same_card, return_url FROM card.card_pin_reset(:'reset', '135790');
SELECT card.card_pin_reset(:'reset', '135790');
SELECT card.card_pin_check(:'tok', '135790') AS chk \gset
SELECT * FROM card.card_pin_result(:'chk');
SELECT card.card_pin_check(:'tok', '2468') AS chk \gset
SELECT * FROM card.card_pin_result(:'chk');
SELECT type, data FROM card.event WHERE card_id = :'c' AND type IN ('card.pin_blocked', 'card.pin_reset') ORDER BY seq;
-- Tokens of other kinds, unknown tokens, cards that cannot be reset.
SELECT card.card_pin_reset('act_' || repeat('A', 43), '1234');
SELECT card.card_pin_reset('pin_' || repeat('A', 43), '1234');
SELECT card.card_pin_reset(NULL, '1234');
SELECT card.card_pin_reset_start(:'n', 'https://app.example.com/pin-done');
SELECT status FROM card.card_set_status(:'c', 'blocked', 'closed');
SELECT card.card_pin_reset_start(:'c', 'https://app.example.com/pin-done');
-- An ended card's PIN is neither checked nor counted (a thief with a
-- blocked or lost card cannot use up the tries of its replacement).
SELECT card.card_pin_check(:'tok', '135790');
SELECT card.card_pin_reset_start('00000000-0000-0000-0000-000000000000', 'https://app.example.com/pin-done');
SELECT card.card_pin_reset_start(:'n', 'ftp://app.example.com/pin-done');

-- ---------------------------------------------------------------------------
-- Activation of a reissue: its carried PIN blocks after 3 wrong tries too
-- ---------------------------------------------------------------------------
SELECT test_card_in(:'acct', :'holder', 'active') AS old \gset
SELECT id AS new FROM card.card_replace(:'old', 'damaged') \gset
SELECT substring(redirect_url FROM 'token=(.*)$') AS act
  FROM card.card_activation_start(:'new', 'https://app.example.com/back') \gset
SELECT status, pin_tries_left FROM card.card_activation_complete(:'act', '1000');
SELECT status, pin_tries_left FROM card.card_activation_complete(:'act', '1001');
SELECT status, pin_tries_left FROM card.card_activation_complete(:'act', '1002');
SELECT card.card_activation_complete(:'act', '2468');
SELECT status FROM card.cards WHERE id = :'new';
-- Reset (the reissue carries a PIN, so it can be reset before activation),
-- then activate with the new PIN; the PIN belongs to the chain.
SELECT substring(redirect_url FROM 'token=(.*)$') AS reset2
  FROM card.card_pin_reset_start(:'new', 'https://app.example.com/pin-done') \gset
SELECT return_url FROM card.card_pin_reset(:'reset2', '97531');
SELECT status, pin_tries_left FROM card.card_activation_complete(:'act', '97531');
SELECT status FROM card.cards WHERE id = :'old';
SELECT card.card_pin_check(card.card_token(:'new'), '97531') AS chk \gset
SELECT * FROM card.card_pin_result(:'chk');

-- The tries are the chain's: wrong PINs on a card and on its reissue, which
-- carries the same PIN, add up to one count.
SELECT test_card_in(:'acct', :'holder', 'active') AS first \gset
SELECT id AS reissue FROM card.card_replace(:'first', 'expired') \gset
SELECT card.card_pin_check(card.card_token(:'first'), '1111') AS chk \gset
SELECT * FROM card.card_pin_result(:'chk');
SELECT card.card_pin_check(card.card_token(:'first'), '1112') AS chk \gset
SELECT * FROM card.card_pin_result(:'chk');
SELECT substring(redirect_url FROM 'token=(.*)$') AS act2
  FROM card.card_activation_start(:'reissue', 'https://app.example.com/back') \gset
SELECT status, pin_tries_left FROM card.card_activation_complete(:'act2', '1113');
SELECT card.card_pin_check(card.card_token(:'first'), '2468') AS chk \gset
SELECT * FROM card.card_pin_result(:'chk');

-- Two checks in one statement (issue 10, defect 1: both got the id of the
-- second, which pointed into a dead stack frame, and the wrong PIN's check
-- read as verified): each has an id and a verdict of its own.
SELECT test_card_in(:'acct', :'holder', 'active') AS x_card \gset
SELECT test_card_in(:'acct', :'holder', 'active') AS y_card \gset
SELECT card.card_pin_check(card.card_token(:'x_card'), '0000') AS x,
       card.card_pin_check(card.card_token(:'y_card'), '2468') AS y \gset
SELECT :'x' <> :'y' AS distinct_ids;
SELECT 'x' AS check, verified, tries_left FROM card.card_pin_result(:'x');
SELECT 'y' AS check, verified, tries_left FROM card.card_pin_result(:'y');

-- Guessing a reissue's carried PIN and rolling back after each answer
-- (issue 10, defect 2: the try was counted in the caller's transaction, so
-- a savepoint around each guess found a 4-digit PIN in 3,084 tries): each
-- try is counted and committed in a transaction of its own before the PIN
-- is compared, so no rollback gives a try back.
SELECT test_card_in(:'acct', :'holder', 'active') AS bf_old \gset
SELECT id AS bf_new FROM card.card_replace(:'bf_old', 'damaged') \gset
SELECT substring(redirect_url FROM 'token=(.*)$') AS bf_act
  FROM card.card_activation_start(:'bf_new', 'https://app.example.com/back') \gset
BEGIN;
SAVEPOINT guess;
SELECT status, pin_tries_left FROM card.card_activation_complete(:'bf_act', '1000');
ROLLBACK TO SAVEPOINT guess;
SELECT status, pin_tries_left FROM card.card_activation_complete(:'bf_act', '1001');
ROLLBACK;
-- A statement that fails on a wrong answer rolls nothing of the count back.
SELECT CASE WHEN status = 'not_activated' THEN 1 / (pin_tries_left - pin_tries_left) END
  FROM card.card_activation_complete(:'bf_act', '1002');
-- Three tries are used up: even the right PIN is refused, and the block was
-- reported by the committed try that reached the limit.
SELECT card.card_activation_complete(:'bf_act', '2468');
SELECT pin_tries FROM card.card WHERE id = :'bf_old';
SELECT type, data FROM card.event WHERE card_id = :'bf_new' AND type = 'card.pin_blocked';
SELECT status FROM card.cards WHERE id = :'bf_new';
-- The same guesses from a PL/pgSQL loop that traps each answer.
SELECT test_card_in(:'acct', :'holder', 'active') AS bf2_old \gset
SELECT id AS bf2_new FROM card.card_replace(:'bf2_old', 'damaged') \gset
SELECT substring(redirect_url FROM 'token=(.*)$') AS bf2_act
  FROM card.card_activation_start(:'bf2_new', 'https://app.example.com/back') \gset
SELECT set_config('test.bf2_act', :'bf2_act', false) IS NOT NULL AS ok;
DO $$
DECLARE
    guess int;
BEGIN
    FOR guess IN 2460..2470 LOOP
        BEGIN
            PERFORM card.card_activation_complete(current_setting('test.bf2_act'), guess::text);
            RAISE EXCEPTION 'undo' USING ERRCODE = 'P0001';
        EXCEPTION WHEN OTHERS THEN
            NULL;
        END;
    END LOOP;
END
$$;
SELECT pin_tries FROM card.card WHERE id = :'bf2_old';
SELECT card.card_activation_complete(:'bf2_act', '2468');
-- A REPEATABLE READ transaction could not see the committed count: refused
-- before anything is counted or compared.
SELECT test_card_in(:'acct', :'holder', 'active') AS rr_old \gset
SELECT id AS rr_new FROM card.card_replace(:'rr_old', 'damaged') \gset
SELECT substring(redirect_url FROM 'token=(.*)$') AS rr_act
  FROM card.card_activation_start(:'rr_new', 'https://app.example.com/back') \gset
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT card.card_activation_complete(:'rr_act', '2468');
ROLLBACK;
SELECT pin_tries FROM card.card WHERE id = :'rr_old';
SELECT status, pin_tries_left FROM card.card_activation_complete(:'rr_act', '2468');
