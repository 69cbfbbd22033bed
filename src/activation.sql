-- activation.sql: activation through the hosted page (DESIGN.md section 6;
-- C: src/activation.c).  The API starts it with a one-time link; only the
-- hosted pages complete it, with the PIN the cardholder chose.

CREATE FUNCTION card.card_activation_start(card_id uuid, return_url text)
    RETURNS TABLE (redirect_url text, expires_at timestamptz)
    AS 'MODULE_PATHNAME', 'card_activation_start'
    LANGUAGE C VOLATILE ROWS 1
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION card.card_activation_start(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.card_activation_start(uuid, text) TO card_api;

CREATE FUNCTION card.card_activation_complete(activation_token text, pin text)
    RETURNS TABLE (card_id uuid, status card.card_status, return_url text, pin_tries_left integer)
    AS 'MODULE_PATHNAME', 'card_activation_complete'
    LANGUAGE C VOLATILE ROWS 1
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION card.card_activation_complete(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.card_activation_complete(text, text) TO card_hosted_pages;
