-- reveal.sql: showing a card's details once (DESIGN.md section 6).

-- Reveal through the hosted page (C: src/reveal.c): a one-time link for
-- the API, the details once for the page.  The CVV is derived at reveal
-- time from the MAC key, never stored.
CREATE FUNCTION card.card_reveal_start(card_id uuid, return_url text)
    RETURNS TABLE (redirect_url text, expires_at timestamptz)
    AS 'MODULE_PATHNAME', 'card_reveal_start'
    LANGUAGE C VOLATILE ROWS 1
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION card.card_reveal_start(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.card_reveal_start(uuid, text) TO card_api;

-- POST /v3/cards/:id/reveal {"return_url": ...}: {redirect_url, expires_at}.
CREATE FUNCTION card_internal.card_reveal_start(card_id uuid, request jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    link record;
BEGIN
    PERFORM card.json_check_fields(request, 'card reveal', ARRAY['return_url']);
    SELECT * INTO link FROM card.card_reveal_start(card_id, card.json_text_field(request, 'return_url'));
    RETURN jsonb_build_object('redirect_url', link.redirect_url, 'expires_at', link.expires_at);
END
$$;
REVOKE ALL ON FUNCTION card_internal.card_reveal_start(uuid, jsonb) FROM PUBLIC;
CREATE FUNCTION card.card_reveal_start(card_id uuid, request jsonb)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.card_reveal_start(uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.card_reveal_start(uuid, jsonb) TO card_api;

CREATE FUNCTION card.card_reveal(reveal_token text)
    RETURNS TABLE (pan text, exp_month text, exp_year text, cvv text)
    AS 'MODULE_PATHNAME', 'card_reveal'
    LANGUAGE C VOLATILE ROWS 1
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION card.card_reveal(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.card_reveal(text) TO card_hosted_pages;
