/* card--1.8--1.9.sql: hot paths (issue 12) */

\echo Use "ALTER EXTENSION card UPDATE TO '1.9'" to load this file. \quit

-- A card's holder is a member of its account, by one foreign key to
-- card.account_member instead of one to card.account and one to
-- card.individual (see src/order.sql).
-- card_order has always refused a holder who is not a member; a card that
-- got in by hand stops the update here, named, rather than by the key.
DO $$
DECLARE
    stray record;
BEGIN
    SELECT k.id, k.account_id, k.individual_id INTO stray
      FROM card.card k
     WHERE NOT EXISTS (SELECT 1 FROM card.account_member m
                        WHERE m.account_id = k.account_id AND m.individual_id = k.individual_id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'card % is held by individual %, who is not a member of its account %',
                        stray.id, stray.individual_id, stray.account_id
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'Add the holder with card.account_member_add(account_id, individual_id) and update again.';
    END IF;
END
$$;
ALTER TABLE card.account_member ADD UNIQUE (account_id, individual_id, programme_id);
ALTER TABLE card.card
    DROP CONSTRAINT card_account_id_programme_id_fkey,
    DROP CONSTRAINT card_individual_id_programme_id_fkey,
    ADD FOREIGN KEY (account_id, individual_id, programme_id)
        REFERENCES card.account_member (account_id, individual_id, programme_id);
