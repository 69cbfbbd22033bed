-- event.sql: the live feed of events, its consumers and retention
-- (DESIGN.md section 9; C: src/event.c).

CREATE TYPE card.event_type AS ENUM
    ('card.ordered', 'card.status_changed', 'card.activated', 'card.controls_updated',
     'authorization.approved', 'authorization.declined', 'authorization.captured',
     'authorization.reversed', 'authorization.expired', 'account.credited',
     'card.revealed', 'card.replaced', 'card.pin_blocked', 'card.pin_reset');

-- CACHE 1 (the default) matters: seq values are handed out in the order
-- transactions ask for them, which card.events_after relies on.
CREATE SEQUENCE card.event_seq;
SELECT pg_catalog.pg_extension_config_dump('card.event_seq', '');

-- Append-only: one row per change, written in the transaction of the change.
CREATE TABLE card.event (
    seq             bigint PRIMARY KEY DEFAULT pg_catalog.nextval('card.event_seq'::pg_catalog.regclass),
    occurred_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    type            card.event_type NOT NULL,
    card_id         uuid,
    account_id      uuid,
    programme_id    uuid,
    data            jsonb NOT NULL DEFAULT '{}'
);
ALTER SEQUENCE card.event_seq OWNED BY card.event.seq;
CREATE INDEX event_occurred_at_idx ON card.event (occurred_at);
SELECT pg_catalog.pg_extension_config_dump('card.event', '');
-- No statistics on what tenants write (1.7): the planner's estimates for a
-- query under row-level security come from every programme's rows, and
-- EXPLAIN would show another programme's most common values.
ALTER TABLE card.event ALTER data SET STATISTICS 0, ALTER type SET STATISTICS 0;
ALTER TABLE card.event ENABLE ROW LEVEL SECURITY;
CREATE POLICY programme_of_caller ON card.event
    USING (programme_id IN (SELECT card.visible_programmes()));
GRANT SELECT ON card.event TO card_reader;

CREATE FUNCTION card.event_append_only() RETURNS trigger
    AS 'MODULE_PATHNAME', 'card_event_append_only'
    LANGUAGE C
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION card.event_append_only() FROM PUBLIC;
CREATE TRIGGER event_append_only
    BEFORE UPDATE ON card.event
    FOR EACH ROW EXECUTE FUNCTION card.event_append_only();

-- Consumers that want retention to wait for them register their cursor.
-- A consumer belongs to the role that registered it; names are per role.
-- Those registered under 1.0 went to card_reader, the role that could: they
-- stay shared by the roles with card_reader's privileges (consumer_role).
CREATE TABLE card.event_consumer (
    name            text NOT NULL CHECK (name ~ '^[A-Za-z0-9_.-]{1,100}$'),
    cursor          bigint NOT NULL DEFAULT 0 CHECK (cursor >= 0),
    registered_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    acked_at        timestamptz,
    role_name       name NOT NULL,
    CONSTRAINT event_consumer_pkey PRIMARY KEY (role_name, name)
);
SELECT pg_catalog.pg_extension_config_dump('card.event_consumer', '');
ALTER TABLE card.event_consumer ENABLE ROW LEVEL SECURITY;
CREATE POLICY consumers_of_caller ON card.event_consumer
    USING (role_name = card.caller());

-- Writes one event in the current transaction (waking the feed's readers at
-- commit, and NOTIFY card_events when card.notify is on); returns its seq
-- (NULL when card.events is off).
CREATE FUNCTION card.event_emit(type card.event_type, card_id uuid, account_id uuid,
                                programme_id uuid, data jsonb)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'card_event_emit'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION card.event_emit(card.event_type, uuid, uuid, uuid, jsonb) FROM PUBLIC;

-- Events after a cursor, in seq order, never one that an event still in
-- flight could precede (see README: "Why events_after never skips"); with a
-- wait, a call that finds none sleeps until an event-writing transaction
-- commits, up to the wait.
CREATE FUNCTION card.events_after(cursor bigint, max integer DEFAULT 100,
                                  wait interval DEFAULT '0')
    RETURNS SETOF card.event
    AS 'MODULE_PATHNAME', 'card_events_after'
    LANGUAGE C VOLATILE STRICT ROWS 100
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION card.events_after(bigint, integer, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.events_after(bigint, integer, interval) TO card_reader;

-- Where a consumer may stand (1.7): at an event it may be shown, settled as
-- events_after settles the feed, or before one; further on it would
-- silently skip the events written after it, or still in flight below it.
-- Only the caller's programmes' events count (C: src/event.c).
CREATE FUNCTION card_internal.cursor_settled(cursor bigint)
    RETURNS boolean
    AS 'MODULE_PATHNAME', 'card_cursor_settled'
    LANGUAGE C VOLATILE STRICT
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION card_internal.cursor_settled(bigint) FROM PUBLIC;
CREATE FUNCTION card_internal.cursor_check(cursor bigint, field text)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT card_internal.cursor_settled(cursor) THEN
        RAISE EXCEPTION '% % is beyond the last event', field, cursor
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Acknowledge the seq of an event read from card.events_after(); a larger one would skip the events written after it.';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION card_internal.cursor_check(bigint, text) FROM PUBLIC;

-- Registers a consumer of the caller's, or finds it (idempotent).
CREATE FUNCTION card_internal.consumer_register(name text, start_after bigint DEFAULT 0)
    RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result bigint;
BEGIN
    IF name IS NULL OR start_after IS NULL THEN
        RAISE EXCEPTION '% is required', CASE WHEN name IS NULL THEN 'name' ELSE 'start_after' END
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF card.role_is_shared(card.caller()) THEN
        RAISE EXCEPTION 'a consumer cannot be registered acting as the shared role "%"', card.caller()
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Every tenant''s roles that hold it could move or drop it.',
                  HINT = 'Register it as your own role (RESET ROLE).';
    END IF;
    IF start_after < 0 THEN
        RAISE EXCEPTION 'start_after must not be negative'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Start after 0 to read the feed from its beginning.';
    END IF;
    IF name !~ '^[A-Za-z0-9_.-]{1,100}$' THEN
        RAISE EXCEPTION 'invalid consumer name "%"', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use 1 to 100 letters, digits, ".", "_" or "-".';
    END IF;
    PERFORM card_internal.cursor_check(start_after, 'start_after');
    INSERT INTO card.event_consumer AS c (role_name, name, cursor)
    VALUES (card.consumer_role(name), name, start_after)
    ON CONFLICT ON CONSTRAINT event_consumer_pkey DO NOTHING;
    SELECT c.cursor INTO result FROM card.event_consumer c WHERE c.role_name = card.consumer_role(consumer_register.name)
       AND c.name = consumer_register.name;
    RETURN result;
END
$$;
REVOKE ALL ON FUNCTION card_internal.consumer_register(text, bigint) FROM PUBLIC;
CREATE FUNCTION card.consumer_register(name text, start_after bigint DEFAULT 0)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.consumer_register(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.consumer_register(text, bigint) TO card_reader;

-- Stores how far a consumer of the caller's has read; a cursor never
-- moves back.  C since 1.10 (src/consumer.c): a consumer calls it after
-- every batch it reads.
CREATE FUNCTION card.consumer_ack(name text, cursor bigint)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'card_consumer_ack'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION card.consumer_ack(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.consumer_ack(text, bigint) TO card_reader;

-- Removes a consumer of the caller's.
CREATE FUNCTION card_internal.consumer_unregister(name text)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM card.event_consumer c
     WHERE c.role_name = card.consumer_role(consumer_unregister.name) AND c.name = consumer_unregister.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'consumer "%" is not registered', name USING ERRCODE = 'no_data_found';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION card_internal.consumer_unregister(text) FROM PUBLIC;
CREATE FUNCTION card.consumer_unregister(name text)
    RETURNS void
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.consumer_unregister(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.consumer_unregister(text) TO card_reader;

-- Deletes events older than before that every registered consumer has read,
-- of the programmes the caller sees (every consumer, whoever's, still holds
-- retention back); returns how many.
CREATE FUNCTION card_internal.events_prune(before timestamptz)
    RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    slowest bigint;
    pruned bigint;
BEGIN
    IF before IS NULL THEN
        RAISE EXCEPTION 'before is required' USING ERRCODE = 'not_null_violation';
    END IF;
    -- Lock the registry so that no consumer registers or falls behind meanwhile.
    LOCK TABLE card.event_consumer IN SHARE MODE;
    SELECT min(c.cursor) INTO slowest FROM card.event_consumer c;
    DELETE FROM card.event e
     WHERE e.occurred_at < before
       AND (slowest IS NULL OR e.seq <= slowest)
       AND (card.caller_sees_all() OR e.programme_id IN (SELECT card.visible_programmes()));
    GET DIAGNOSTICS pruned = ROW_COUNT;
    RETURN pruned;
END
$$;
REVOKE ALL ON FUNCTION card_internal.events_prune(timestamp with time zone) FROM PUBLIC;
CREATE FUNCTION card.events_prune(before timestamp with time zone)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.events_prune(timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.events_prune(timestamp with time zone) TO card_admin;

-- The role whose consumer of that name the caller works with: its own, or
-- else a 1.0 consumer it may share (card_reader's, if it has that role).
CREATE FUNCTION card.consumer_role(consumer text) RETURNS name
    LANGUAGE sql STABLE
RETURN CASE WHEN NOT EXISTS (SELECT 1 FROM card.event_consumer c
                              WHERE c.role_name = card.caller() AND c.name = consumer)
             AND EXISTS (SELECT 1 FROM card.event_consumer c
                          WHERE c.role_name = 'card_reader' AND c.name = consumer)
             AND card.caller_has_role('card_reader')
            THEN 'card_reader'::name
            ELSE card.caller() END;
REVOKE ALL ON FUNCTION card.consumer_role(text) FROM PUBLIC;
