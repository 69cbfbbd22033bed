-- chain.sql: replacement chains and their lock order (C: src/chain.c).

-- The card whose id keys a card's chain: its limits and its PIN hash.
CREATE FUNCTION card.chain_of(card_id uuid, chain_id uuid) RETURNS uuid
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(chain_id, card_id);
REVOKE ALL ON FUNCTION card.chain_of(uuid, uuid) FROM PUBLIC;

-- One lock order for everything that touches a replacement chain (without
-- it, controls, replacement, reissue activation, status changes and PIN
-- calls on one chain deadlocked, 40P01): the chain's first card, then the card
-- the call is about, then the rest by id (C: src/chain.c).  Every C entry
-- point takes it first; the PL/pgSQL code that changes several cards of a
-- chain calls it here.  Whoever also locks the account locks it first, as
-- card_authorize does.
CREATE FUNCTION card.card_chain_lock(card_id uuid) RETURNS integer
    AS 'MODULE_PATHNAME', 'card_chain_lock_sql'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION card.card_chain_lock(uuid) FROM PUBLIC;
