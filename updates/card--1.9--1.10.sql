/* card--1.9--1.10.sql: the feed's acknowledgement in C (issue 12) */

\echo Use "ALTER EXTENSION card UPDATE TO '1.10'" to load this file. \quit

-- card.consumer_ack runs after every batch a consumer reads; its PL/pgSQL
-- body planned card.consumer_role() twice per call.  The C function
-- (src/consumer.c) keeps the rule, the errors and the privileges.
CREATE OR REPLACE FUNCTION card.consumer_ack(name text, cursor bigint)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'card_consumer_ack'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;
DROP FUNCTION card_internal.consumer_ack(text, bigint);
