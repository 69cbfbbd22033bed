-- Idempotent ordering: one card per idempotency key and programme.
\set VERBOSITY sqlstate
SELECT programme_id AS prog, individual_id AS holder, account_id AS acct
  FROM test_account('Idempotency programme') \gset

SELECT id AS first FROM card.card_order(:'holder', :'acct', 'Key card', idempotency_key => 'order-1') \gset
-- The same request again returns the first card and orders nothing.
SELECT id = :'first' AS same_card
  FROM card.card_order(:'holder', :'acct', 'Key card', idempotency_key => 'order-1');
SELECT (card.card_order(jsonb_build_object('individual_id', :'holder', 'account_id', :'acct',
        'display_name', 'Key card', 'idempotency_key', 'order-1')) ->> 'id') = :'first' AS same_card_json;
SELECT count(*) AS cards FROM card.card WHERE account_id = :'acct';
SELECT count(*) AS audit_rows FROM card.card_status_change s JOIN card.card c ON c.id = s.card_id
 WHERE c.account_id = :'acct';

-- The first card is returned as it is now.
SELECT status FROM card.card_set_status(:'first', 'blocked');
SELECT id = :'first' AS same_card, status
  FROM card.card_order(:'holder', :'acct', 'Key card', idempotency_key => 'order-1');

-- The same key with other parameters is refused: 23505.
SELECT card.card_order(:'holder', :'acct', 'Other name', idempotency_key => 'order-1');
SELECT card.card_order(:'holder', :'acct', 'Key card', type => 'physical', idempotency_key => 'order-1');
SELECT card.card_order(:'holder', :'acct', 'Key card', '12', '2030', idempotency_key => 'order-1');
SELECT e.state, e.message, e.hint
  FROM test_error(format('SELECT card.card_order(%L, %L, %L, idempotency_key => %L)',
                         :'holder', :'acct', 'Other name', 'order-1')) e;
SELECT count(*) AS cards FROM card.card WHERE account_id = :'acct';

-- Explicit expiry is part of the request: the same explicit values match.
SELECT id AS dated FROM card.card_order(:'holder', :'acct', 'Dated', '06', '2031', idempotency_key => 'order-2') \gset
SELECT id = :'dated' AS same_card
  FROM card.card_order(:'holder', :'acct', 'Dated', '6', '2031', idempotency_key => 'order-2');
-- Omitted expiry differs from explicit expiry.
SELECT card.card_order(:'holder', :'acct', 'Dated', idempotency_key => 'order-2');

-- Without a key, every call orders a new card.
SELECT count(DISTINCT id) AS distinct_cards
  FROM (SELECT (card.card_order(:'holder', :'acct', 'No key')).id FROM generate_series(1, 3)) s;

-- Keys are scoped to the programme.
SELECT programme_id AS prog2, individual_id AS holder2, account_id AS acct2
  FROM test_account('Idempotency programme 2', '45671235') \gset
SELECT id <> :'first' AS other_card
  FROM card.card_order(:'holder2', :'acct2', 'Key card', idempotency_key => 'order-1');

-- Invalid keys.
SELECT card.card_order(:'holder', :'acct', 'Bad key', idempotency_key => '');
SELECT card.card_order(:'holder', :'acct', 'Bad key', idempotency_key => repeat('k', 201));
SELECT card.card_order(:'holder', :'acct', 'Bad key', idempotency_key => E'a\nb');
