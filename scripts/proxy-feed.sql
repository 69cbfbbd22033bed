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

-- A cursor array of one per shard, or 22023.
CREATE FUNCTION card_proxy.check_cursors(cursors bigint[], what text)
    RETURNS void
    LANGUAGE plpgsql
AS $body$
DECLARE
    shards integer := card_proxy.shard_count();
BEGIN
    IF cursors IS NULL OR cardinality(cursors) <> shards OR array_ndims(cursors) <> 1
       OR array_lower(cursors, 1) <> 1 OR array_position(cursors, NULL) IS NOT NULL THEN
        RAISE EXCEPTION '% must hold one cursor per shard (%)', what, shards
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Start with an array of zeros, one per shard, and keep each shard''s largest seq.';
    END IF;
END
$body$;

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
BEGIN
    PERFORM card_proxy.check_cursors(cursors, 'cursors');
    RETURN QUERY
    SELECT s.k, e.seq, e.occurred_at, e.type, e.card_id, e.account_id, e.programme_id, e.data
      FROM generate_series(0, cardinality(cursors) - 1) s(k),
           card_proxy.events_after_on(s.k, cursors[s.k + 1], max) e
     ORDER BY e.occurred_at, s.k, e.seq;
END
$body$;
REVOKE ALL ON FUNCTION card.events_after(bigint[], integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.events_after(bigint[], integer) TO card_reader;

-- Registered consumers across shards: a consumer of the same name on every
-- shard, with a cursor there (each shard's events_prune keeps what its
-- consumers have not acknowledged).  Through the proxy the cursors are an
-- array, one per shard, as events_after's: consumer_register answers where
-- the consumer stands on each shard (registering it where it is not yet:
-- a retry completes a shard that failed, there is no cross-shard
-- transaction), consumer_ack stores each shard's cursor under that shard's
-- rule (the seq of an event the caller may be shown there, or before one),
-- consumer_unregister forgets it everywhere.
CREATE FUNCTION card_proxy.consumer_register_on(shard integer, name text, start_after bigint)
    RETURNS bigint
    LANGUAGE plproxy
AS $proxy$
    CLUSTER 'card';
    RUN ON card_proxy.on_shard(shard);
    SELECT card.consumer_register(name, start_after);
$proxy$;

CREATE FUNCTION card_proxy.consumer_ack_on(shard integer, name text, cursor bigint)
    RETURNS bigint
    LANGUAGE plproxy
AS $proxy$
    CLUSTER 'card';
    RUN ON card_proxy.on_shard(shard);
    SELECT card.consumer_ack(name, cursor);
$proxy$;

CREATE FUNCTION card_proxy.consumer_unregister_all(name text)
    RETURNS SETOF void
    LANGUAGE plproxy
AS $proxy$
    CLUSTER 'card';
    RUN ON ALL;
    TARGET card.consumer_unregister;
$proxy$;

CREATE FUNCTION card.consumer_register(name text, start_after bigint[] DEFAULT NULL)
    RETURNS bigint[]
    LANGUAGE plpgsql
AS $body$
DECLARE
    shards integer := card_proxy.shard_count();
BEGIN
    IF start_after IS NOT NULL THEN
        PERFORM card_proxy.check_cursors(start_after, 'start_after');
    END IF;
    RETURN ARRAY(SELECT card_proxy.consumer_register_on(s.k, name, coalesce(start_after[s.k + 1], 0))
                   FROM generate_series(0, shards - 1) s(k) ORDER BY s.k);
END
$body$;
REVOKE ALL ON FUNCTION card.consumer_register(text, bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.consumer_register(text, bigint[]) TO card_reader;

CREATE FUNCTION card.consumer_ack(name text, cursors bigint[])
    RETURNS bigint[]
    LANGUAGE plpgsql
AS $body$
BEGIN
    PERFORM card_proxy.check_cursors(cursors, 'cursors');
    RETURN ARRAY(SELECT card_proxy.consumer_ack_on(s.k, name, cursors[s.k + 1])
                   FROM generate_series(0, cardinality(cursors) - 1) s(k) ORDER BY s.k);
END
$body$;
REVOKE ALL ON FUNCTION card.consumer_ack(text, bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.consumer_ack(text, bigint[]) TO card_reader;

CREATE FUNCTION card.consumer_unregister(name text)
    RETURNS void
    LANGUAGE sql
BEGIN ATOMIC
    SELECT count(*) FROM card_proxy.consumer_unregister_all(name);
END;
REVOKE ALL ON FUNCTION card.consumer_unregister(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.consumer_unregister(text) TO card_reader;

-- The helpers run as the caller for the functions above; only card_reader
-- calls those.
REVOKE ALL ON FUNCTION card_proxy.check_cursors(bigint[], text), card_proxy.events_after_on(integer, bigint, integer),
    card_proxy.consumer_register_on(integer, text, bigint), card_proxy.consumer_ack_on(integer, text, bigint),
    card_proxy.consumer_unregister_all(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card_proxy.check_cursors(bigint[], text), card_proxy.events_after_on(integer, bigint, integer),
    card_proxy.consumer_register_on(integer, text, bigint), card_proxy.consumer_ack_on(integer, text, bigint),
    card_proxy.consumer_unregister_all(text) TO card_reader;
