-- The JSON forms the HTTP API calls (DESIGN sections 4 and 13): each takes
-- the request body as it arrives and answers the response body; unknown
-- fields, wrong JSON types and other programmes' objects are refused with
-- the SQLSTATEs of DESIGN section 7, and change nothing.
\set VERBOSITY sqlstate
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_json_a, regress_json_b, regress_json_processor;
RESET client_min_messages;
CREATE ROLE regress_json_a IN ROLE card_admin, card_api, card_reader;
CREATE ROLE regress_json_b IN ROLE card_admin, card_api, card_reader;
CREATE ROLE regress_json_processor IN ROLE card_processor;
SELECT card.programme_create('JSON A', '45671239') AS prog_a \gset
SELECT card.programme_create('JSON B', '41111119') AS prog_b \gset
SELECT card.programme_grant(:'prog_a', 'regress_json_a') AS a,
       card.programme_grant(:'prog_b', 'regress_json_b') AS b,
       card.programme_grant(:'prog_a', 'regress_json_processor') AS p;

-- Individuals and accounts.
SET ROLE regress_json_a;
SELECT card.individual_create(jsonb_build_object('programme_id', :'prog_a', 'name', 'Jay Son')) ->> 'id' AS holder \gset
SELECT card.account_open(jsonb_build_object('programme_id', :'prog_a', 'individual_id', :'holder',
                                            'currency', 'SEK')) AS opened \gset
SELECT :'opened'::jsonb ->> 'id' AS acct \gset
SELECT key, CASE WHEN key IN ('id', 'individual_id', 'programme_id', 'created_at') THEN '(set)'
                 ELSE value::text END AS value
  FROM jsonb_each(:'opened'::jsonb) ORDER BY key;
-- currency defaults to EUR
SELECT card.account_open(jsonb_build_object('programme_id', :'prog_a', 'individual_id', :'holder')) ->> 'currency' AS currency;
SELECT card.individual_create('{"programme_id": "x", "name": "n"}');           -- 22023
SELECT card.individual_create('{"name": "n", "nickname": "m"}');               -- 22023
SELECT card.individual_create('[]');                                            -- 22023
SELECT card.account_open(jsonb_build_object('programme_id', :'prog_a', 'individual_id', :'holder',
                                            'currency', 12));                   -- 22023

-- Credits: amounts are whole JSON numbers; a repeated reference credits once.
SELECT card.account_credit(:'acct', '{"amount": 5000, "reference": "json-1"}');
SELECT card.account_credit(:'acct', '{"amount": 5000, "reference": "json-1"}');
SELECT card.account_credit(:'acct', '{"amount": "5000", "reference": "json-2"}');   -- 22023
SELECT card.account_credit(:'acct', '{"amount": 50.5, "reference": "json-2"}');     -- 22023
SELECT card.account_credit(:'acct', '{"amount": 1e30, "reference": "json-2"}');     -- 22023
SELECT card.account_credit(:'acct', '{"amount": 5, "reference": "json-2", "memo": 1}'); -- 22023
SELECT card.account_credit(:'acct', '{"reference": "json-2"}');                     -- 23502
SELECT card.account_credit(:'acct', '{"amount": -5, "reference": "json-2"}');       -- 22023
SELECT (card.account_get(:'acct') - 'id' - 'individual_id' - 'programme_id' - 'created_at') AS account;

-- Cards: get, replace, reveal.  A literal body needs ::jsonb where the
-- typed form takes text in that place (a bare literal would be its text).
SELECT card.card_order(jsonb_build_object('individual_id', :'holder', 'account_id', :'acct',
                                          'display_name', 'JSON card')) ->> 'id' AS card \gset
SELECT card.card_get(:'card') - 'id' - 'account_id' - 'individual_id' - 'last4' - 'exp_month' - 'exp_year' AS card;
SELECT (card.card_get(:'card')) = to_jsonb(c) AS same_as_view FROM card.cards c WHERE c.id = :'card';
SELECT card.card_get(gen_random_uuid());                                        -- P0002
SELECT card.card_reveal_start(:'card', '{"return_url": "https://app.example.com/seen"}'::jsonb) ?& ARRAY['redirect_url', 'expires_at'] AS reveal_link;
SELECT card.card_reveal_start(:'card', '{"return_url": 7}'::jsonb);                    -- 22023
SELECT card.card_reveal_start(:'card', '{"url": "https://app.example.com/"}'::jsonb);  -- 22023
SELECT card.card_replace(:'card', '{"reason": "damaged", "colour": "red"}'::jsonb);    -- 22023
SELECT card.card_replace(:'card', '{}'::jsonb);                                        -- 23502
SELECT card.card_replace(:'card', '{"reason": "damaged"}'::jsonb) ->> 'status' AS replacement_status;
SELECT count(*) AS cards_on_account FROM card.cards WHERE account_id = :'acct';

-- Another programme's objects do not exist for B; B's calls change nothing.
SET ROLE regress_json_b;
SELECT card.card_get(:'card');                                                  -- P0002
SELECT card.account_get(:'acct');                                               -- P0002
SELECT card.account_credit(:'acct', '{"amount": 1, "reference": "json-b"}');    -- P0002
SELECT card.card_replace(:'card', '{"reason": "lost"}'::jsonb);                        -- P0002
SELECT card.card_reveal_start(:'card', '{"return_url": "https://b.example.com/"}'::jsonb); -- P0002
SELECT card.individual_create(jsonb_build_object('programme_id', :'prog_a', 'name', 'Intruder')); -- P0002
RESET ROLE;
SELECT balance, held FROM card.account WHERE id = :'acct';

-- Authorisations, as a processor: approve and capture part (the rest is
-- released); approve another and reverse it in two steps.
SELECT token AS card_token FROM card.card WHERE id = :'card' \gset
SELECT substring(redirect_url FROM 'token=(.*)$') AS activation
  FROM card.card_activation_start(:'card', 'https://app.example.com/back') \gset
SELECT status FROM card.card_activation_complete(:'activation', '2468');
SET ROLE regress_json_processor;
SELECT card.card_authorize(jsonb_build_object('card_token', :'card_token', 'amount', 1200,
    'currency', 'SEK', 'mcc', '5411', 'merchant_country', 'SE', 'channel', 'chip',
    'external_id', 'json-auth-1', 'merchant_name', 'Corner shop')) AS approval \gset
SELECT :'approval'::jsonb - 'authorization_id' AS approval;
SELECT :'approval'::jsonb ->> 'authorization_id' AS auth \gset
-- the same external_id answers the first decision again
SELECT card.card_authorize(jsonb_build_object('card_token', :'card_token', 'amount', 1200,
    'currency', 'SEK', 'mcc', '5411', 'merchant_country', 'SE', 'channel', 'chip',
    'external_id', 'json-auth-1')) = :'approval'::jsonb AS same_answer;
SELECT card.card_authorize(jsonb_build_object('card_token', :'card_token', 'amount', 1200,
    'currency', 'SEK', 'mcc', '5411', 'merchant_country', 'SE', 'channel', 'chip',
    'external_id', 'json-auth-2', 'tip', 5));                                  -- 22023
SELECT card.card_authorize(jsonb_build_object('card_token', :'card_token', 'amount', 12.5,
    'currency', 'SEK', 'mcc', '5411', 'merchant_country', 'SE', 'channel', 'chip',
    'external_id', 'json-auth-2'));                                             -- 22023
SELECT card.authorization_capture_request(:'auth', '{"amount": 200}');
SELECT card.authorization_capture_request(:'auth', '{"amount": "all"}');        -- 22023
SELECT card.authorization_reverse_request(:'auth', '{}');                       -- 55000: captured
SELECT card.card_authorize(jsonb_build_object('card_token', :'card_token', 'amount', 300,
    'currency', 'SEK', 'mcc', '5411', 'merchant_country', 'SE', 'channel', 'chip',
    'external_id', 'json-auth-3')) ->> 'authorization_id' AS auth3 \gset
SELECT card.authorization_reverse_request(:'auth3', '{"amount": 1, "why": 2}'); -- 22023
SELECT card.authorization_reverse_request(:'auth3', '{"amount": 100}');
SELECT card.authorization_reverse_request(:'auth3', '{}');
RESET ROLE;
SELECT balance, held FROM card.account WHERE id = :'acct';

-- Who may call which: the grants follow the typed functions'.
SELECT p.proname, string_agg(DISTINCT r.rolname, ', ' ORDER BY r.rolname) AS granted_to
  FROM pg_proc p
  JOIN LATERAL aclexplode(p.proacl) a ON a.privilege_type = 'EXECUTE'
  JOIN pg_roles r ON r.oid = a.grantee
 WHERE p.pronamespace = 'card'::regnamespace
   AND p.proname IN ('card_get', 'account_get', 'individual_create', 'account_open',
                     'account_credit', 'card_replace', 'card_reveal_start', 'card_authorize',
                     'authorization_capture_request', 'authorization_reverse_request')
   AND pg_get_function_identity_arguments(p.oid) ~ 'jsonb|^card_id uuid$|^account_id uuid$'
   AND r.rolname LIKE 'card\_%'
 GROUP BY p.proname ORDER BY p.proname;

DROP ROLE regress_json_a, regress_json_b, regress_json_processor;
