/* card--1.7--1.8.sql: ids and tokens carry their shard (issue 15) */

\echo Use "ALTER EXTENSION card UPDATE TO '1.8'" to load this file. \quit


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

ALTER TABLE card.individual ALTER id SET DEFAULT card.new_id();
ALTER TABLE card.account ALTER id SET DEFAULT card.new_id();

-- The reference inside psql: the new functions' comments.
COMMENT ON FUNCTION card.shard() IS
    'This server''s number among the shards of a scale-out (the setting card.shard; 0 on a single server). All five roles.';
COMMENT ON FUNCTION card.shard_of(uuid) IS
    'The shard that made an id: the number a version 8 id made on shard k > 0 carries, else 0 (every id of a single server). What a proxy routes a call by. All five roles.';
COMMENT ON FUNCTION card.shard_of_token(text) IS
    'The shard of a card or link token: k for "<prefix>k.<random>", 0 for a token without the marker or a value that is no token. All five roles.';
COMMENT ON FUNCTION card.new_id() IS
    'A new random id of this shard (version 4 on shard 0, version 8 carrying the shard elsewhere): the default id of individuals and accounts. All five roles.';
