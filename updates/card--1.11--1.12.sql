/* card--1.11--1.12.sql: one AFTER trigger for status changes (issue 12) */

\echo Use "ALTER EXTENSION card UPDATE TO '1.12'" to load this file. \quit

-- PostgreSQL compiles a trigger's WHEN condition at each statement that
-- fires the trigger: the audit trigger's and those of the two PL/pgSQL
-- triggers that ended the other cards of a PAN cost a tenth of a status
-- change.  The audit trigger's function now makes their tests and calls
-- card.end_same_pan itself, after the change's audit row, as the three
-- triggers fired in that order.
DROP TRIGGER card_status_close_replaced ON card.card;
DROP TRIGGER card_status_end_lost_pan ON card.card;
DROP FUNCTION card.replacement_activated();
DROP FUNCTION card.pan_compromised();
DROP TRIGGER card_status_audit ON card.card;
CREATE TRIGGER card_status_audit
    AFTER UPDATE OF status ON card.card
    FOR EACH ROW EXECUTE FUNCTION card.card_status_audit();
COMMENT ON FUNCTION card.end_same_pan(uuid, text) IS
    'Blocks (channel system) every other live card that carries a card''s PAN, in the chain''s lock order; returns how many. Owner only (the audit trigger card_status_audit calls it).';
COMMENT ON FUNCTION card.card_status_audit() IS
    'Trigger function of card_status_audit (AFTER UPDATE OF status ON card.card): writes the audit row and event of a status change that card_set_status did not record itself (a direct UPDATE is recorded with channel operator, reason "direct update"); then, for a card become lost or stolen, or a reissue (damaged, expired) activated, blocks every other live card with its PAN (card.end_same_pan).';

-- card."authorization" kept the column CHECK (amount > 0) beside
-- authorization_consistent, which says the same: each CHECK is compiled at
-- every statement that writes the table (each authorisation).
ALTER TABLE card."authorization" DROP CONSTRAINT authorization_amount_check;
