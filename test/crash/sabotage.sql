-- test/crash/sabotage.sql: the negative control of the crash test
-- (test/crash.sh --negative).  Breaks, behind the extension's back
-- (session_replication_role = replica: no trigger fires), one thing per
-- invariant, so that check.sql must report each; prints what it broke.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only on
BEGIN;
SET LOCAL session_replication_role = replica;

-- An acknowledged credit lost, with its event: balance and acknowledged calls.
WITH c AS (SELECT (data ->> 'account')::uuid AS account_id, data ->> 'ref' AS reference
             FROM crash_log WHERE kind = 'A' AND op = 'credit' ORDER BY opid LIMIT 1),
     d AS (DELETE FROM card.account_credit x USING c
            WHERE x.account_id = c.account_id AND x.reference = c.reference RETURNING x.*),
     e AS (DELETE FROM card.event ev USING d
            WHERE ev.type = 'account.credited' AND ev.account_id = d.account_id
              AND ev.data ->> 'reference' = d.reference RETURNING ev.seq)
SELECT 'deleted credit ' || (SELECT reference FROM d) || ' and ' || (SELECT count(*) FROM e) || ' event';

-- held off by one on an account with room.
UPDATE card.account SET held = held + 1
 WHERE id = (SELECT id FROM card.account WHERE balance > held ORDER BY id LIMIT 1)
RETURNING 'held + 1 on account ' || id;

-- A card frozen without its audit row: status vs audit trail, and its client's model.
UPDATE card.card SET status = 'frozen'
 WHERE id = (SELECT c.id FROM card.card c JOIN crash_log l ON (l.data ->> 'card')::uuid = c.id
              WHERE l.kind = 'S' AND l.data ->> 'status' = 'active' AND l.data ->> 'uncertain' = '0'
                AND c.status = 'active' ORDER BY c.id LIMIT 1)
RETURNING 'card ' || id || ' frozen behind the trigger';

-- An approval's event lost.
DELETE FROM card.event
 WHERE seq = (SELECT min(seq) FROM card.event WHERE type = 'authorization.approved')
RETURNING 'deleted event ' || seq;

-- A limit counter off by one.
UPDATE card.spend_limit SET spent = spent + 1
 WHERE id = (SELECT min(id) FROM card.spend_limit WHERE period <> 'per_authorization')
RETURNING 'spent + 1 on limit ' || id;

-- One PAN on two cards of two programmes, not a reissue (another
-- pan_sequence, so that the unique index lets it through).
UPDATE card.card SET pan_fingerprint = (SELECT pan_fingerprint FROM card.card c
                                          JOIN card.programme p ON p.id = c.programme_id
                                         WHERE p.name = 'Crash A' ORDER BY c.id LIMIT 1),
                     pan_sequence = 99
 WHERE id = (SELECT c.id FROM card.card c JOIN card.programme p ON p.id = c.programme_id
              WHERE p.name = 'Crash B' AND c.replacement_for IS NULL ORDER BY c.id LIMIT 1)
RETURNING 'card ' || id || ' given the PAN of a card of another programme';

COMMIT;
