-- The lifecycle matrix of DESIGN.md section 5: every from/to pair, through
-- card_set_status and through a direct UPDATE (which must behave the same).
\set VERBOSITY sqlstate
SELECT programme_id AS prog, individual_id AS holder, account_id AS acct
  FROM test_account('Lifecycle programme') \gset

CREATE TEMP TABLE statuses AS
SELECT unnest(enum_range(NULL::card.card_status)) AS s;

-- Through the function, virtual cards.
SELECT f.s AS from_status,
       string_agg(t.s || '=' || test_try(test_card_in(:'acct', :'holder', f.s), t.s, false),
                  ' ' ORDER BY t.s) AS outcomes
  FROM statuses f CROSS JOIN statuses t
 GROUP BY f.s ORDER BY f.s;

-- Through a direct UPDATE, virtual cards: the trigger gives the same answers.
SELECT f.s AS from_status,
       string_agg(t.s || '=' || test_try(test_card_in(:'acct', :'holder', f.s), t.s, true),
                  ' ' ORDER BY t.s) AS outcomes
  FROM statuses f CROSS JOIN statuses t
 GROUP BY f.s ORDER BY f.s;

-- Physical cards, both ways: not_activated -> active only by the hosted flow.
SELECT f.s AS from_status,
       string_agg(t.s || '=' || test_try(test_card_in(:'acct', :'holder', f.s, 'physical'), t.s, false),
                  ' ' ORDER BY t.s) AS outcomes
  FROM statuses f CROSS JOIN statuses t
 GROUP BY f.s ORDER BY f.s;
SELECT test_try(test_card_in(:'acct', :'holder', 'not_activated', 'physical'), 'active', true) AS direct_physical_activation;

-- Each function outcome matches the C transition table it is generated from.
SELECT count(*) AS disagreements
  FROM card.card_status_transitions() t
 WHERE (t.rule IN ('forbidden', 'terminal')) <>
       (test_try(test_card_in(:'acct', :'holder', t.from_status), t.to_status, false) = '55000');

-- Reason and channel reach the audit row; a direct UPDATE is an operator change.
SELECT test_card_in(:'acct', :'holder', 'active') AS c \gset
SELECT status FROM card.card_set_status(:'c', 'frozen', reason => 'holder asked', channel => 'holder');
SELECT status FROM card.card_set_status(:'c', 'frozen', reason => 'retry', channel => 'holder');
UPDATE card.card SET status = 'active' WHERE id = :'c';
SELECT status FROM card.card_set_status(card_id => :'c', status => 'stolen', channel => 'fraud');
SELECT from_status, to_status, reason, channel
  FROM card.card_status_change WHERE card_id = :'c' ORDER BY id;

-- Updating other columns of a card is not a status change.
UPDATE card.card SET display_name = 'Renamed' WHERE id = :'c';
SELECT count(*) AS audit_rows FROM card.card_status_change WHERE card_id = :'c';

-- The other ways round the lifecycle are shut: the type never changes, and an
-- ended card's expiry cannot be moved to bring it back.
SELECT test_card_in(:'acct', :'holder', 'not_activated', 'physical') AS p \gset
UPDATE card.card SET type = 'virtual' WHERE id = :'p';
UPDATE card.card SET exp_year = '2020' WHERE id = :'p';
SELECT status FROM card.cards WHERE id = :'p';
UPDATE card.card SET exp_year = '2035' WHERE id = :'p';
UPDATE card.card SET exp_month = '01', exp_year = '2035' WHERE id = :'c';
SELECT status FROM card.card_set_status(:'p', 'expired');

-- JSON PATCH: block is the action word for blocked.
SELECT test_card_in(:'acct', :'holder', 'active') AS j \gset
SELECT card.card_update(:'j', '{"status": "frozen"}') ->> 'status' AS status;
SELECT card.card_update(:'j', '{"status": "active", "reason": "found it", "channel": "holder"}') ->> 'status' AS status;
SELECT card.card_update(:'j', '{"status": "block"}') ->> 'status' AS status;
SELECT card.card_update(:'j', '{"status": "active"}') ->> 'status' AS status;

-- Each change is stamped with its own time, not its transaction's start
-- (a change that waited for the card's lock behind a later transaction was
-- stamped earlier than it, found by test/crash.sh): two changes in one
-- transaction are in time order.
SELECT test_card_in(:'acct', :'holder', 'active') AS stamped \gset
BEGIN;
SELECT status FROM card.card_set_status(:'stamped', 'frozen');
SELECT status FROM card.card_set_status(:'stamped', 'active');
COMMIT;
SELECT array_agg(to_status ORDER BY changed_at, id) AS by_time FROM card.card_status_change WHERE card_id = :'stamped';
SELECT count(DISTINCT changed_at) AS distinct_times FROM card.card_status_change WHERE card_id = :'stamped';

-- card_set_status writes the change, its audit row and its event in one
-- statement (the audit trigger leaves that card to it): exactly one audit
-- row and one event per change, and the row returned is the view's.  A
-- change that ends other cards of the PAN (stolen) still audits each of
-- them through the trigger.
SELECT test_card_in(:'acct', :'holder', 'active') AS once \gset
SELECT max(seq) AS seq_before FROM card.event \gset
SELECT row_to_json(r)::text AS returned FROM card.card_set_status(:'once', 'frozen', 'suspicious', 'fraud') r \gset
SELECT :'returned' = row_to_json(v)::text AS returned_as_the_view_shows FROM card.cards v WHERE v.id = :'once';
SELECT from_status, to_status, reason, channel, actor = current_user AS by_caller
  FROM card.card_status_change WHERE card_id = :'once' AND from_status IS NOT NULL;
SELECT type, data FROM card.event WHERE seq > :seq_before AND card_id = :'once';
SELECT test_card_in(:'acct', :'holder', 'active') AS stolen \gset
SELECT id AS reissue FROM card.card_replace(:'stolen', 'damaged') \gset
SELECT max(seq) AS seq_before, (SELECT max(id) FROM card.card_status_change) AS audit_before FROM card.event \gset
SELECT status FROM card.card_set_status(:'stolen', 'stolen');
SELECT card_id = :'stolen' AS the_card_itself, from_status, to_status, count(*)
  FROM card.card_status_change WHERE id > :audit_before
 GROUP BY 1, 2, 3 ORDER BY 1;
SELECT card_id = :'stolen' AS the_card_itself, type, count(*) FROM card.event
 WHERE seq > :seq_before GROUP BY 1, 2 ORDER BY 1;

-- An error before the statement (here the lock table is full) leaves no
-- change context behind: a later direct UPDATE is still recorded as the
-- operator's, not with the failed call's reason and channel.
SELECT test_card_in(:'acct', :'holder', 'active') AS ctx_a \gset
SELECT test_card_in(:'acct', :'holder', 'active') AS ctx_b \gset
SELECT test_card_in(:'acct', :'holder', 'active') AS ctx_c \gset
BEGIN;
SELECT status FROM card.card_set_status(:'ctx_a', 'frozen');
ROLLBACK;
SELECT count(pg_advisory_lock(i)) FROM generate_series(1, 10000000) i;
SELECT status FROM card.card_set_status(:'ctx_b', 'frozen', 'must not stay behind', 'fraud');
SELECT pg_advisory_unlock_all();
UPDATE card.card SET status = 'frozen' WHERE id = :'ctx_c';
SELECT reason, channel FROM card.card_status_change WHERE card_id = :'ctx_c' AND to_status = 'frozen';

-- A superuser's own triggers on card.card: a change a trigger makes to the
-- same card is audited too; a BEFORE trigger that changes the new status
-- is recorded as what happened; one that skips the update changes nothing.
CREATE FUNCTION test_escalate() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN UPDATE card.card SET status = 'blocked' WHERE id = NEW.id; RETURN NULL; END$$;
CREATE TRIGGER zz_test_escalate AFTER UPDATE OF status ON card.card FOR EACH ROW
    WHEN (NEW.status = 'frozen' AND NEW.display_name = 'Escalate') EXECUTE FUNCTION test_escalate();
SELECT test_card_in(:'acct', :'holder', 'active') AS esc \gset
UPDATE card.card SET display_name = 'Escalate' WHERE id = :'esc';
SELECT status FROM card.card_set_status(:'esc', 'frozen', 'escalate', 'fraud');
SELECT status FROM card.cards WHERE id = :'esc';
SELECT from_status, to_status, reason FROM card.card_status_change
 WHERE card_id = :'esc' AND from_status IS DISTINCT FROM 'not_activated' AND from_status IS NOT NULL ORDER BY id;
SELECT type, data ->> 'from' AS "from", data ->> 'to' AS "to" FROM card.event
 WHERE card_id = :'esc' AND type = 'card.status_changed' ORDER BY seq;
DROP TRIGGER zz_test_escalate ON card.card;
DROP FUNCTION test_escalate();
CREATE FUNCTION test_soften() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.display_name = 'Soften' THEN NEW.status := 'lost'; END IF;
    IF NEW.display_name = 'Skip' THEN RETURN NULL; END IF;
    IF NEW.display_name = 'Keep' THEN NEW.status := OLD.status; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER aa_test_soften BEFORE UPDATE OF status ON card.card FOR EACH ROW EXECUTE FUNCTION test_soften();
SELECT test_card_in(:'acct', :'holder', 'active') AS soft \gset
UPDATE card.card SET display_name = 'Soften' WHERE id = :'soft';
SELECT status FROM card.card_set_status(:'soft', 'stolen');
SELECT from_status, to_status FROM card.card_status_change WHERE card_id = :'soft' AND from_status = 'active';
SELECT data ->> 'to' AS event_to FROM card.event WHERE card_id = :'soft' AND type = 'card.status_changed';
SELECT test_card_in(:'acct', :'holder', 'active') AS skip \gset
UPDATE card.card SET display_name = 'Skip' WHERE id = :'skip';
SELECT status FROM card.card_set_status(:'skip', 'frozen');
SELECT test_card_in(:'acct', :'holder', 'active') AS keep \gset
UPDATE card.card SET display_name = 'Keep' WHERE id = :'keep';
SELECT status FROM card.card_set_status(:'keep', 'frozen');
SELECT count(*) AS recorded_for_skip_and_keep FROM card.card_status_change
 WHERE card_id IN (:'skip', :'keep') AND from_status = 'active';
DROP TRIGGER aa_test_soften ON card.card;
DROP FUNCTION test_soften();

-- A change between live statuses updates the card's row in place (a HOT
-- update, 1.11): no index of card.card reads status (the expiry sweep's
-- reads expiry_due, which stays as it is), and the table keeps a tenth of
-- each page free, room for two new versions of a card without pruning.
-- Before 1.11 each of these wrote a new entry in every index.  A card
-- ending (blocked) clears expiry_due, so the sweep's index lets it go.
SELECT id AS in_place FROM card.card_order(:'holder', :'acct', 'In place') \gset
SELECT id AS in_place_direct FROM card.card_order(:'holder', :'acct', 'In place, directly') \gset
SELECT expiry_due = expires_on AS due_while_live FROM card.card WHERE id = :'in_place';
SELECT test_hot_updates(format('SELECT card.card_set_status(%L, %L)', :'in_place', 'active')) AS activated;
SELECT test_hot_updates(format('SELECT card.card_set_status(%L, %L)', :'in_place', 'frozen')) AS frozen;
SELECT test_hot_updates(format('UPDATE card.card SET status = %L WHERE id = %L', 'active', :'in_place_direct'))
       AS activated_directly;
SELECT status FROM card.card_set_status(:'in_place', 'blocked');
SELECT status, expiry_due IS NULL AS no_longer_due FROM card.card WHERE id = :'in_place';
