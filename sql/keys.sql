-- The key file: missing, malformed, incomplete; errors never show key material.
\set VERBOSITY default
SELECT programme_id AS prog, individual_id AS holder, account_id AS acct
  FROM test_account('Keys programme') \gset
SELECT current_setting('card.key_file') AS good_key_file \gset

-- Key files written by the server in its data directory: adminpack writes
-- them private (0600), COPY ... TO world-readable (0644).
CREATE EXTENSION adminpack;
CREATE FUNCTION write_key_file(name text, body text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    unique_name text := name || '.' || md5(random()::text);
BEGIN
    PERFORM pg_file_write(unique_name, body, false);
    RETURN current_setting('data_directory') || '/' || unique_name;
END $$;
SELECT write_key_file('no-mac.keys', E'# only an encryption key\n1 ' || repeat('ab', 32) || E'\n') AS no_mac \gset
SELECT write_key_file('bad-hex.keys', E'\nmac ' || repeat('zz', 32) || E'\n') AS bad_hex \gset
SELECT write_key_file('short.keys', E'mac ' || repeat('ab', 31) || E'\n') AS short_key \gset
SELECT write_key_file('twice.keys', E'mac ' || repeat('ab', 32) || E'\n1 ' || repeat('cd', 32) || E'\n1 ' || repeat('ef', 32) || E'\n') AS twice \gset
SELECT write_key_file('no-enc.keys', E'mac ' || repeat('ab', 32) || E'\n') AS no_enc \gset
SELECT current_setting('data_directory') || '/open.keys.' || md5(random()::text) AS open_keys \gset
COPY (SELECT E'mac ' || repeat('ab', 32) || E'\n1 ' || repeat('cd', 32)) TO :'open_keys';

-- Point the server at each in turn; the backend re-reads settings between statements.
\set reload 'SELECT FROM pg_reload_conf(), pg_sleep(1);'
-- A message names no path (issue 10, defect 9: the path told any caller
-- where the keys are); the server log has it.
\set order_card 'SELECT e.state, e.message, e.detail, e.hint, current_setting(\'card.key_file\') <> \'\' AND strpos(concat(e.message, e.detail, e.hint), current_setting(\'card.key_file\')) > 0 AS names_path FROM test_error(format(\'SELECT card.card_order(%L, %L, %L)\', :\'holder\', :\'acct\', \'K\')) e;'

ALTER SYSTEM SET card.key_file = '/nonexistent/card.keys';
:reload
:order_card
ALTER SYSTEM SET card.key_file = :'no_mac';
:reload
:order_card
ALTER SYSTEM SET card.key_file = :'bad_hex';
:reload
:order_card
ALTER SYSTEM SET card.key_file = :'short_key';
:reload
:order_card
ALTER SYSTEM SET card.key_file = :'twice';
:reload
:order_card
ALTER SYSTEM SET card.key_file = :'no_enc';
:reload
:order_card
ALTER SYSTEM SET card.key_file = :'open_keys';
:reload
:order_card
ALTER SYSTEM SET card.key_file = '';
:reload
:order_card

-- Nothing was ordered meanwhile; back to the real keys, ordering works again.
SELECT count(*) AS cards FROM card.card WHERE account_id = :'acct';
ALTER SYSTEM RESET card.key_file;
:reload
SELECT current_setting('card.key_file') = :'good_key_file' AS restored;
SELECT status FROM card.card_order(:'holder', :'acct', 'K');

-- New PANs go under the newest key in the file as it is when they are
-- sealed, also in a transaction that began before a rotation added it (a
-- transaction held open across a rotation kept sealing under the retired
-- key when the file was looked at once per transaction).
SELECT write_key_file('swapped.keys', pg_read_file(:'good_key_file')) AS swapped \gset
ALTER SYSTEM SET card.key_file = :'swapped';
:reload
BEGIN;
SELECT id AS before_swap FROM card.card_order(:'holder', :'acct', 'Before the swap') \gset
SELECT pg_file_unlink(:'swapped') AND
       pg_file_write(:'swapped', pg_read_file(:'good_key_file') || E'\n2 ' || repeat('5a', 32) || E'\n',
                     false) > 0 AS swapped;
SELECT id AS after_swap FROM card.card_order(:'holder', :'acct', 'After the swap') \gset
SELECT display_name, pan_key_version FROM card.card
 WHERE id IN (:'before_swap', :'after_swap') ORDER BY created_at, display_name DESC;
ROLLBACK;
ALTER SYSTEM RESET card.key_file;
:reload

SELECT bool_and(pg_file_unlink(f)) AS cleaned_up
  FROM unnest(ARRAY[:'no_mac', :'bad_hex', :'short_key', :'twice', :'no_enc', :'open_keys', :'swapped']) f;
DROP EXTENSION adminpack;

-- The setting is the superuser's alone, also in a new session of a role
-- without privileges that has not loaded the library (issue 10, defect 9:
-- SHOW card.key_file showed the path before the library was loaded; the
-- library is preloaded, shared_preload_libraries = 'card', so the setting
-- is defined before any session starts).
SELECT current_user AS regress_owner \gset
CREATE ROLE regress_key_peeker LOGIN;
\c - regress_key_peeker
SHOW card.key_file;
SELECT count(*) AS listed FROM pg_settings WHERE name = 'card.key_file';
\c - :regress_owner
DROP ROLE regress_key_peeker;
