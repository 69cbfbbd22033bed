-- The live feed across shards (scale-out, issue 15), loaded into the proxy
-- after the generated functions (it returns their card.event type).  Each
-- shard's feed is gap-free in its own seq order (events_after there), so a
-- consumer keeps one cursor per shard: card.events_after(cursors bigint[],
-- max) reads after cursors[k + 1] on shard k, at most max events from each,
-- and merges them by occurrence time, then shard, then seq (there is no
-- total order across shards; within one shard, seq order).  The consumer
-- moves cursors[k + 1] to the largest seq it got from shard k.  No wait:
-- a long poll holds one shard at a time here; a consumer that must wake
-- at once reads each shard (card-consumer with that shard's env file).

-- How many shards the proxy routes to (partitions p0 .. pN-1 of server card).
CREATE FUNCTION card_proxy.shard_count()
    RETURNS integer
    LANGUAGE sql STABLE
RETURN (SELECT count(*)::integer
          FROM pg_catalog.pg_options_to_table((SELECT s.srvoptions FROM pg_catalog.pg_foreign_server s
                                                WHERE s.srvname = 'card')) o
         WHERE o.option_name ~ '^p[0-9]+$');

-- A route that is the shard's number itself.
CREATE FUNCTION card_proxy.on_shard(shard integer)
    RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT
RETURN shard;

CREATE FUNCTION card_proxy.events_after_on(shard integer, cursor bigint, max integer)
    RETURNS SETOF card.event
    LANGUAGE plproxy
AS $proxy$
    CLUSTER 'card';
    RUN ON card_proxy.on_shard(shard);
    SELECT * FROM card.events_after(cursor, max);
$proxy$;

CREATE FUNCTION card.events_after(cursors bigint[], max integer DEFAULT 100)
    RETURNS TABLE (shard integer, seq bigint, occurred_at timestamptz, type card.event_type,
                   card_id uuid, account_id uuid, programme_id uuid, data jsonb)
    LANGUAGE plpgsql
AS $body$
DECLARE
    shards integer := card_proxy.shard_count();
BEGIN
    IF cursors IS NULL OR cardinality(cursors) <> shards OR array_ndims(cursors) <> 1
       OR array_position(cursors, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'cursors must hold one cursor per shard (%)', shards
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Start with an array of zeros, one per shard, and keep each shard''s largest seq.';
    END IF;
    RETURN QUERY
    SELECT s.k, e.seq, e.occurred_at, e.type, e.card_id, e.account_id, e.programme_id, e.data
      FROM generate_series(0, shards - 1) s(k),
           card_proxy.events_after_on(s.k, cursors[s.k + 1], max) e
     ORDER BY e.occurred_at, s.k, e.seq;
END
$body$;
REVOKE ALL ON FUNCTION card.events_after(bigint[], integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.events_after(bigint[], integer) TO card_reader;
