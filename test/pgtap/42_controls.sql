\set ON_ERROR_STOP 1
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS card;

-- card_authorize judges the card's and the account's controls in C
-- (src/authorize.c) from the columns card_set_controls and
-- account_set_controls store; they once were statements' SQL.  That SQL is
-- the oracle here: every control state (the API's, and what the owner can
-- write directly: empty lists, NULL elements), on the account and then on
-- the card, against every category, country and channel of a grid, the
-- decline reason must be the one the SQL expression gives.
BEGIN;
SELECT plan(6);

SELECT card.programme_create('TAP controls in C', '45671234') AS prog \gset
SELECT card.individual_create(:'prog', 'Controls holder') AS holder \gset
SELECT card.account_open(:'prog', :'holder') AS acct \gset
SELECT card.account_credit(:'acct', 1000000000, 'seed') IS NOT NULL AS credited \gset
SELECT (card.card_order(:'holder', :'acct', 'Controls card')).id AS c \gset
SELECT card.card_set_status(:'c', 'active') IS NOT NULL AS activated \gset
SELECT card.card_token(:'c') AS token \gset
SELECT set_config('tap.acct', :'acct', true), set_config('tap.token', :'token', true),
       set_config('tap.card', :'c', true) \gset

CREATE TEMP TABLE tap_state (
    n int PRIMARY KEY,
    mcc_allowed int4multirange, mcc_blocked int4multirange,
    countries_allowed text[], countries_blocked text[], channels_blocked text[]
) ON COMMIT DROP;
INSERT INTO tap_state VALUES
    (1, NULL, NULL, NULL, NULL, '{}'),
    (2, '{[5411,5412), [5812,5815)}', NULL, '{SE,NO}', NULL, '{atm}'),
    (3, NULL, '{[7995,7996)}', NULL, '{RU,KP}', '{atm,magstripe}'),
    (4, '{}', NULL, '{}', NULL, '{}'),
    (5, NULL, '{}', NULL, '{}', '{}'),
    (6, NULL, NULL, '{SE,NULL}', NULL, '{}'),
    (7, NULL, NULL, NULL, '{RU,NULL}', '{}'),
    (8, NULL, NULL, NULL, NULL, '{atm,NULL}'),
    (9, '{[5000,6000)}', '{[5411,5412)}', '{NULL,SE}', '{NULL}', '{NULL}');

CREATE TEMP TABLE tap_request ON COMMIT DROP AS
SELECT mcc, country, channel
  FROM unnest(ARRAY['5411', '5812', '7995', '0742']) mcc,
       unnest(ARRAY['SE', 'RU', 'FR']) country,
       unnest(ARRAY['chip', 'atm', 'ecommerce']) channel;

-- The oracle: the account's side of the old lock statement, with NULL
-- reading as false, in authorize_judge's order.
CREATE TEMP TABLE tap_verdict (target text, n int, mcc text, country text, channel text,
                               expected text, got text) ON COMMIT DROP;
DO $$
DECLARE
    target text;
    s record;
    r record;
    got text;
    k int := 0;
BEGIN
    FOREACH target IN ARRAY ARRAY['account', 'card'] LOOP
        FOR s IN SELECT * FROM tap_state ORDER BY n LOOP
            -- The state on the target, none on the other.
            UPDATE card.account
               SET (mcc_allowed, mcc_blocked, countries_allowed, countries_blocked, channels_blocked) =
                   (SELECT x.mcc_allowed, x.mcc_blocked, x.countries_allowed, x.countries_blocked,
                           x.channels_blocked
                      FROM tap_state x WHERE x.n = CASE WHEN target = 'account' THEN s.n ELSE 1 END)
             WHERE id = current_setting('tap.acct')::uuid;
            UPDATE card.card
               SET (mcc_allowed, mcc_blocked, countries_allowed, countries_blocked, channels_blocked) =
                   (SELECT x.mcc_allowed, x.mcc_blocked, x.countries_allowed, x.countries_blocked,
                           x.channels_blocked
                      FROM tap_state x WHERE x.n = CASE WHEN target = 'card' THEN s.n ELSE 1 END)
             WHERE id = current_setting('tap.card')::uuid;
            FOR r IN SELECT * FROM tap_request LOOP
                k := k + 1;
                SELECT a.decline_reason INTO got
                  FROM card.card_authorize(current_setting('tap.token'), 1, 'EUR', r.mcc, r.country,
                                           r.channel, 'tap-controls-' || k) a;
                INSERT INTO tap_verdict
                SELECT target, s.n, r.mcc, r.country, r.channel,
                       CASE WHEN NOT coalesce(r.channel <> ALL (s.channels_blocked), false)
                            THEN 'channel_blocked'
                            WHEN NOT coalesce((s.countries_allowed IS NULL OR r.country = ANY (s.countries_allowed))
                                              AND (s.countries_blocked IS NULL OR r.country <> ALL (s.countries_blocked)), false)
                            THEN 'country_blocked'
                            WHEN NOT coalesce((s.mcc_allowed IS NULL OR s.mcc_allowed @> r.mcc::int)
                                              AND (s.mcc_blocked IS NULL OR NOT s.mcc_blocked @> r.mcc::int), false)
                            THEN 'category_blocked'
                       END,
                       got;
            END LOOP;
        END LOOP;
    END LOOP;
END $$;

SELECT is((SELECT count(*)::int FROM tap_verdict), 648, 'every state met every request, on the account and on the card');
SELECT is((SELECT count(*)::int FROM tap_verdict WHERE expected IS DISTINCT FROM got), 0,
          'each decline reason is the one the SQL expression gives');
SELECT results_eq($$SELECT target, n, mcc, country, channel, expected, got FROM tap_verdict
                     WHERE expected IS DISTINCT FROM got ORDER BY 1, 2, 3, 4, 5 LIMIT 5$$,
                  $$SELECT NULL::text, NULL::int, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text WHERE false$$,
                  'no mismatch (the first five, if any)');
SELECT set_eq($$SELECT DISTINCT target || ' ' || coalesce(got, 'approved') FROM tap_verdict$$,
              ARRAY['account approved', 'account channel_blocked', 'account country_blocked',
                    'account category_blocked', 'card approved', 'card channel_blocked',
                    'card country_blocked', 'card category_blocked'],
              'the grid reaches every outcome of the controls, on either');
SELECT ok((SELECT bool_and(got = 'country_blocked') FROM tap_verdict
            WHERE n = 6 AND country <> 'SE' AND channel <> 'atm'),
          'an allow-list with a NULL element admits only what it names');
SELECT ok((SELECT bool_and(got IS NOT NULL) FROM tap_verdict WHERE n = 8),
          'a block-list with a NULL element lets nothing through');

SELECT * FROM finish();
ROLLBACK;
