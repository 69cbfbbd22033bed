\set ON_ERROR_STOP 1
-- The reference inside psql (issue 14): every public object of schema card
-- has a comment (src/comments.sql), so that \df+ card.* and \d+ card.cards
-- explain themselves.  Each check lists the objects without one, so a
-- failure names what to comment.  Only what PostgreSQL creates implicitly
-- is left out: array types, the row types of tables and views (they share
-- the relation's comment), the multirange of a range type, functions made
-- with another object (a range type's constructors) and system columns.
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS card;

BEGIN;
SELECT plan(10);

-- The checks below are not vacuous: the schema holds objects of each kind.
SELECT ok(
    (SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'card'::regnamespace) > 0
    AND (SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'card'::regnamespace AND c.relkind = 'r') > 0
    AND (SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'card'::regnamespace AND c.relkind = 'v') > 0
    AND (SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'card'::regnamespace AND c.relkind = 'S') > 0
    AND (SELECT count(*) FROM pg_type t WHERE t.typnamespace = 'card'::regnamespace AND t.typtype = 'e') > 0,
    'schema card holds functions, tables, views, sequences and enums (the checks below are not vacuous)');

SELECT is(
    ARRAY(SELECT n.nspname::text FROM pg_namespace n
           WHERE n.nspname IN ('card', 'card_internal')
             AND obj_description(n.oid, 'pg_namespace') IS NULL
           ORDER BY 1),
    '{}'::text[],
    'schemas card and card_internal have a comment');

-- Functions (every overload, named with its argument types) and
-- procedures, but those PostgreSQL made along with another object.
SELECT is(
    ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
           WHERE p.pronamespace = 'card'::regnamespace AND p.prokind IN ('f', 'a', 'w')
             AND obj_description(p.oid, 'pg_proc') IS NULL
             AND NOT EXISTS (SELECT 1 FROM pg_depend d
                              WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                                AND d.deptype = 'i')
           ORDER BY 1),
    '{}'::text[],
    'every function in schema card has a comment');

SELECT is(
    ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
           WHERE p.pronamespace = 'card'::regnamespace AND p.prokind = 'p'
             AND obj_description(p.oid, 'pg_proc') IS NULL
           ORDER BY 1),
    '{}'::text[],
    'every procedure in schema card has a comment');

-- Relations: tables (plain, partitioned, foreign), views (plain,
-- materialized) and sequences, those behind identity columns included.
SELECT is(
    ARRAY(SELECT c.oid::regclass::text FROM pg_class c
           WHERE c.relnamespace = 'card'::regnamespace AND c.relkind IN ('r', 'p', 'f')
             AND obj_description(c.oid, 'pg_class') IS NULL
           ORDER BY 1),
    '{}'::text[],
    'every table in schema card has a comment');

SELECT is(
    ARRAY(SELECT c.oid::regclass::text FROM pg_class c
           WHERE c.relnamespace = 'card'::regnamespace AND c.relkind IN ('v', 'm')
             AND obj_description(c.oid, 'pg_class') IS NULL
           ORDER BY 1),
    '{}'::text[],
    'every view in schema card has a comment');

SELECT is(
    ARRAY(SELECT c.oid::regclass::text FROM pg_class c
           WHERE c.relnamespace = 'card'::regnamespace AND c.relkind = 'S'
             AND obj_description(c.oid, 'pg_class') IS NULL
           ORDER BY 1),
    '{}'::text[],
    'every sequence in schema card has a comment');

-- Types: enums, domains, composite and range types, base types.  Not an
-- array type, not the row type of a table or view (only a standalone
-- composite type's row type is a type of its own), not the multirange
-- PostgreSQL makes for a range type.
SELECT is(
    ARRAY(SELECT t.oid::regtype::text FROM pg_type t
           WHERE t.typnamespace = 'card'::regnamespace
             AND obj_description(t.oid, 'pg_type') IS NULL
             AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid)
             AND (t.typrelid = 0
                  OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')
             AND NOT EXISTS (SELECT 1 FROM pg_range r WHERE r.rngmultitypid = t.oid)
           ORDER BY 1),
    '{}'::text[],
    'every type in schema card has a comment');

-- Columns of the tables and views (attnum > 0: no system column).
SELECT is(
    ARRAY(SELECT c.oid::regclass::text || '.' || quote_ident(a.attname)
            FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
           WHERE c.relnamespace = 'card'::regnamespace
             AND c.relkind IN ('r', 'p', 'f', 'v', 'm')
             AND a.attnum > 0 AND NOT a.attisdropped
             AND col_description(c.oid, a.attnum) IS NULL
           ORDER BY c.oid::regclass::text, a.attnum),
    '{}'::text[],
    'every column of every table and view in schema card has a comment');

-- The comments are read by anyone with psql: none may hold a sample PAN
-- (a run of 12 or more digits; the shortest PAN has 13).
SELECT is(
    ARRAY(SELECT pg_describe_object(d.classoid, d.objoid, d.objsubid)
            FROM pg_description d
           WHERE d.description ~ '[0-9]{12}'
             AND (   (d.classoid = 'pg_proc'::regclass
                      AND d.objoid IN (SELECT oid FROM pg_proc WHERE pronamespace = 'card'::regnamespace))
                  OR (d.classoid = 'pg_class'::regclass
                      AND d.objoid IN (SELECT oid FROM pg_class WHERE relnamespace = 'card'::regnamespace))
                  OR (d.classoid = 'pg_type'::regclass
                      AND d.objoid IN (SELECT oid FROM pg_type WHERE typnamespace = 'card'::regnamespace)))
           ORDER BY 1),
    '{}'::text[],
    'no comment in schema card holds a run of digits as long as a PAN');

SELECT * FROM finish();
ROLLBACK;
