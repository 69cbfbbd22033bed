-- pin.sql: PIN checks, tries and resets (DESIGN.md section 6; C: src/pin.c,
-- and src/pin_try.c for the tries a reissue's activation counts).

-- The processor's PIN check comes in two steps so that no verdict leaves
-- before its try is counted for good: card_pin_check() counts the try and
-- keeps the verdict, card_pin_result() gives it once, from a later
-- transaction.  A row lives from the check to the reading of its result.
CREATE TABLE card.pin_check (
    id              uuid PRIMARY KEY,
    card_id         uuid NOT NULL REFERENCES card.card,
    verified        boolean NOT NULL,
    tries_left      smallint NOT NULL CHECK (tries_left BETWEEN 0 AND @CARD_PIN_TRIES@),
    used_last_try   boolean NOT NULL,   -- this try blocked the PIN, unless it was right
    checked_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX pin_check_card_idx ON card.pin_check (card_id);
SELECT pg_catalog.pg_extension_config_dump('card.pin_check', '');
ALTER TABLE card.pin_check ENABLE ROW LEVEL SECURITY;
CREATE POLICY card_of_caller ON card.pin_check
    USING (card_id IN (SELECT c.id FROM card.card c));

CREATE FUNCTION card.card_pin_check(card_token text, pin text)
    RETURNS uuid
    AS 'MODULE_PATHNAME', 'card_pin_check'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION card.card_pin_check(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.card_pin_check(text, text) TO card_processor;

CREATE FUNCTION card.card_pin_result(check_id uuid)
    RETURNS TABLE (verified boolean, tries_left integer)
    AS 'MODULE_PATHNAME', 'card_pin_result'
    LANGUAGE C VOLATILE ROWS 1
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION card.card_pin_result(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.card_pin_result(uuid) TO card_processor;

CREATE FUNCTION card.card_pin_reset_start(card_id uuid, return_url text)
    RETURNS TABLE (redirect_url text, expires_at timestamptz)
    AS 'MODULE_PATHNAME', 'card_pin_reset_start'
    LANGUAGE C VOLATILE ROWS 1
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION card.card_pin_reset_start(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.card_pin_reset_start(uuid, text) TO card_api;

CREATE FUNCTION card.card_pin_reset(reset_token text, pin text)
    RETURNS TABLE (card_id uuid, return_url text)
    AS 'MODULE_PATHNAME', 'card_pin_reset'
    LANGUAGE C VOLATILE ROWS 1
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION card.card_pin_reset(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.card_pin_reset(text, text) TO card_hosted_pages;
