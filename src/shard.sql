-- shard.sql: which shard an id or a token belongs to, for a proxy that
-- routes each call to the shard holding its data (scale-out, issue 15;
-- C: src/shard.c).  On a single server everything is shard 0.

CREATE FUNCTION card.shard()
    RETURNS integer
    AS 'MODULE_PATHNAME', 'card_shard_sql'
    LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION card.shard_of(id uuid)
    RETURNS integer
    AS 'MODULE_PATHNAME', 'card_shard_of'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION card.shard_of_token(token text)
    RETURNS integer
    AS 'MODULE_PATHNAME', 'card_shard_of_token'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION card.shard(), card.shard_of(uuid), card.shard_of_token(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.shard(), card.shard_of(uuid), card.shard_of_token(text)
    TO card_admin, card_api, card_processor, card_hosted_pages, card_reader;

-- A new random id of this shard: the default of the tables whose rows the
-- extension inserts without an id of its own making (callable by the roles
-- that a table's default is evaluated for).
CREATE FUNCTION card.new_id()
    RETURNS uuid
    AS 'MODULE_PATHNAME', 'card_new_id'
    LANGUAGE C VOLATILE PARALLEL SAFE;
REVOKE ALL ON FUNCTION card.new_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.new_id()
    TO card_admin, card_api, card_processor, card_hosted_pages, card_reader;
