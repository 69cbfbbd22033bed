-- Every refusal has a stable SQLSTATE (DESIGN.md section 7) and changes nothing.
\set VERBOSITY default
SELECT programme_id AS prog, individual_id AS holder, account_id AS acct
  FROM test_account('Errors programme') \gset
SELECT count(*) AS cards_before FROM card.card \gset

-- The seed example of the API: exp_year 2024 is in the past (22023).
SELECT card.card_order(jsonb_build_object('individual_id', :'holder', 'account_id', :'acct',
       'display_name', 'Jane Doe', 'exp_month', '12', 'exp_year', '2024', 'type', 'virtual'));

\set VERBOSITY sqlstate
-- 22023: invalid field values.
SELECT card.card_order(:'holder', :'acct', 'X', '13', '2030');
SELECT card.card_order(:'holder', :'acct', 'X', '00', '2030');
SELECT card.card_order(:'holder', :'acct', 'X', 'ab', '2030');
SELECT card.card_order(:'holder', :'acct', 'X', '12', '30');
SELECT card.card_order(:'holder', :'acct', 'X', '12', '2099');
SELECT card.card_order(:'holder', :'acct', '');
SELECT card.card_order(:'holder', :'acct', '   ');
SELECT card.card_order(:'holder', :'acct', repeat('x', 101));
SELECT card.card_order(:'holder', :'acct', E'tab\there');
SELECT card.card_order('{"individual_id": "nope"}');
SELECT card.card_order(jsonb_build_object('individual_id', :'holder', 'account_id', :'acct',
       'display_name', 'X', 'type', 'plastic'));
SELECT card.card_order(jsonb_build_object('individual_id', :'holder', 'account_id', :'acct',
       'display_name', 'X', 'colour', 'red'));
SELECT card.card_order(jsonb_build_object('individual_id', :'holder', 'account_id', :'acct',
       'display_name', 42));
SELECT card.card_order('[]'::jsonb);
SELECT card.programme_create('Bad bin', '1234');
SELECT card.programme_create('Bad brand', '45671234', 'amex');
SELECT card.programme_create('Wrong range', '45671234', 'mastercard');
SELECT card.programme_create('Bad length', '45671234', pan_length => 12);
SELECT card.programme_create('Bad region', '45671234', region => 'Europe!');
SELECT card.programme_create('Bad validity', '45671234', validity_years => 0);
SELECT card.account_open(:'prog', :'holder', 'euro');
SELECT card.individual_create(:'prog', '');
SELECT card.card_set_status(card_id => (SELECT id FROM card.card LIMIT 1), status => 'frozen', channel => 'email');
SELECT card.card_update((SELECT id FROM card.card LIMIT 1), '{"status": "deleted"}');
SELECT card.card_update((SELECT id FROM card.card LIMIT 1), '"frozen"');

-- 23502: missing fields.
SELECT card.card_order(NULL, :'acct', 'X');
SELECT card.card_order(:'holder', NULL, 'X');
SELECT card.card_order(:'holder', :'acct', NULL);
SELECT card.card_order(:'holder', :'acct', 'X', '12', NULL);
SELECT card.card_order(:'holder', :'acct', 'X', NULL, '2030');
SELECT card.card_order(:'holder', :'acct', 'X', type => NULL);
SELECT card.card_order(jsonb_build_object('account_id', :'acct', 'display_name', 'X'));
SELECT card.card_set_status(NULL, 'active');
SELECT card.card_set_status((SELECT id FROM card.card LIMIT 1), NULL);
SELECT card.card_set_status((SELECT id FROM card.card LIMIT 1), 'frozen', channel => NULL);
SELECT card.card_update((SELECT id FROM card.card LIMIT 1), '{}');
SELECT card.card_activation_complete(NULL, '1234');
SELECT card.programme_create(NULL, '45671234');

-- P0002: unknown objects.
SELECT card.card_order(gen_random_uuid(), :'acct', 'X');
SELECT card.card_order(:'holder', gen_random_uuid(), 'X');
SELECT card.card_set_status(gen_random_uuid(), 'frozen');
SELECT card.card_update(gen_random_uuid(), '{"status": "frozen"}');
SELECT card.card_activation_start(gen_random_uuid(), 'https://app.example.com/');
SELECT card.card_token(gen_random_uuid());
SELECT card.pan_check(gen_random_uuid());
SELECT card.individual_create(gen_random_uuid(), 'Nobody');
SELECT card.account_open(gen_random_uuid(), :'holder');
SELECT card.account_open(:'prog', gen_random_uuid());

-- 23505: programme names are unique; idempotency keys (see idempotency).
SELECT card.programme_create('Errors programme', '45671234');

-- 55000: objects not in the required state.
SELECT test_card_in(:'acct', :'holder', 'blocked') AS blocked \gset
SELECT card.card_set_status(:'blocked', 'active');
UPDATE card.account SET status = 'frozen' WHERE id = :'acct';
SELECT card.card_order(:'holder', :'acct', 'Frozen account');
UPDATE card.account SET status = 'active' WHERE id = :'acct';

-- Messages name the card and hint at the way forward.
SELECT e.state, replace(e.message, :'blocked', '<card>') AS message, e.hint
  FROM test_error(format('SELECT card.card_set_status(%L, %L)', :'blocked', 'active')) e;
SELECT e.state, replace(e.message, :'acct', '<account>') AS message, e.hint
  FROM test_error(format('SELECT card.card_order(%L, %L, %L, %L, %L)', :'holder', :'acct', 'X', '12', '2024')) e;

-- Nothing above created a card beyond the one blocked on purpose.
\set VERBOSITY sqlstate
SELECT count(*) - :cards_before AS new_cards FROM card.card;
