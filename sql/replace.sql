-- Replacement and reissue: lost and stolen end the card and issue a new
-- PAN; damaged and expired keep the PAN, and the old card works until the
-- new one is activated.  Controls and spend windows carry across the chain;
-- a second request for the same reason returns the first replacement.
\set VERBOSITY sqlstate
SELECT programme_id AS prog, individual_id AS holder, account_id AS acct
  FROM test_account('Replacement programme') \gset
SELECT balance FROM card.account_credit(:'acct', 100000, 'replace-seed');

-- ---------------------------------------------------------------------------
-- damaged: same PAN, new expiry, both work until the new one is activated
-- ---------------------------------------------------------------------------
SELECT test_card_in(:'acct', :'holder', 'active') AS a \gset
SELECT card.card_set_controls(:'a', '{"spending_limits": [{"amount": 5000, "interval": "daily"}],
                                      "blocked_countries": ["KP"]}') IS NOT NULL AS controls_set;
SELECT card.card_token(:'a') AS a_tok \gset
SELECT approved FROM card.card_authorize(:'a_tok', 3000, 'EUR', '5411', 'SE', 'chip', 'rep-1');
UPDATE card.card SET exp_month = '01', exp_year = to_char(now() + interval '1 year', 'YYYY') WHERE id = :'a';

-- card_replace answers with the card as card.cards shows it (the JSON
-- response); the link to the old card is in card.card.
SELECT id AS b, status, (exp_month, exp_year) <> (SELECT exp_month, exp_year FROM card.card WHERE id = :'a') AS new_expiry
  FROM card.card_replace(:'a', 'damaged') \gset
SELECT replacement_for = :'a' AS links_old, replacement_reason FROM card.card WHERE id = :'b' \gset
SELECT :'status' AS status, :'links_old' AS links_old, :'replacement_reason' AS reason, :'new_expiry' AS new_expiry;
SELECT n.last4 = o.last4 AS same_last4, n.pan_fingerprint = o.pan_fingerprint AS same_fingerprint,
       n.pan_sequence AS new_sequence, o.pan_sequence AS old_sequence,
       n.pan_ciphertext <> o.pan_ciphertext AS sealed_apart, n.token <> o.token AS new_token,
       n.controls = o.controls AS same_controls, n.countries_blocked AS countries_blocked,
       n.pin_hash = o.pin_hash AS carries_pin, n.chain_id = :'a' AS chained
  FROM card.card n, card.card o WHERE n.id = :'b' AND o.id = :'a';
SELECT test_pan(:'a') = test_pan(:'b') AS same_pan;
-- The same request again returns the first replacement.
SELECT id = :'b' AS same_replacement FROM card.card_replace(:'a', 'damaged');
SELECT count(*) AS replacements FROM card.card WHERE replacement_for = :'a';
-- Another reissue of the same card is refused while this one stands.
SELECT card.card_replace(:'a', 'expired');

-- The old card still works; the new one is not active yet.
SELECT approved FROM card.card_authorize(:'a_tok', 1000, 'EUR', '5411', 'SE', 'chip', 'rep-2');
SELECT card.card_token(:'b') AS b_tok \gset
SELECT approved, decline_reason FROM card.card_authorize(:'b_tok', 100, 'EUR', '5411', 'SE', 'chip', 'rep-3');

-- Activation of the reissue checks the PIN it carries ('2468'): a wrong
-- one counts and leaves the link usable, the right one activates.
SELECT substring(redirect_url FROM 'token=(.*)$') AS act
  FROM card.card_activation_start(:'b', 'https://app.example.com/back') \gset
SELECT status, return_url, pin_tries_left FROM card.card_activation_complete(:'act', '1111');
SELECT status, return_url, pin_tries_left FROM card.card_activation_complete(:'act', '2468');
-- Activation closed the old card, after the new card's own audit row.
SELECT status FROM card.cards WHERE id = :'a';
SELECT c.card_id = :'b' AS new_card, c.to_status, replace(c.reason, :'b', '<b>') AS reason, c.channel
  FROM card.card_status_change c WHERE c.card_id IN (:'a', :'b') AND c.id > (
       SELECT max(id) FROM card.card_status_change WHERE card_id = :'b' AND to_status = 'not_activated')
 ORDER BY c.id;

-- The spend window counts across the chain: 4000 of 5000 spent on the old card.
SELECT approved, decline_reason FROM card.card_authorize(:'b_tok', 1500, 'EUR', '5411', 'SE', 'chip', 'rep-4');
SELECT approved FROM card.card_authorize(:'b_tok', 1000, 'EUR', '5411', 'SE', 'chip', 'rep-5');
SELECT scope, "interval", amount, spent, remaining FROM card.card_spend_status(:'b');
-- The blocked countries came along.
SELECT approved, decline_reason FROM card.card_authorize(:'b_tok', 10, 'EUR', '5411', 'KP', 'chip', 'rep-6');
-- Controls set on the new card are the chain's.
SELECT card.card_set_controls(:'b', '{"spending_limits": [{"amount": 7000, "interval": "daily"}]}') IS NOT NULL AS reset;
SELECT scope, amount, spent FROM card.card_spend_status(:'b');
SELECT count(*) AS limits_of_chain FROM card.spend_limit WHERE card_id = :'a';

-- ---------------------------------------------------------------------------
-- lost and stolen: the card ends now, the new card has a new PAN
-- ---------------------------------------------------------------------------
SELECT test_card_in(:'acct', :'holder', 'active') AS l \gset
SELECT id AS l2, status FROM card.card_replace(:'l', 'lost') \gset
SELECT :'status' AS new_status, (SELECT status FROM card.cards WHERE id = :'l') AS old_status;
SELECT n.pan_fingerprint <> o.pan_fingerprint AS new_fingerprint, n.pin_hash IS NULL AS no_pin_yet,
       n.pan_sequence, n.chain_id = :'l' AS chained
  FROM card.card n, card.card o WHERE n.id = :'l2' AND o.id = :'l';
SELECT test_pan(:'l2') <> (SELECT test_pan(:'b')) AS different_from_others;
SELECT id = :'l2' AS same_replacement FROM card.card_replace(:'l', 'lost');
SELECT card.card_replace(:'l', 'stolen');
SELECT card.card_replace(:'l', 'damaged');
-- Its audit trail and events.
SELECT to_status, replace(reason, :'l2', '<l2>') AS reason, channel
  FROM card.card_status_change WHERE card_id = :'l' ORDER BY id DESC LIMIT 1;
SELECT type, data ->> 'reason' AS reason, data ->> 'replacement_id' = :'l2' AS names_new
  FROM card.event WHERE card_id = :'l' AND type = 'card.replaced';
SELECT reason FROM card.card_status_change WHERE card_id = :'l2';
-- A card reported stolen first can still get its replacement.
SELECT test_card_in(:'acct', :'holder', 'active') AS s \gset
SELECT status FROM card.card_set_status(:'s', 'stolen', 'pickpocket', 'holder');
SELECT id AS s2, status FROM card.card_replace(:'s', 'stolen') \gset
SELECT :'status' AS status, replacement_reason FROM card.card WHERE id = :'s2';
-- A lost card during a reissue: the pending reissue shares the lost PAN and ends too.
SELECT test_card_in(:'acct', :'holder', 'active') AS d \gset
SELECT id AS d2 FROM card.card_replace(:'d', 'damaged') \gset
SELECT id AS d3 FROM card.card_replace(:'d', 'lost') \gset
SELECT id = :'d' AS old, id = :'d2' AS reissue, status FROM card.cards WHERE id IN (:'d', :'d2', :'d3') ORDER BY status;

-- ---------------------------------------------------------------------------
-- expired: a card past its date is reissued with its PAN
-- ---------------------------------------------------------------------------
SELECT test_card_in(:'acct', :'holder', 'active') AS e \gset
UPDATE card.card SET exp_month = '01', exp_year = '2020' WHERE id = :'e';
SELECT id AS e2, status FROM card.card_replace(:'e', 'expired') \gset
SELECT :'status' AS new_status, length(test_pan(:'e2')) = 16 AS reissue_reveals;
SELECT n.pan_fingerprint = o.pan_fingerprint AS same_pan FROM card.card n, card.card o WHERE n.id = :'e2' AND o.id = :'e';
SELECT card.card_replace(:'e', 'damaged');
SELECT status FROM card.card_set_status(:'e2', 'active');
SELECT status FROM card.cards WHERE id = :'e';

-- ---------------------------------------------------------------------------
-- Refusals
-- ---------------------------------------------------------------------------
SELECT card.card_replace(NULL, 'lost');
SELECT card.card_replace(:'a', NULL);
SELECT card.card_replace(:'a', 'misplaced');
SELECT card.card_replace('00000000-0000-0000-0000-000000000000', 'lost');
SELECT test_card_in(:'acct', :'holder', 'blocked') AS x \gset
SELECT card.card_replace(:'x', 'damaged');
SELECT card.card_replace(:'x', 'lost');
SELECT test_card_in(:'acct', :'holder', 'active') AS y \gset
UPDATE card.account SET status = 'frozen' WHERE id = :'acct';
SELECT card.card_replace(:'y', 'damaged');
UPDATE card.account SET status = 'active' WHERE id = :'acct';
-- Nothing was written by the refused calls.
SELECT count(*) AS replacements_of_refused FROM card.card WHERE replacement_for IN (:'x', :'y');

-- A reissue of a reissue: activating the newest ends every older card with
-- the PAN, not only the one it names.
SELECT test_card_in(:'acct', :'holder', 'active') AS r1 \gset
SELECT id AS r2 FROM card.card_replace(:'r1', 'damaged') \gset
SELECT id AS r3 FROM card.card_replace(:'r2', 'damaged') \gset
SELECT status FROM card.card_set_status(:'r3', 'active');
SELECT id = :'r1' AS first, id = :'r2' AS second, status FROM card.cards
 WHERE id IN (:'r1', :'r2', :'r3') ORDER BY status, id = :'r1' DESC;
-- A card reported lost through card_set_status: its pending reissue, which
-- carries the lost PAN, ends with it.
SELECT test_card_in(:'acct', :'holder', 'active') AS q1 \gset
SELECT id AS q2 FROM card.card_replace(:'q1', 'expired') \gset
SELECT status FROM card.card_set_status(:'q1', 'lost', 'left on a train', 'holder');
SELECT status, replace(replace(
         (SELECT reason FROM card.card_status_change s WHERE s.card_id = :'q2' ORDER BY id DESC LIMIT 1),
         :'q1', '<q1>'), :'q2', '<q2>') AS why
  FROM card.cards WHERE id = :'q2';
-- A direct UPDATE by the owner to stolen ends the pending reissue as well,
-- after the change's own audit row.  Since 1.12 the audit trigger does it
-- (one AFTER trigger, without a WHEN condition, which PostgreSQL would
-- compile at every statement that fires it).
SELECT test_card_in(:'acct', :'holder', 'active') AS s1 \gset
SELECT id AS s2 FROM card.card_replace(:'s1', 'damaged') \gset
UPDATE card.card SET status = 'stolen' WHERE id = :'s1';
SELECT s.card_id = :'s1' AS stolen_card, s.from_status, s.to_status, s.channel,
       replace(replace(s.reason, :'s1', '<s1>'), :'s2', '<s2>') AS reason
  FROM card.card_status_change s
 WHERE s.card_id IN (:'s1', :'s2') AND s.from_status IS NOT NULL ORDER BY s.id;
SELECT tgname, tgtype & 2 = 2 AS before_row, tgqual IS NOT NULL AS has_when FROM pg_trigger
 WHERE tgrelid = 'card.card'::regclass AND NOT tgisinternal ORDER BY tgname;
-- An idempotent retry is answered even after the account was frozen.
SELECT test_card_in(:'acct', :'holder', 'active') AS z1 \gset
SELECT id AS z2 FROM card.card_replace(:'z1', 'damaged') \gset
UPDATE card.account SET status = 'frozen' WHERE id = :'acct';
SELECT id = :'z2' AS same_replacement FROM card.card_replace(:'z1', 'damaged');
UPDATE card.account SET status = 'active' WHERE id = :'acct';
-- The new card's card.ordered event has the fields of any order, and the link.
SELECT array(SELECT jsonb_object_keys(data) ORDER BY 1) AS fields
  FROM card.event WHERE card_id = :'z2' AND type = 'card.ordered';
