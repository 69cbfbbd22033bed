/* card--1.10--1.11.sql: status changes stay on their page (issue 12) */

\echo Use "ALTER EXTENSION card UPDATE TO '1.11'" to load this file. \quit

-- The expiry sweep's index named status in its predicate, and PostgreSQL
-- cannot update a row in place (a HOT update) when a column that an index
-- reads changes: every freeze, unfreeze and activation wrote a new entry in
-- each of the card's ten indexes.  The sweep now reads expiry_due, which is
-- expires_on while the card is live and NULL once it has ended, so it
-- changes only when a card ends; each page keeps a tenth free for the new
-- versions.  Adding the stored column rewrites card.card (under an ACCESS
-- EXCLUSIVE lock, as long as a copy of the table takes), with the new
-- fillfactor.
ALTER TABLE card.card SET (fillfactor = 90);
ALTER TABLE card.card ADD COLUMN expiry_due date GENERATED ALWAYS AS
    (CASE WHEN status IN ('not_activated', 'active', 'frozen')
          THEN (pg_catalog.make_date(exp_year::integer, exp_month::integer, 1)
                + interval '1 month')::date END) STORED;
DROP INDEX card.card_expiry_due_idx;
CREATE INDEX card_expiry_due_idx ON card.card (expiry_due) WHERE expiry_due IS NOT NULL;
COMMENT ON COLUMN card.card.expiry_due IS 'Generated: expires_on while the card is live (not_activated, active, frozen), NULL once it has ended; the key of card.card_expire_due''s index, which a status change between live statuses leaves alone so that the row is updated in place.';
