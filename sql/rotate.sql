-- Key rotation through the key file: a new version is the key for new
-- cards; card.rotate_keys() moves every PAN to the newest version, in
-- batches it commits; a missing old version stops it with a clear error.
-- Runs last: it leaves this database's PANs under a key version that only
-- its own (deleted) key files held (test/rotate.sh covers interruption and
-- resuming on a database of its own).
\set VERBOSITY sqlstate
SELECT programme_id AS prog, individual_id AS holder, account_id AS acct
  FROM test_account('Rotation programme') \gset
SELECT test_card_in(:'acct', :'holder', 'active') AS c \gset
CREATE EXTENSION adminpack;
-- A key file in the data directory, composed on the server so that no key
-- travels in a statement: the current file's lines, then test lines.
CREATE FUNCTION rotation_key_file(name text, keep_current boolean, extra text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    path text := current_setting('data_directory') || '/' || name || '.' || md5(random()::text);
BEGIN
    PERFORM pg_file_write(path, CASE WHEN keep_current THEN pg_read_file(current_setting('card.key_file'))
                                     ELSE '' END || extra, false);
    RETURN path;
END $$;
\set reload 'SELECT FROM pg_reload_conf(), pg_sleep(1);'
SELECT count(*) AS versions_in_use, bool_and(key_version = 1) AS all_v1 FROM card.pan_key_versions();
SELECT md5(test_pan(:'c')) AS digest_before \gset

-- Version 2 added: new cards use it, old ones stay readable under 1.
SELECT rotation_key_file('v1v2.keys', true, E'2 ' || repeat('5a', 32) || E'\n') AS v1v2 \gset
ALTER SYSTEM SET card.key_file = :'v1v2';
:reload
SELECT id AS c2 FROM card.card_order(:'holder', :'acct', 'After the new key') \gset
SELECT pan_key_version FROM card.card WHERE id IN (:'c', :'c2') ORDER BY pan_key_version;

-- Refused: a bad batch size; a rotation inside a transaction block (it
-- commits per batch), which then leaves everything as it was.
CALL card.rotate_keys(0);
CALL card.rotate_keys(NULL);
BEGIN;
CALL card.rotate_keys(5);
ROLLBACK;
-- Refused at REPEATABLE READ and SERIALIZABLE (55000): a batch's snapshot
-- would be the transaction's, taken before the first batch waits for the
-- orders in flight, and their PANs would stay under the old key.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM card.rotate_keys_batch(3);
ROLLBACK;
SET default_transaction_isolation = 'serializable';
CALL card.rotate_keys(5);
RESET default_transaction_isolation;
SELECT key_version, cards > 0 AS some FROM card.pan_key_versions();

-- Batches page by card id (issue 10, item 10: a batch had no order and
-- could rescan rows already rotated): each takes the next cards in id
-- order after the last one of the batch before.
SELECT (array_agg(id ORDER BY id))[3] AS third, (array_agg(id ORDER BY id))[6] AS sixth
  FROM card.card WHERE pan_key_version < 2 \gset
BEGIN;
SELECT rotated, done, last_id = :'third' AS first_page FROM card.rotate_keys_batch(3);
SELECT rotated, done, last_id = :'sixth' AS second_page FROM card.rotate_keys_batch(3, :'third');
ROLLBACK;

-- The rotation, then a key file without version 1: everything reads.
SET client_min_messages = warning;
CALL card.rotate_keys(7);
RESET client_min_messages;
SELECT key_version, cards > 0 AS some FROM card.pan_key_versions();
SELECT rotation_key_file('v2.keys', false,
           (SELECT string_agg(l, E'\n') || E'\n' FROM regexp_split_to_table(pg_read_file(:'v1v2'), E'\n') l
             WHERE l ~ '^(mac|2) ')) AS v2 \gset
ALTER SYSTEM SET card.key_file = :'v2';
:reload
SELECT md5(test_pan(:'c')) = :'digest_before' AS same_pan;
SELECT count(*) = sum(CASE WHEN k.luhn_valid AND k.fingerprint_matches AND k.last4_matches THEN 1 ELSE 0 END)
       AS every_pan_checks
  FROM card.card c, card.pan_check(c.id) k;

-- A newer version 3 while version 2 is gone: nothing can be decrypted to
-- move, so the rotation stops at once and says which version is missing.
SELECT rotation_key_file('v3.keys', false,
           (SELECT string_agg(l, E'\n') || E'\n' FROM regexp_split_to_table(pg_read_file(:'v2'), E'\n') l
             WHERE l ~ '^mac ') || '3 ' || repeat('6b', 32) || E'\n') AS v3 \gset
ALTER SYSTEM SET card.key_file = :'v3';
:reload
\set VERBOSITY default
SELECT regexp_replace(e.message, '"/[^"]*"', '<file>') AS message, e.state
  FROM test_error('CALL card.rotate_keys(7)') e;
\set VERBOSITY sqlstate
SELECT key_version, cards > 0 AS some FROM card.pan_key_versions();

ALTER SYSTEM RESET card.key_file;
:reload
SELECT bool_and(pg_file_unlink(f)) AS cleaned_up FROM unnest(ARRAY[:'v1v2', :'v2', :'v3']) f;
DROP EXTENSION adminpack;
