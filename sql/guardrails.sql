-- Guard rails (1.7, issue 14): mistakes a backend or a DBA makes by hand
-- fail loudly instead of doing something else; the roles a backend is given
-- can do its everyday work.  Roles are cluster-wide: made here and dropped
-- at the end.
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_guard_admin, regress_guard_api, regress_guard_reader,
                    regress_guard_stranger, regress_guard_gone;
RESET client_min_messages;
CREATE ROLE regress_guard_admin IN ROLE card_admin;
CREATE ROLE regress_guard_api IN ROLE card_api;
CREATE ROLE regress_guard_reader IN ROLE card_reader;
CREATE ROLE regress_guard_stranger IN ROLE card_api, card_reader, card_admin;

-- The operator makes a programme and grants it to the backend's roles.
SELECT card.programme_create('Guard rails', '45671234') AS prog \gset
SELECT card.programme_create('Guard rails, other', '41111111') AS other \gset
SELECT card.programme_grant(:'prog', r)
  FROM unnest(ARRAY['regress_guard_admin', 'regress_guard_api', 'regress_guard_reader']::name[]) r;

-- card_admin makes the cardholder and the account; card_api orders on them.
SET ROLE regress_guard_admin;
SELECT card.individual_create(:'prog', 'Grace Hopper') AS holder \gset
SELECT card.account_open(:'prog', :'holder', 'EUR') AS acct \gset
SELECT balance FROM card.account_credit(:'acct', 10000, 'guard-topup-1');
RESET ROLE;
SET ROLE regress_guard_api;
SELECT type, display_name, status
  FROM card.card_order(:'holder', :'acct', 'Grace Hopper', type => 'physical');
SELECT id AS c FROM card.card_order(:'holder', :'acct', 'Grace Hopper online') \gset

-- A positional type is the display name: refused, not a virtual card named
-- "physical".  A name that is the type ordered is the caller's choice.
SELECT e.state, e.message, e.hint
  FROM test_error(format('SELECT card.card_order(%L, %L, %L)', :'holder', :'acct', 'physical')) e;
SELECT e.state, e.message
  FROM test_error(format('SELECT card.card_order(%L, %L, %L)', :'holder', :'acct', 'PHYSICAL')) e;
SELECT e.state, e.message
  FROM test_error(format('SELECT card.card_order(%L, %L, %L)', :'holder', :'acct', ' physical  ')) e;
SELECT type, display_name FROM card.card_order(:'holder', :'acct', 'Physical', type => 'physical');
-- The JSON form names its fields: any name goes.
SELECT card.card_order(jsonb_build_object('individual_id', :'holder', 'account_id', :'acct',
         'display_name', 'Virtual', 'type', 'physical')) ->> 'type' AS json_type;
SELECT type, display_name FROM card.card_order(:'holder', :'acct', 'virtual');
SELECT count(*) AS cards_on_account FROM card.cards WHERE account_id = :'acct';

-- card_update takes the seed's verb "block" and the status name "blocked".
SELECT card.card_update(:'c', '{"status": "active"}') ->> 'status' AS status;
SELECT e.state, e.message, e.hint
  FROM test_error(format('SELECT card.card_update(%L, %L)', :'c', '{"status": "blok"}')) e;
SELECT id AS c2 FROM card.card_order(:'holder', :'acct', 'Second card') \gset
SELECT card.card_update(:'c', '{"status": "block"}') ->> 'status' AS via_block,
       card.card_update(:'c2', '{"status": "blocked"}') ->> 'status' AS via_blocked;
RESET ROLE;

-- The views a backend reads: its own programme's rows, no secrets.
SELECT card.individual_create(:'other', 'Other holder') AS other_holder \gset
SELECT card.account_open(:'other', :'other_holder') AS other_acct \gset
SELECT id AS other_card FROM card.card_order(:'other_holder', :'other_acct', 'Other card') \gset
SELECT token AS ctoken FROM card.card WHERE id = (SELECT id FROM card.cards WHERE account_id = :'acct' AND display_name = 'virtual') \gset
SELECT id AS virtual_card FROM card.cards WHERE account_id = :'acct' AND display_name = 'virtual' \gset
SELECT status FROM card.card_set_status(:'virtual_card', 'active');
SELECT approved FROM card.card_authorize(:'ctoken', 2500, 'EUR', '5411', 'SE', 'chip', 'guard-auth-1');
SET ROLE regress_guard_reader;
SELECT name FROM card.individuals ORDER BY name;
SELECT from_status, to_status, reason, channel, actor
  FROM card.status_history WHERE card_id = :'c' ORDER BY id;
SELECT count(*) AS other_history FROM card.status_history WHERE card_id = :'other_card';
SELECT amount, currency, approved, status, held, external_id FROM card.authorizations;
RESET ROLE;
SELECT v.relname, string_agg(a.attname, ', ' ORDER BY a.attnum) AS columns
  FROM pg_class v JOIN pg_attribute a ON a.attrelid = v.oid AND a.attnum > 0
 WHERE v.oid IN ('card.individuals'::regclass, 'card.status_history'::regclass, 'card.authorizations'::regclass)
 GROUP BY v.relname ORDER BY v.relname;
SELECT r AS role, v AS view, has_table_privilege(r, v, 'SELECT') AS reads
  FROM unnest(ARRAY['card_admin', 'card_api', 'card_reader', 'card_processor', 'card_hosted_pages']) r,
       unnest(ARRAY['card.individuals', 'card.status_history', 'card.authorizations']) v
 ORDER BY 1, 2;

-- A role that sees no programme finds nothing, and is told why: the same
-- hint for a card that exists and one that does not, first thing in a new
-- session too (where no look-up has yet read what the role sees).
\c
SET ROLE regress_guard_stranger;
SELECT e.state, e.hint
  FROM test_error('SELECT card.card_get(''00000000-0000-4000-8000-000000000000'')') e;
RESET ROLE;
\c
SET ROLE regress_guard_stranger;
SELECT e.state, e.message = format('card %s does not exist', :'c') AS message_names_the_card, e.hint
  FROM test_error(format('SELECT card.card_get(%L)', :'c')) e;
SELECT e.state, e.hint
  FROM test_error('SELECT card.card_get(''00000000-0000-4000-8000-000000000000'')') e;
SELECT e.state, e.hint
  FROM test_error(format('SELECT card.card_order(%L, %L, %L)', :'holder', :'acct', 'Stranger card')) e;
SELECT e.state, e.hint
  FROM test_error(format('SELECT card.account_get(%L)', :'acct')) e;
SELECT e.state, e.hint
  FROM test_error(format('SELECT card.account_credit(%L, 5, %L)', :'acct', 'guard-stranger')) e;
RESET ROLE;
-- A role with a grant gets the plain error.
SET ROLE regress_guard_api;
SELECT e.state, e.hint
  FROM test_error('SELECT card.card_get(''00000000-0000-4000-8000-000000000000'')') e;
RESET ROLE;

-- consumer_ack and consumer_register stop at the last event the caller may
-- be shown: beyond it a consumer would skip the events written after it.
-- Another programme's later events do not count (nor tell how far the
-- feed has come).
SELECT max(seq) AS last_seq FROM card.event WHERE programme_id = :'prog' \gset
SELECT balance FROM card.account_credit(:'other_acct', 100, 'guard-other-1');
SELECT max(seq) AS other_seq FROM card.event WHERE programme_id = :'other' \gset
SELECT :other_seq > :last_seq AS other_programme_wrote_later;
SET ROLE regress_guard_reader;
SELECT card.consumer_register('guard-feed') AS registered_at;
SELECT card.consumer_ack('guard-feed', :last_seq) = :last_seq AS acked_to_the_last;
SELECT e.state, e.message ~ '^cursor [0-9]+ is beyond the last event$' AS message, e.hint
  FROM test_error(format('SELECT card.consumer_ack(%L, %s)', 'guard-feed', :last_seq + 1)) e;
SELECT e.state FROM test_error(format('SELECT card.consumer_ack(%L, %s)', 'guard-feed', :other_seq)) e;
SELECT card.consumer_ack('guard-feed', 0) = :last_seq AS never_backwards;
SELECT e.state, e.message ~ '^start_after [0-9]+ is beyond the last event$' AS message
  FROM test_error(format('SELECT card.consumer_register(%L, %s)', 'guard-late', :last_seq + 1000)) e;
SELECT card.consumer_unregister('guard-feed');
RESET ROLE;

-- programme_revoke refuses an unknown role as programme_grant does, and
-- still takes back a grant left behind by a dropped role.
SELECT e.state, e.message FROM test_error(format('SELECT card.programme_grant(%L, %L)', :'prog', 'regress_guard_nobody')) e;
SELECT e.state, e.message FROM test_error(format('SELECT card.programme_revoke(%L, %L)', :'prog', 'regress_guard_nobody')) e;
CREATE ROLE regress_guard_gone;
SELECT card.programme_grant(:'prog', 'regress_guard_gone') AS granted;
DROP ROLE regress_guard_gone;
SELECT card.programme_revoke(:'prog', 'regress_guard_gone') AS revoked_leftover;
SELECT e.state FROM test_error(format('SELECT card.programme_revoke(%L, %L)', :'prog', 'regress_guard_gone')) e;
SELECT card.programme_revoke(:'prog', 'regress_guard_reader') AS revoked,
       card.programme_revoke(:'prog', 'regress_guard_reader') AS again;

DROP OWNED BY regress_guard_admin, regress_guard_api, regress_guard_reader, regress_guard_stranger;
DROP ROLE regress_guard_admin, regress_guard_api, regress_guard_reader, regress_guard_stranger;

-- No statistics are gathered on what tenants write: EXPLAIN's estimates
-- for a query under row-level security would show another programme's
-- most common values.
ANALYZE card.individual, card.card, card."authorization", card.card_status_change, card.event;
SELECT attrelid::regclass AS "table", attname AS "column",
       EXISTS (SELECT FROM pg_statistic s WHERE s.starelid = a.attrelid AND s.staattnum = a.attnum) AS has_statistics
  FROM pg_attribute a
 WHERE a.attrelid IN ('card.individual'::regclass, 'card.card'::regclass, 'card."authorization"'::regclass,
                      'card.card_status_change'::regclass, 'card.event'::regclass)
   AND a.attname IN ('name', 'display_name', 'last4', 'merchant_name', 'external_id', 'amount', 'currency',
                     'mcc', 'merchant_country', 'channel', 'reason', 'actor', 'data', 'type')
 ORDER BY 1, 2;
