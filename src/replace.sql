-- replace.sql: replacement and reissue (DESIGN.md section 6; C:
-- src/replace.c).  Lost and stolen cards get a new PAN and end; damaged and
-- expired cards are reissued with the same PAN, and the old card works
-- until the new one is activated.

-- Replacing a card again for the same reason finds the first replacement.
CREATE UNIQUE INDEX card_replacement_idx ON card.card (replacement_for, replacement_reason)
    WHERE replacement_for IS NOT NULL;
CREATE INDEX card_chain_idx ON card.card (chain_id) WHERE chain_id IS NOT NULL;

CREATE FUNCTION card.card_replace(card_id uuid, reason text)
    RETURNS card.cards
    AS 'MODULE_PATHNAME', 'card_replace'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION card.card_replace(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.card_replace(uuid, text) TO card_api;

-- POST /v3/cards/:id/replace {"reason": ...}: the new card.
CREATE FUNCTION card_internal.card_replace(card_id uuid, request jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM card.json_check_fields(request, 'card replacement', ARRAY['reason']);
    RETURN to_jsonb(card.card_replace(card_id, card.json_text_field(request, 'reason')));
END
$$;
REVOKE ALL ON FUNCTION card_internal.card_replace(uuid, jsonb) FROM PUBLIC;
CREATE FUNCTION card.card_replace(card_id uuid, request jsonb)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.card_replace(uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.card_replace(uuid, jsonb) TO card_api;

-- Ends (blocks) every other live card that carries a card's PAN, locking
-- them in the chain's lock order and judging each by its status under the
-- lock.
CREATE FUNCTION card.end_same_pan(card_id uuid, reason text) RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    other record;
    ended integer := 0;
BEGIN
    -- The chain's lock order first: the cards of a PAN are cards of one
    -- chain, and a direct UPDATE by the owner comes here too.
    PERFORM card.card_chain_lock(card_id);
    FOR other IN SELECT o.id, o.status, o.expires_on
                   FROM card.card c
                   JOIN card.card o ON o.programme_id = c.programme_id
                                   AND o.pan_fingerprint = c.pan_fingerprint AND o.id <> c.id
                  WHERE c.id = end_same_pan.card_id
                  ORDER BY o.id
                    FOR NO KEY UPDATE OF o
    LOOP
        IF card.effective_status(other.status, other.expires_on) IN (@CARD_LIVE_STATUSES@) THEN
            PERFORM card.card_set_status(other.id, 'blocked', reason, 'system');
            ended := ended + 1;
        END IF;
    END LOOP;
    RETURN ended;
END
$$;
REVOKE ALL ON FUNCTION card.end_same_pan(uuid, text) FROM PUBLIC;

-- A reissue (same PAN) closes the card it replaces once it is activated,
-- and any other card still carrying that PAN (an earlier reissue); until
-- then they all work.  A lost or stolen PAN is compromised: however the
-- card came to be lost or stolen (card_replace, card_set_status, a direct
-- UPDATE), every other live card with that PAN ends too.  Both are done by
-- the audit trigger (card_status_audit, src/status.c), after the change's
-- audit row, so the change is recorded before the ends it causes.
