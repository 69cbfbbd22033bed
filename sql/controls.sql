-- Spend controls: the section 8 JSON shape, validated whole, read back as set.
\set VERBOSITY default
SELECT programme_id AS prog, individual_id AS holder, account_id AS acct
  FROM test_account('Controls programme') \gset
SELECT test_card_in(:'acct', :'holder', 'active') AS c \gset

-- A full document is stored and read back exactly.
SELECT card.card_set_controls(:'c', '{
  "spending_limits": [{"amount": 50000, "interval": "daily", "categories": ["5812", "5813-5814"]},
                      {"amount": 20000, "interval": "per_authorization"}],
  "allowed_categories": ["5411", "5812-5814"],
  "blocked_countries": ["RU", "KP"],
  "channels": {"ecommerce": true, "atm": false, "contactless": true, "chip": true, "magstripe": false}
}') = card.card_controls(:'c') AS read_back_equal;
SELECT jsonb_pretty(card.card_controls(:'c'));
SELECT period, amount, categories, category_list FROM card.spend_limit WHERE card_id = :'c' ORDER BY position;
SELECT mcc_allowed, mcc_blocked, countries_allowed, countries_blocked, channels_blocked
  FROM card.card WHERE id = :'c';

-- Account controls, likewise.
SELECT card.account_set_controls(:'acct', '{"allowed_countries": ["SE", "NO"],
       "spending_limits": [{"amount": 100000, "interval": "monthly"}]}');
SELECT card.account_controls(:'acct');

-- Replacing controls replaces them whole; {} clears.
SELECT card.card_set_controls(:'c', '{"channels": {"atm": false}}');
SELECT count(*) AS limits FROM card.spend_limit WHERE card_id = :'c';
SELECT card.card_set_controls(:'c', '{}');
SELECT controls, mcc_allowed, channels_blocked FROM card.card WHERE id = :'c';

-- Invalid controls are refused whole (22023), naming the field; nothing changes.
SELECT card.card_set_controls(:'c', '{"channels": {"atm": false}}') IS NOT NULL AS set;
SELECT doc, e.state, e.message
  FROM unnest(ARRAY[
    '[]',
    '{"limits": []}',
    '{"spending_limits": {}}',
    '{"spending_limits": [5]}',
    '{"spending_limits": [{"amount": 0, "interval": "daily"}]}',
    '{"spending_limits": [{"amount": -5, "interval": "daily"}]}',
    '{"spending_limits": [{"amount": 10.5, "interval": "daily"}]}',
    '{"spending_limits": [{"amount": "100", "interval": "daily"}]}',
    '{"spending_limits": [{"amount": 100}]}',
    '{"spending_limits": [{"amount": 100, "interval": "hourly"}]}',
    '{"spending_limits": [{"amount": 100, "interval": "daily", "currency": "EUR"}]}',
    '{"spending_limits": [{"amount": 100, "interval": "daily"}, {"amount": 5, "interval": "daily", "categories": ["58"]}]}',
    '{"spending_limits": [{"amount": 100, "interval": "daily", "categories": []}]}',
    '{"allowed_categories": ["5814-5812"]}',
    '{"allowed_categories": [5812]}',
    '{"allowed_categories": ["5812"], "blocked_categories": ["5411"]}',
    '{"allowed_countries": ["SE"], "blocked_countries": ["RU"]}',
    '{"blocked_countries": ["se"]}',
    '{"blocked_countries": ["SWE"]}',
    '{"blocked_countries": []}',
    '{"channels": {"atm": "no"}}',
    '{"channels": {"telepathy": false}}',
    '{"channels": [false]}'
  ]::jsonb[]) WITH ORDINALITY AS d(doc, n),
  LATERAL test_error(format('SELECT card.card_set_controls(%L, %L)', :'c', doc)) e
 ORDER BY n;
\set VERBOSITY sqlstate
SELECT card.card_set_controls(:'c', NULL);
SELECT card.card_set_controls(NULL, '{}');
SELECT card.card_set_controls(gen_random_uuid(), '{}');
SELECT card.account_set_controls(gen_random_uuid(), '{}');
SELECT card.card_controls(gen_random_uuid());
\set VERBOSITY default
SELECT card.card_controls(:'c') AS unchanged, count(*) AS limits
  FROM card.spend_limit WHERE card_id = :'c';
