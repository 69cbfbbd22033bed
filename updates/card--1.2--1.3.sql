/* card--1.2--1.3.sql: the SQL sources per concept (issue 11) */

\echo Use "ALTER EXTENSION card UPDATE TO '1.3'" to load this file. \quit

-- A new PAN's programme is checked in C, with the row the order or the
-- replacement reads anyway (src/pan.c, card_pan_length_refuse), rather
-- than by a PL/pgSQL function called from inside their INSERTs: no
-- PL/pgSQL runs inside a statement of a hot path (README, design notes).
-- The refusal is the same (55000, after the idempotent replay).
DROP FUNCTION card.programme_for_new_card(uuid);
