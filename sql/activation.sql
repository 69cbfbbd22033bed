-- The hosted activation flow: links, tokens, PINs, return URLs.
\set VERBOSITY sqlstate
SELECT programme_id AS prog, individual_id AS holder, account_id AS acct
  FROM test_account('Activation programme') \gset
SELECT id AS c FROM card.card_order(:'holder', :'acct', 'Physical', type => 'physical') \gset

-- The redirect link: base URL, page, one-time token as the last parameter.
SELECT redirect_url ~ '^https://cards\.example\.com/activate\?token=act_[A-Za-z0-9_-]{43}$' AS link_ok,
       expires_at - now() = interval '30 minutes' AS lifetime_ok
  FROM card.card_activation_start(:'c', 'https://app.example.com/cards/done?x=1');
-- The token is stored only as a keyed hash.
SELECT count(*) AS links, bool_and(length(token_hash) = 32) AS hashed
  FROM card.hosted_link WHERE card_id = :'c';

-- A newer link replaces the older one.
SELECT substring(redirect_url FROM 'token=(.*)$') AS old_token
  FROM card.card_activation_start(:'c', 'https://app.example.com/done') \gset
SELECT substring(redirect_url FROM 'token=(.*)$') AS token
  FROM card.card_activation_start(:'c', 'https://app.example.com/done') \gset
SELECT outcome, count(*) FROM card.hosted_link WHERE card_id = :'c' GROUP BY 1 ORDER BY 1;
SELECT card.card_activation_complete(:'old_token', '1234');

-- Bad PINs are refused and do not burn the token.
SELECT card.card_activation_complete(:'token', '123');
SELECT card.card_activation_complete(:'token', '1234567');
SELECT card.card_activation_complete(:'token', '12a4');
SELECT card.card_activation_complete(:'token', ' 1234');
SELECT card.card_activation_complete(:'token', NULL);
SELECT status FROM card.cards WHERE id = :'c';

-- A malformed or unknown token.
SELECT card.card_activation_complete('not-a-token', '1234');
SELECT card.card_activation_complete('act_' || repeat('A', 43), '1234');
-- A token is its prefix and exactly 43 characters: the real token with one
-- character more or less is malformed (22023), not looked up.
SELECT card.card_activation_complete(:'token' || 'A', '1234');
SELECT card.card_activation_complete(left(:'token', -1), '1234');

-- The right PIN activates the card; the PIN is kept as a keyed hash only.
SELECT card_id = :'c' AS same_card, status, return_url
  FROM card.card_activation_complete(:'token', '123456');
SELECT status, length(pin_hash) AS pin_hash_len FROM card.card WHERE id = :'c';
SELECT from_status, to_status, reason, channel
  FROM card.card_status_change WHERE card_id = :'c' ORDER BY id;

-- A token works once.
SELECT card.card_activation_complete(:'token', '123456');
-- An active card has nothing to activate.
SELECT card.card_activation_start(:'c', 'https://app.example.com/done');

-- An expired token.
SELECT id AS c2 FROM card.card_order(:'holder', :'acct', 'Physical 2', type => 'physical') \gset
SELECT substring(redirect_url FROM 'token=(.*)$') AS token2
  FROM card.card_activation_start(:'c2', 'https://app.example.com/done') \gset
UPDATE card.hosted_link SET expires_at = now() - interval '1 second' WHERE card_id = :'c2';
SELECT card.card_activation_complete(:'token2', '1234');
SELECT status FROM card.cards WHERE id = :'c2';

-- The programme sets the link lifetime.
SELECT card.programme_create('Short links', '45671299', activation_ttl => '5 minutes') AS short \gset
SELECT card.individual_create(:'short', 'Quick') AS quick \gset
SELECT card.account_open(:'short', :'quick') AS quick_acct \gset
SELECT id AS c3 FROM card.card_order(:'quick', :'quick_acct', 'Quick card', type => 'physical') \gset
SELECT expires_at - now() AS lifetime FROM card.card_activation_start(:'c3', 'https://app.example.com/done');

-- A blocked card cannot be activated, even with a live token.
SELECT substring(redirect_url FROM 'token=(.*)$') AS token3
  FROM card.card_activation_start(:'c3', 'https://app.example.com/done') \gset
SELECT status FROM card.card_set_status(:'c3', 'blocked');
SELECT card.card_activation_complete(:'token3', '1234');
SELECT card.card_activation_start(:'c3', 'https://app.example.com/done');

-- Virtual cards can use the flow as well.
SELECT id AS v FROM card.card_order(:'holder', :'acct', 'Virtual') \gset
SELECT substring(redirect_url FROM 'token=(.*)$') AS vt
  FROM card.card_activation_start(:'v', 'https://app.example.com/done') \gset
SELECT status FROM card.card_activation_complete(:'vt', '9999');

-- return_url must be an absolute https URL.
SELECT id AS c4 FROM card.card_order(:'holder', :'acct', 'URL checks', type => 'physical') \gset
SELECT u AS return_url, (SELECT count(*) FROM card.card_activation_start(:'c4', u)) AS accepted
  FROM unnest(ARRAY['https://app.example.com', 'https://app.example.com:8443/x?y=1#z',
                    'HTTPS://APP.EXAMPLE.COM/']) u;
\set VERBOSITY default
SELECT card.card_activation_start(:'c4', 'http://app.example.com/done');
SELECT card.card_activation_start(:'c4', 'https:///done');
SELECT card.card_activation_start(:'c4', 'https://app example.com/');
SELECT card.card_activation_start(:'c4', 'https://app.example.com/a b');
SELECT card.card_activation_start(:'c4', 'https://app.example.com:99999/');
SELECT card.card_activation_start(:'c4', 'javascript:alert(1)');
SELECT card.card_activation_start(:'c4', '/relative/path');
SELECT card.card_activation_start(:'c4', NULL);
SELECT card.card_activation_complete(:'token', '12');
\set VERBOSITY sqlstate

-- JSON PATCH with return_url starts activation.
SELECT array(SELECT jsonb_object_keys(r) ORDER BY 1) AS keys,
       r ->> 'redirect_url' ~ '^https://cards\.example\.com/activate\?token=act_' AS link_ok
  FROM card.card_update(:'c4', '{"return_url": "https://app.example.com/done"}') r;
SELECT card.card_update(:'c4', '{"return_url": "https://app.example.com/done", "status": "frozen"}');
SELECT card.card_update(:'c4', '{"return_url": "ftp://app.example.com/"}');
