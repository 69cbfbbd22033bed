\set ON_ERROR_STOP 1
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS card;

-- Catalog facts of the live feed (DESIGN.md section 9).
BEGIN;
SELECT plan(14);

SELECT has_table('card', 'event', 'table card.event exists');
SELECT columns_are('card', 'event',
    ARRAY['seq', 'occurred_at', 'type', 'card_id', 'account_id', 'programme_id', 'data'],
    'card.event has exactly the columns of section 9');
SELECT col_is_pk('card', 'event', 'seq', 'seq is the primary key');
SELECT col_type_is('card', 'event', 'data', 'jsonb', 'data is jsonb');
SELECT enum_has_labels('card', 'event_type',
    ARRAY['card.ordered', 'card.status_changed', 'card.activated', 'card.controls_updated',
          'authorization.approved', 'authorization.declined', 'authorization.captured',
          'authorization.reversed', 'authorization.expired', 'account.credited',
          'card.revealed', 'card.replaced', 'card.pin_blocked', 'card.pin_reset'],
    'the event types of section 9');
SELECT is((SELECT seqcache FROM pg_sequence WHERE seqrelid = 'card.event_seq'::regclass), 1::bigint,
    'the event sequence hands out values one at a time (events_after relies on it)');
SELECT has_trigger('card', 'event', 'event_append_only', 'card.event refuses updates');
SELECT function_returns('card', 'events_after', ARRAY['bigint', 'integer', 'interval'], 'setof card.event',
    'events_after(cursor, max, wait) returns events');
SELECT function_lang_is('card', 'events_after', ARRAY['bigint', 'integer', 'interval'], 'c', 'events_after is C');
SELECT function_returns('card', 'events_prune', ARRAY['timestamp with time zone'], 'bigint',
    'events_prune(before) returns how many it deleted');
SELECT has_function('card', 'consumer_register', ARRAY['text', 'bigint'], 'consumer_register exists');
SELECT has_function('card', 'consumer_ack', ARRAY['text', 'bigint'], 'consumer_ack exists');
SELECT ok((SELECT 'card.event'::regclass::oid = ANY (extconfig) FROM pg_extension WHERE extname = 'card'),
    'pg_dump keeps the events');
SELECT ok((SELECT 'card.event_seq'::regclass::oid = ANY (extconfig) FROM pg_extension WHERE extname = 'card'),
    'pg_dump keeps the event sequence position');

SELECT * FROM finish();
ROLLBACK;
