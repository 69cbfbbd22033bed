-- How the proxy finds a shard (scale-out, issue 15): the same reading of
-- ids and tokens as the extension's card.shard_of and card.shard_of_token
-- (src/shard.c), in SQL, since the proxy runs no card library.  The test
-- compares them on the same values.

-- A version 8 id carries its shard in the 12 bits after the version nibble.
-- Not STRICT: a NULL id routes to shard 0, whose function answers it as one
-- server does (PL/Proxy fails with an internal error on a NULL route).
CREATE FUNCTION card_proxy.shard_of(id uuid)
    RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN substr(id::text, 15, 1) = '8'
            THEN ('x' || substr(id::text, 16, 3))::bit(12)::integer ELSE 0 END;

-- A token "<prefix>k.<random>" is shard k's (k in digits, leading zeros
-- read as the extension reads them); any other value, or NULL, shard 0's.
CREATE FUNCTION card_proxy.shard_of_token(token text)
    RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce((SELECT CASE WHEN length(k) <= 4 AND k::integer <= 4095 THEN k::integer END
                   FROM regexp_match(token, '^[a-z]+_([0-9]+)\.') m,
                        coalesce(nullif(ltrim(m[1], '0'), ''), '0') k), 0);

-- The shard of the id or token a JSON request names in a field.
CREATE FUNCTION card_proxy.shard_of_field(request jsonb, field text)
    RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN jsonb_typeof(request -> field) = 'string'
             AND request ->> field ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
            THEN card_proxy.shard_of((request ->> field)::uuid) ELSE 0 END;
CREATE FUNCTION card_proxy.shard_of_token_field(request jsonb, field text)
    RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(card_proxy.shard_of_token(request ->> field), 0);
