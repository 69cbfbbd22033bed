\set ON_ERROR_STOP 1
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS card;

-- Catalog facts of spend controls and funding (DESIGN.md section 8).
BEGIN;
SELECT plan(22);

SELECT has_table('card', 'account_credit', 'table card.account_credit exists');
SELECT has_table('card', 'spend_limit', 'table card.spend_limit exists');
SELECT has_table('card', 'authorization', 'table card.authorization exists');
SELECT has_view('card', 'balances', 'view card.balances exists');
SELECT columns_are('card', 'balances', ARRAY['account_id', 'currency', 'balance', 'held', 'available'],
    'card.balances shows exactly the balances');
SELECT col_type_is('card', 'account', 'balance', 'bigint', 'balances are bigint minor units');
SELECT col_type_is('card', 'account', 'held', 'bigint', 'held is bigint minor units');
SELECT col_type_is('card', 'authorization', 'amount', 'bigint', 'amounts are bigint minor units');
SELECT enum_has_labels('card', 'decline_reason',
    ARRAY['card_not_active', 'card_expired', 'account_not_active', 'currency_mismatch',
          'channel_blocked', 'country_blocked', 'category_blocked', 'spending_limit',
          'insufficient_funds'],
    'the decline reasons of DESIGN.md section 8, in the order they are checked');
SELECT enum_has_labels('card', 'spend_interval',
    ARRAY['per_authorization', 'daily', 'weekly', 'monthly', 'yearly', 'all_time'],
    'the limit intervals');
SELECT enum_has_labels('card', 'authorization_status',
    ARRAY['declined', 'pending', 'captured', 'reversed', 'expired'], 'the states of a hold');

SELECT function_returns('card', 'card_authorize',
    ARRAY['text', 'bigint', 'text', 'text', 'text', 'text', 'text', 'text'], 'setof record',
    'card_authorize(card_token, amount, currency, mcc, merchant_country, channel, external_id, merchant_name)');
SELECT function_lang_is('card', 'card_authorize',
    ARRAY['text', 'bigint', 'text', 'text', 'text', 'text', 'text', 'text'], 'c', 'card_authorize is C');
SELECT has_function('card', 'account_credit', ARRAY['uuid', 'bigint', 'text'], 'account_credit exists');
SELECT function_returns('card', 'card_set_controls', ARRAY['uuid', 'jsonb'], 'jsonb', 'card_set_controls returns jsonb');
SELECT function_returns('card', 'account_set_controls', ARRAY['uuid', 'jsonb'], 'jsonb', 'account_set_controls returns jsonb');
SELECT has_function('card', 'authorization_capture', ARRAY['uuid', 'bigint'], 'authorization_capture exists');
SELECT has_function('card', 'authorization_reverse', ARRAY['uuid', 'bigint'], 'authorization_reverse exists');
SELECT function_returns('card', 'authorization_expire_due', ARRAY['timestamp with time zone'], 'integer',
    'authorization_expire_due returns how many holds it released');
SELECT has_function('card', 'card_spend_status', ARRAY['uuid'], 'card_spend_status exists');
SELECT volatility_is('card', 'spend_window_start', ARRAY['card.spend_interval', 'timestamp with time zone'],
    'immutable', 'the window of a moment is immutable (UTC calendar, no session time zone)');
-- An account can never show negative available funds, whatever writes it.
SELECT card.programme_create('TAP catalog funding', '45671234') AS prog \gset
SELECT card.account_open(:'prog', card.individual_create(:'prog', 'Nobody')) AS acct \gset
SELECT throws_ok(format('UPDATE card.account SET held = 1 WHERE id = %L', :'acct'),
    '23514', NULL, 'a constraint refuses held above balance');

SELECT * FROM finish();
ROLLBACK;
