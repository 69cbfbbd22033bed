-- pan.sql: PAN facts for operators (C: src/pan.c generates and seals PANs).

-- Facts about a stored PAN, never the PAN: for operators and tests.
CREATE FUNCTION card.pan_check(card_id uuid,
    OUT pan_length integer, OUT luhn_valid boolean, OUT bin_matches boolean,
    OUT last4_matches boolean, OUT fingerprint_matches boolean)
    AS 'MODULE_PATHNAME', 'card_pan_check'
    LANGUAGE C STRICT VOLATILE
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION card.pan_check(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.pan_check(uuid) TO card_admin;
