-- Reveal of card details through the hosted page: a one-time, short-lived
-- link for the API; PAN, expiry and CVV once for the page; audited without
-- the details; refused for ended cards.
\set VERBOSITY sqlstate
SELECT programme_id AS prog, individual_id AS holder, account_id AS acct
  FROM test_account('Reveal programme') \gset
SELECT test_card_in(:'acct', :'holder', 'active') AS c \gset

-- The link: the hosted pages' reveal page, a token of its own kind, five minutes.
SELECT redirect_url ~ '^https://cards\.example\.com/reveal\?token=rvl_[A-Za-z0-9_-]{43}$' AS link_ok,
       expires_at - now() = interval '5 minutes' AS lifetime_ok
  FROM card.card_reveal_start(:'c', 'https://app.example.com/cards/shown');
SELECT substring(redirect_url FROM 'token=(.*)$') AS tok
  FROM card.card_reveal_start(:'c', 'https://app.example.com/cards/shown') \gset
-- The newer link superseded the first; tokens are kept as keyed hashes.
SELECT purpose, outcome, count(*), bool_and(length(token_hash) = 32) AS hashed
  FROM card.hosted_link WHERE card_id = :'c' GROUP BY 1, 2 ORDER BY 1, 2;

-- The details, once: a PAN that matches what the card stores, its expiry,
-- a three-digit CVV.
SELECT * INTO TEMP revealed FROM card.card_reveal(:'tok');
SELECT length(r.pan) = 16 AS pan_length_ok,
       left(r.pan, 8) = '45671234' AS bin_ok,
       right(r.pan, 4) = k.last4 AS last4_ok,
       (r.exp_month, r.exp_year) = (k.exp_month, k.exp_year) AS expiry_ok,
       r.cvv ~ '^[0-9]{3}$' AS cvv_ok
  FROM revealed r, card.card k WHERE k.id = :'c';
-- A second use, a superseded token, a token of another kind, rubbish.
SELECT * FROM card.card_reveal(:'tok');
SELECT card.card_reveal(NULL);
SELECT card.card_reveal('rvl_' || repeat('A', 43));
SELECT card.card_reveal('act_' || repeat('A', 43));
SELECT card.card_reveal('not a token');

-- The CVV is derived, not stored: the same card reveals the same CVV again.
SELECT substring(redirect_url FROM 'token=(.*)$') AS tok2
  FROM card.card_reveal_start(:'c', 'https://app.example.com/cards/shown') \gset
SELECT r2.pan = r.pan AS same_pan, r2.cvv = r.cvv AS same_cvv
  FROM card.card_reveal(:'tok2') r2, revealed r;
SELECT count(*) AS cvv_columns FROM information_schema.columns
 WHERE table_schema = 'card' AND column_name ~ 'cvv';

-- Each reveal is one card.revealed event, without any detail.
SELECT type, data FROM card.event WHERE card_id = :'c' AND type = 'card.revealed';
SELECT count(*) AS events_holding_details FROM card.event e, revealed r
 WHERE e.data::text LIKE '%' || r.pan || '%' OR e.data::text LIKE '%' || right(r.pan, 8) || '%';

-- An expired link is refused.
SELECT substring(redirect_url FROM 'token=(.*)$') AS tok3
  FROM card.card_reveal_start(:'c', 'https://app.example.com/cards/shown') \gset
UPDATE card.hosted_link SET expires_at = now() - interval '1 second'
 WHERE card_id = :'c' AND purpose = 'reveal' AND consumed_at IS NULL;
SELECT card.card_reveal(:'tok3');

-- Frozen and not yet activated cards reveal; ended cards do not, neither
-- at start nor with a link issued before the card ended.
SELECT status FROM card.card_set_status(:'c', 'frozen');
SELECT substring(redirect_url FROM 'token=(.*)$') AS tok4
  FROM card.card_reveal_start(:'c', 'https://app.example.com/cards/shown') \gset
SELECT cvv ~ '^[0-9]{3}$' AS frozen_reveals FROM card.card_reveal(:'tok4');
SELECT test_card_in(:'acct', :'holder', 'not_activated') AS n \gset
SELECT substring(redirect_url FROM 'token=(.*)$') AS tok5
  FROM card.card_reveal_start(:'n', 'https://app.example.com/cards/shown') \gset
SELECT cvv ~ '^[0-9]{3}$' AS not_activated_reveals FROM card.card_reveal(:'tok5');
SELECT substring(redirect_url FROM 'token=(.*)$') AS tok5
  FROM card.card_reveal_start(:'n', 'https://app.example.com/cards/shown') \gset
SELECT status FROM card.card_set_status(:'n', 'blocked', 'fraud');
SELECT card.card_reveal(:'tok5');
SELECT card.card_reveal_start(:'n', 'https://app.example.com/cards/shown');
UPDATE card.card SET exp_month = '01', exp_year = '2020' WHERE id = :'c';
SELECT card.card_reveal_start(:'c', 'https://app.example.com/cards/shown');

-- Bad calls.
SELECT card.card_reveal_start(NULL, 'https://app.example.com/x');
SELECT card.card_reveal_start(:'c', 'http://app.example.com/x');
SELECT card.card_reveal_start('00000000-0000-0000-0000-000000000000', 'https://app.example.com/x');
