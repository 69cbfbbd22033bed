-- Expiry: a card is expired once its expiry month has ended (UTC), even
-- before the sweep; card_expire_due records it with audit rows.
\set VERBOSITY sqlstate
SELECT programme_id AS prog, individual_id AS holder, account_id AS acct
  FROM test_account('Expiry programme') \gset

SELECT test_card_in(:'acct', :'holder', 'active') AS a \gset
SELECT test_card_in(:'acct', :'holder', 'frozen') AS f \gset
SELECT test_card_in(:'acct', :'holder', 'not_activated') AS n \gset
SELECT test_card_in(:'acct', :'holder', 'blocked') AS b \gset

-- Move the live cards' expiry into the past (allowed while a card is live);
-- a blocked card's expiry is final.
UPDATE card.card SET exp_month = '01', exp_year = '2020' WHERE id IN (:'a', :'f', :'n');
UPDATE card.card SET exp_month = '01', exp_year = '2020' WHERE id = :'b';
SELECT expires_on FROM card.card WHERE id = :'a';

-- Expired for every purpose: the view says so, and no move but to expired.
SELECT c.id = :'a' AS a, c.status AS effective, k.status AS stored
  FROM card.cards c JOIN card.card k USING (id) WHERE id IN (:'a', :'f', :'n', :'b') ORDER BY k.status;
SELECT card.card_set_status(:'a', 'frozen');
SELECT card.card_set_status(:'a', 'active');
SELECT card.card_set_status(:'f', 'active');
SELECT card.card_set_status(:'n', 'active');
SELECT card.card_set_status(:'a', 'blocked');
UPDATE card.card SET status = 'frozen' WHERE id = :'a';
SELECT card.card_activation_start(:'n', 'https://app.example.com/done');

-- Recording the expiry directly is allowed and audited.
SELECT status FROM card.card_set_status(:'f', 'expired', 'early sweep', 'operator');

-- The sweep records the rest, once.
SELECT card.card_expire_due() AS expired_now;
SELECT card.card_expire_due() AS expired_again;
SELECT id = :'a' AS is_a, status FROM card.card WHERE id IN (:'a', :'f', :'n', :'b') ORDER BY status, id = :'a';
SELECT c.id = :'a' AS is_a, from_status, to_status, reason, channel
  FROM card.card_status_change s JOIN card.card c ON c.id = s.card_id
 WHERE c.id IN (:'a', :'f', :'n') AND to_status = 'expired' ORDER BY from_status;

-- as_of: the month boundary.  A card valid through last month (UTC) is
-- swept from the first day of this month, not on the last day of last month.
SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 day')::date AS last_day,
       date_trunc('month', now() AT TIME ZONE 'UTC')::date AS first_day \gset
SELECT id AS j FROM card.card_order(:'holder', :'acct', 'Last month') \gset
UPDATE card.card SET exp_month = to_char(:'last_day'::date, 'MM'), exp_year = to_char(:'last_day'::date, 'YYYY')
 WHERE id = :'j';
SELECT expires_on = :'first_day' AS expires_on_first_day FROM card.card WHERE id = :'j';
SELECT FROM card.card_expire_due(:'last_day');
SELECT status FROM card.card WHERE id = :'j';
SELECT FROM card.card_expire_due(:'first_day');
SELECT status FROM card.card WHERE id = :'j';

-- A sweep may not run ahead of the calendar: expired is final.
SELECT card.card_expire_due(((now() AT TIME ZONE 'UTC') + interval '1 day')::date);
SELECT card.card_expire_due(NULL);
