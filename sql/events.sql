-- The live feed: every change writes exactly one event of the documented
-- shape, in its transaction; no event holds a secret.
\set VERBOSITY sqlstate
SELECT programme_id AS prog, individual_id AS holder, account_id AS acct
  FROM test_account('Events programme') \gset
SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS base FROM card.event_seq \gset

-- One of each change.
SELECT id AS c FROM card.card_order(:'holder', :'acct', 'Events card', type => 'physical') \gset
SELECT substring(redirect_url FROM 'token=(.*)$') AS tok
  FROM card.card_activation_start(:'c', 'https://app.example.com/done') \gset
SELECT status FROM card.card_activation_complete(:'tok', '975319');
SELECT status FROM card.card_set_status(:'c', 'frozen', 'holder asked', 'holder');
SELECT status FROM card.card_set_status(:'c', 'active', 'found it', 'holder');
SELECT card.card_set_controls(:'c', '{"channels": {"atm": false}}') IS NOT NULL AS card_controls;
SELECT card.account_set_controls(:'acct', '{"blocked_countries": ["KP"]}') IS NOT NULL AS account_controls;
SELECT balance FROM card.account_credit(:'acct', 10000, 'events-topup');
SELECT card.card_token(:'c') AS ctok \gset
SELECT approved FROM card.card_authorize(:'ctok', 1000, 'EUR', '5411', 'SE', 'chip', 'ev-1', 'Shop');
SELECT approved FROM card.card_authorize(:'ctok', 2000, 'EUR', '5411', 'SE', 'chip', 'ev-2', 'Shop');
SELECT approved FROM card.card_authorize(:'ctok', 3000, 'EUR', '5411', 'SE', 'chip', 'ev-3', 'Shop');
SELECT approved, decline_reason FROM card.card_authorize(:'ctok', 500, 'EUR', '6011', 'SE', 'atm', 'ev-4');
SELECT status FROM card.authorization_capture((SELECT id FROM card."authorization" WHERE external_id = 'ev-1'), 800);
SELECT status FROM card.authorization_reverse((SELECT id FROM card."authorization" WHERE external_id = 'ev-2'));
UPDATE card."authorization" SET expires_at = now() WHERE status = 'pending';
SELECT card.authorization_expire_due() AS expired;

-- Repeats that change nothing write nothing.
SELECT status FROM card.card_set_status(:'c', 'active');
SELECT approved FROM card.card_authorize(:'ctok', 1000, 'EUR', '5411', 'SE', 'chip', 'ev-1', 'Shop');
SELECT balance FROM card.account_credit(:'acct', 10000, 'events-topup');
-- A refused change writes nothing either.
SELECT card.card_set_status(:'c', 'not_activated');

-- The events, in seq order, with their shape.
SELECT e.seq - :base AS n, e.type,
       e.card_id = :'c' AS card, e.account_id = :'acct' AS account, e.programme_id = :'prog' AS programme,
       array(SELECT jsonb_object_keys(e.data) ORDER BY 1) AS fields
  FROM card.event e WHERE e.seq > :base ORDER BY e.seq;
-- And their content, but for the random ids.
SELECT e.seq - :base AS n, e.type, e.data - 'authorization_id' - 'last4' - 'exp_month' - 'exp_year' AS data
  FROM card.event e WHERE e.seq > :base ORDER BY e.seq;
-- Authorisation events name their authorisation.
SELECT count(*) AS named FROM card.event e JOIN card."authorization" h ON h.id = (e.data ->> 'authorization_id')::uuid
 WHERE e.seq > :base;

-- events_after returns the same, in order, from any cursor.
SELECT count(*) AS all_events, min(seq) - :base AS first, max(seq) - :base AS last
  FROM card.events_after(:base, 100);
SELECT seq - :base AS n, type FROM card.events_after(:base + 5, 3);

-- No secret in any event: no PAN-like digit run, no PIN, no activation token.
SELECT count(*) AS pan_like FROM card.event WHERE data::text ~ '[0-9]{13,19}';
-- (as a value of its own: not inside a uuid or another number, nor a random last4)
SELECT count(*) AS pins FROM card.event
 WHERE (data - 'last4')::text ~ '(^|[^0-9A-Za-z-])(975319|2468)([^0-9A-Za-z-]|$)';
SELECT count(*) AS tokens FROM card.event WHERE data::text LIKE '%act\_%' OR data::text LIKE '%' || :'tok' || '%';

-- Events are facts: never updated.
UPDATE card.event SET data = '{}' WHERE seq = :base + 1;

-- Bad calls.
SELECT * FROM card.events_after(-1);
SELECT * FROM card.events_after(0, 0);
SELECT * FROM card.events_after(0, 10001);
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM card.events_after(0);
ROLLBACK;
-- Not in a transaction that has written events: they may still roll back.
BEGIN;
SELECT card.event_emit('account.credited', NULL, :'acct', :'prog', '{}') > 0 AS written;
SELECT * FROM card.events_after(0);
ROLLBACK;

-- A wait: up to one hour, in seconds or less (a waiting call holds its
-- snapshot); a cancel or statement_timeout ends it.
SELECT * FROM card.events_after(0, 10, '-1 s');
SELECT * FROM card.events_after(0, 10, '61 min');
SELECT * FROM card.events_after(0, 10, '1 day');
SELECT * FROM card.events_after(0, 10, '1 mon');
SELECT max(seq) AS last_seq FROM card.event \gset
SET statement_timeout = '150ms';
SELECT * FROM card.events_after(:last_seq, 10, '1 hour');
RESET statement_timeout;
SELECT count(*) AS after_last FROM card.events_after(:last_seq, 10, '50 ms');
-- A call that finds events does not wait.
SELECT count(*) AS found FROM card.events_after(:last_seq - 1, 10, '1 hour');

-- No NOTIFY unless card.notify is on (psql would print it after each statement).
LISTEN card_events;
SELECT card.event_emit('account.credited', NULL, :'acct', :'prog', '{}') > 0 AS written_unnotified;
UNLISTEN card_events;

-- Consumers and retention: prune never removes what a consumer has not read.
SELECT card.consumer_register('billing') AS billing_cursor;
SELECT card.consumer_register('billing', 99) AS registered_again;
SELECT card.consumer_register('bad name!');
SELECT card.consumer_ack('nobody', 1);
-- The ack finds a consumer registered earlier in the same statement.
SELECT card.consumer_register('same-statement') AS registered,
       card.consumer_ack('same-statement', 0) AS acked;
SELECT card.consumer_unregister('same-statement');
SELECT card.events_prune(now() + interval '1 day') AS pruned_while_billing_at_0;
SELECT card.consumer_ack('billing', :base + 4) - :base AS billing_at;
SELECT card.consumer_ack('billing', 1) - :base AS never_back;
SELECT card.events_prune(now() - interval '1 day') AS pruned_nothing_old;
SELECT card.events_prune(now() + interval '1 day') > 0 AS pruned_what_billing_read;
SELECT min(seq) - :base AS oldest_left FROM card.event WHERE seq > :base;
SELECT card.consumer_unregister('billing');
SELECT card.consumer_unregister('billing');

-- card.events = off: changes write no event.
SELECT max(seq) AS before_off FROM card.event \gset
SET card.events = off;
SELECT status FROM card.card_set_status(:'c', 'frozen');
SELECT card.event_emit('card.status_changed', :'c', :'acct', :'prog', '{}') IS NULL AS nothing_written;
RESET card.events;
SELECT count(*) AS events_since FROM card.event WHERE seq > :before_off;

-- A negative start is bad input (22023), not a constraint violation
-- (23514, found by test/fuzz.sh).
SELECT card.consumer_register('negative', -1);
