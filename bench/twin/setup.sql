-- The plain-SQL twins of the card workloads (not product: a measuring
-- stick).  Tables LIKE the extension's, with their columns, defaults,
-- CHECK constraints and indexes (INCLUDING ALL), filled with the same rows,
-- but without foreign keys, triggers, row-level security or logic.  Run
-- after bench/authorize_setup.sql.
\set ON_ERROR_STOP 1
CREATE SCHEMA twin;
CREATE TABLE twin.account (LIKE card.account INCLUDING ALL);
CREATE TABLE twin.card (LIKE card.card INCLUDING ALL);
-- LIKE copies no storage parameters: the card table's fillfactor, as the extension's.
ALTER TABLE twin.card SET (fillfactor = 90);
CREATE TABLE twin.card_status_change (LIKE card.card_status_change INCLUDING ALL);
CREATE TABLE twin."authorization" (LIKE card."authorization" INCLUDING ALL);
CREATE TABLE twin.event (LIKE card.event INCLUDING ALL);
CREATE TABLE twin.spend_limit (LIKE card.spend_limit INCLUDING ALL);
INSERT INTO twin.spend_limit OVERRIDING SYSTEM VALUE SELECT * FROM card.spend_limit;
INSERT INTO twin.account SELECT * FROM card.account;
INSERT INTO twin.card (id, programme_id, account_id, individual_id, display_name, type, status,
                       exp_month, exp_year, last4, token, pan_ciphertext, pan_key_version,
                       pan_fingerprint, controls, mcc_allowed, mcc_blocked, countries_allowed,
                       countries_blocked, channels_blocked)
SELECT id, programme_id, account_id, individual_id, display_name, type, status, exp_month,
       exp_year, last4, token, pan_ciphertext, pan_key_version, pan_fingerprint, controls,
       mcc_allowed, mcc_blocked, countries_allowed, countries_blocked, channels_blocked
  FROM card.card;
ANALYZE;
