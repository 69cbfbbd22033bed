-- The fuzzer's own objects in card_fuzz (schema fuzz), created by the
-- superuser before the tenants' data.  Nothing here is part of the extension.
--
--   fuzz.fixture    the valid ids, tokens and names of each tenant, so that a
--                   generated call names them as fuzz.fx('b', 'card', 3)
--                   instead of carrying a secret (a one-time token) in its
--                   SQL text: the reproduction of a failure is then safe to
--                   print, and runs as-is in the kept database (FUZZ_KEEP=1).
--   fuzz.call       every generated call, fuzz.result its outcome,
--   fuzz.message    what the server said (errors, notices), line by line.
--   fuzz.snapshot() a digest of one tenant's rows in every table of card.
\set ON_ERROR_STOP 1
CREATE EXTENSION card;
CREATE SCHEMA fuzz;

-- tenant: 'a', 'b', or 'o' (the two roles of no programme)
CREATE TABLE fuzz.fixture (
    tenant text NOT NULL,
    kind text NOT NULL,
    n integer NOT NULL,
    v text NOT NULL,
    PRIMARY KEY (tenant, kind, n)
);

-- A fixture by tenant, kind and number (1-based); NULL if there is none.
CREATE FUNCTION fuzz.fx(t text, k text, i integer) RETURNS text
LANGUAGE sql STABLE AS $$ SELECT v FROM fuzz.fixture WHERE tenant = t AND kind = k AND n = i $$;

-- Store a fixture under the next number of its kind.
CREATE FUNCTION fuzz.keep(t text, k text, value text) RETURNS text LANGUAGE sql AS $$
    INSERT INTO fuzz.fixture
    SELECT t, k, coalesce(max(n), 0) + 1, value FROM fuzz.fixture WHERE tenant = t AND kind = k
    RETURNING v
$$;

-- The token of a hosted-page link (the last query parameter of redirect_url).
CREATE FUNCTION fuzz.link_token(redirect_url text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT substring(redirect_url FROM 'token=(.*)$') $$;

-- Generated calls and their outcomes.
CREATE TABLE fuzz.call (
    id integer PRIMARY KEY,
    phase text NOT NULL,          -- cross-a (tenant A attacked), cross-b, general
    role name NOT NULL,           -- the login role that makes the call
    fn regprocedure NOT NULL,
    foreign_ref boolean NOT NULL, -- an argument is a valid id/token of a programme the role is not granted
    echo_ok boolean NOT NULL,     -- a one-time token or PIN went into a parameter that is not secret
                                  -- (a currency, a consumer name): a message may quote it back
    stmt text NOT NULL
);
CREATE TABLE fuzz.result (
    id integer PRIMARY KEY,
    sqlstate text NOT NULL,       -- 00000 on success; LOST when the connection died during the call
    meaningful bigint             -- result rows other than NULL or false
);
CREATE TABLE fuzz.message (id integer, line text);

-- SQLSTATEs a call may end with, and why each is acceptable.
CREATE TABLE fuzz.allowed (sqlstate text PRIMARY KEY, why text NOT NULL);
INSERT INTO fuzz.allowed VALUES
    ('00000', 'success'),
    ('P0002', 'DESIGN 7: unknown object, or one of a programme the caller does not see'),
    ('55000', 'DESIGN 7: forbidden transition, used/expired token, state not allowing the call'),
    ('22023', 'DESIGN 7: invalid field value'),
    ('23502', 'DESIGN 7: missing field'),
    ('23505', 'DESIGN 7 / README: idempotency key, credit reference, external_id, programme name reused'),
    ('42501', 'DESIGN 7 / README: no privilege (EXECUTE revoked, a security-restricted operation, '
              'programme_grant to a role the caller does not control)'),
    ('2D000', 'README: CALL card.rotate_keys() inside a transaction block'),
    ('54000', 'README: no unused PAN in 16 attempts (a fuzzed BIN range is tiny)'),
    ('F0000', 'README: key file unusable'),
    ('58P01', 'README: key file missing'),
    ('22P02', 'README: PostgreSQL''s own, a value that is not a uuid or enum label in a typed call'),
    ('42704', 'README: programme_grant or programme_revoke to a role that does not exist'),
    ('53400', 'README: no free background worker slot to count a reissue''s PIN try'),
    ('55P03', 'README: a reissue''s PIN try could not be counted within 5 s (its chain locked elsewhere)'),
    ('40001', 'README: the card changed between the count of a reissue''s PIN try and its activation'),
    -- Not 40P01: since 1.2 one lock order per chain means no deadlock (README,
    -- "in 1.1 ... deadlocked with 40P01"), so a deadlock here is a finding.
    ('54001', 'PostgreSQL''s own stack guard: the fuzzer''s 100,000-deep JSON literal is refused by the '
              'jsonb parser before any call (a clean error, never a crash)'),
    ('57014', 'README: events_after asked to wait 30 minutes for an event and the fuzzer''s statement '
              'timeout ended the wait (only for that call; any other 57014 is a hang)');

-- The rows of tenant t in every table of schema card and every other table
-- of the extension, one digest per table.
-- A table is tied to a programme by its programme_id column, else by the
-- card or account it names; event_consumer by the tenant's role names.  A
-- table with none of these is reported as not covered (a new table that
-- the snapshot should learn about), never silently skipped.
CREATE FUNCTION fuzz.snapshot(t text) RETURNS TABLE(tbl text, nrows bigint, digest text)
LANGUAGE plpgsql AS $$
DECLARE
    prog uuid := fuzz.fx(t, 'programme', 1)::uuid;
    r record;
    cond text;
BEGIN
    FOR r IN
        SELECT c.oid::regclass AS rel, c.relname, c.oid::regclass::text AS label,
               array_agg(a.attname::text) AS cols
          FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         WHERE c.relkind IN ('r', 'p')
           AND (c.relnamespace = 'card'::regnamespace
                OR EXISTS (SELECT FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                            WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                              AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
                              AND e.extname = 'card'))
         GROUP BY c.oid, c.relname ORDER BY 3
    LOOP
        cond := NULL;
        IF 'programme_id' = ANY (r.cols) THEN
            cond := format('programme_id = %L', prog);
        ELSIF r.relname = 'programme' THEN
            cond := format('id = %L', prog);
        ELSIF r.relname = 'event_consumer' THEN
            cond := format('role_name IN (SELECT v FROM fuzz.fixture WHERE tenant = %L AND kind = %L)', t, 'role');
        ELSE
            IF 'card_id' = ANY (r.cols) THEN
                cond := format('card_id IN (SELECT id FROM card.card WHERE programme_id = %L)', prog);
            END IF;
            IF 'account_id' = ANY (r.cols) THEN
                cond := concat_ws(' OR ', cond,
                    format('account_id IN (SELECT id FROM card.account WHERE programme_id = %L)', prog));
            END IF;
        END IF;
        tbl := r.label;
        IF cond IS NULL THEN
            nrows := NULL;
            digest := 'not covered';
        ELSE
            EXECUTE format('SELECT count(*), md5(coalesce(string_agg(x::text, %L ORDER BY x::text), %L))
                              FROM %s x WHERE %s', E'\n', '', r.rel, cond)
               INTO nrows, digest;
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;

-- The money invariants of the README (Money model), on every account: each
-- row returned is a broken invariant.
\set money_view fuzz.money_accounts
\ir ../include/money_accounts.sql
CREATE FUNCTION fuzz.money_invariants() RETURNS TABLE(account_id uuid, problem text)
LANGUAGE sql AS $$
    WITH a AS (SELECT * FROM fuzz.money_accounts)
    SELECT id, format('held %s <> pending holds %s', held, pending_holds) FROM a WHERE held <> pending_holds
    UNION ALL
    SELECT id, format('balance %s <> credits - captures %s', balance, credits_minus_captures)
      FROM a WHERE balance <> credits_minus_captures
    UNION ALL
    SELECT id, format('available %s < 0', balance - held) FROM a WHERE balance - held < 0
$$;
