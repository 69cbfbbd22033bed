/* card--1.4--1.5.sql: the live feed wakes its readers without NOTIFY (issue 12) */

\echo Use "ALTER EXTENSION card UPDATE TO '1.5'" to load this file. \quit

-- events_after takes a wait: a call that finds nothing sleeps until an
-- event-writing transaction commits (shared memory, src/wakeup.c), so
-- writers need not NOTIFY (card.notify is now off by default).  Calls with
-- two arguments keep working.
DROP FUNCTION card.events_after(bigint, integer);
CREATE FUNCTION card.events_after(cursor bigint, max integer DEFAULT 100,
                                  wait interval DEFAULT '0')
    RETURNS SETOF card.event
    AS 'MODULE_PATHNAME', 'card_events_after'
    LANGUAGE C VOLATILE STRICT ROWS 100
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION card.events_after(bigint, integer, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.events_after(bigint, integer, interval) TO card_reader;
