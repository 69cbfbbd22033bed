-- The call generator.  Every function and procedure of schema card is read
-- from pg_proc (only trigger functions are left out: PostgreSQL refuses to
-- call them outside a trigger), so a new function is fuzzed without
-- editing anything here.  Randomness is random() after the driver's
-- setseed(): the same seed and the same catalog give the same calls.
\set ON_ERROR_STOP 1

-- The tenant of a fuzz role: 'a', 'b', or NULL (no programme).
CREATE FUNCTION fuzz.role_tenant(r name) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN r LIKE 'fuzz\_a\_%' THEN 'a' WHEN r LIKE 'fuzz\_b\_%' THEN 'b' END
$$;

CREATE FUNCTION fuzz.other(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE t WHEN 'a' THEN 'b' ELSE 'a' END
$$;

-- An integer in 0 .. n-1.
CREATE FUNCTION fuzz.rnd(n integer) RETURNS integer LANGUAGE sql AS $$ SELECT floor(random() * n)::integer $$;

-- Resolve the placeholders of a value (see values.sql) for tenant t; a
-- {role} is taken from role_t.  is_foreign: the value names an object of a
-- programme that the caller (of tenant caller_t) is not granted.
CREATE FUNCTION fuzz.resolve(expr text, t text, role_t text, caller_t text, OUT sql text, OUT is_foreign boolean)
LANGUAGE plpgsql AS $$
DECLARE
    m text[];
    ten text;
    n integer;
    repl text;
BEGIN
    sql := expr;
    is_foreign := false;
    sql := replace(sql, '{uuid}', md5(random()::text)::uuid::text);
    WHILE sql LIKE '%{rand}%' LOOP
        sql := regexp_replace(sql, '\{rand\}', (floor(random() * 4611686018427387903))::bigint::text);
    END LOOP;
    LOOP
        m := regexp_match(sql, '\{(X\.)?([a-z_]+)\}');
        EXIT WHEN m IS NULL;
        ten := CASE WHEN m[2] = 'role' THEN role_t WHEN m[1] IS NULL THEN t ELSE fuzz.other(t) END;
        SELECT count(*) INTO n FROM fuzz.fixture f WHERE f.tenant = ten AND f.kind = m[2];
        IF n = 0 THEN
            repl := 'NULL';
        ELSE
            repl := format('fuzz.fx(%L, %L, %s)', ten, m[2], 1 + fuzz.rnd(n));
            IF m[2] IN (SELECT kind FROM fuzz.ref_kind) AND ten IS DISTINCT FROM caller_t THEN
                is_foreign := true;
            END IF;
        END IF;
        sql := regexp_replace(sql, '\{(X\.)?([a-z_]+)\}', repl);
    END LOOP;
END $$;

-- One argument: an SQL expression of type typ for parameter pname of
-- function fn, called by a role of tenant caller_t.
--   mode 'general': 40% valid (own programme), 10% valid (the other
--                   programme), 10% NULL, 40% hostile
--   mode 'cross':   55% valid of the victim, 10% valid own, 7% NULL, 28% hostile
--   mode 'victim':  valid, of the victim (a call that passes validation,
--                   so that only the programme check stands in its way)
--   mode 'own':     valid, of the caller's own programme (reaches the code
--                   behind validation)
CREATE FUNCTION fuzz.arg(fn text, pname text, typ oid, mode text, caller_t text, victim text,
                         OUT expr text, OUT is_foreign boolean)
LANGUAGE plpgsql AS $$
DECLARE
    tname text := format_type(typ, NULL);
    own text := coalesce(caller_t, CASE WHEN random() < 0.5 THEN 'a' ELSE 'b' END);
    role_t text := coalesce(caller_t, 'o');
    t text;
    pool text;
    roll float8 := random();
    n integer;
    picked text;
    key text;
BEGIN
    is_foreign := false;
    IF mode = 'victim' THEN
        pool := 'valid'; t := victim;
    ELSIF mode = 'own' THEN
        pool := 'valid'; t := own;
    ELSIF mode = 'cross' THEN
        pool := CASE WHEN roll < 0.65 THEN 'valid' WHEN roll < 0.72 THEN 'null' ELSE 'hostile' END;
        t := CASE WHEN roll < 0.55 OR (roll >= 0.72 AND random() < 0.7) THEN victim ELSE own END;
    ELSE
        pool := CASE WHEN roll < 0.50 THEN 'valid' WHEN roll < 0.60 THEN 'null' ELSE 'hostile' END;
        t := CASE WHEN roll < 0.40 OR (roll >= 0.60 AND random() < 0.5) THEN own ELSE fuzz.other(own) END;
    END IF;
    -- Role names: a tenant's own roles, and in the cross phases the
    -- victim's too (programme_revoke(B, 'fuzz_b_api') by A); never another
    -- tenant's roles in the general phase, where granting one's own
    -- programme to them would be legitimate and blur the tenancy check.
    IF mode IN ('cross', 'victim') AND random() < 0.5 THEN
        role_t := victim;
    END IF;

    IF pool = 'null' THEN
        expr := 'NULL::' || tname;
        RETURN;
    END IF;
    IF pool = 'valid' THEN
        SELECT count(*) INTO n FROM fuzz.value v
         WHERE v.pool = 'valid' AND v.pname = arg.pname AND v.typ = tname AND (v.fn IS NULL OR v.fn = arg.fn);
        IF n > 0 THEN
            SELECT v.expr INTO picked FROM fuzz.value v
             WHERE v.pool = 'valid' AND v.pname = arg.pname AND v.typ = tname AND (v.fn IS NULL OR v.fn = arg.fn)
             ORDER BY v.id OFFSET fuzz.rnd(n) LIMIT 1;
        ELSIF (SELECT typtype FROM pg_type WHERE oid = typ) = 'e' THEN
            pool := 'hostile';        -- an enum: every label is valid
        ELSE
            pool := 'hostile';        -- nothing known for this name: fall back on the type
        END IF;
    END IF;
    IF pool = 'hostile' THEN
        IF (SELECT typtype FROM pg_type WHERE oid = typ) = 'e' THEN
            -- Every label, and now and then one that is not (22P02 from the parser).
            IF random() < 0.05 THEN
                picked := quote_literal('no_such_label');
            ELSE
                SELECT count(*) INTO n FROM pg_enum WHERE enumtypid = typ;
                SELECT quote_literal(enumlabel) INTO picked FROM pg_enum WHERE enumtypid = typ
                 ORDER BY enumsortorder OFFSET fuzz.rnd(n) LIMIT 1;
            END IF;
        ELSE
            key := CASE tname WHEN 'character varying' THEN 'text' WHEN 'json' THEN 'jsonb'
                              WHEN 'timestamp without time zone' THEN 'timestamp with time zone'
                              ELSE tname END;
            SELECT count(*) INTO n FROM fuzz.value v WHERE v.pool = 'hostile' AND v.typ = key;
            IF n = 0 THEN
                expr := 'NULL::' || tname;    -- a type the pools do not know (a composite, ...)
                RETURN;
            END IF;
            SELECT v.expr INTO picked FROM fuzz.value v WHERE v.pool = 'hostile' AND v.typ = key
             ORDER BY v.id OFFSET fuzz.rnd(n) LIMIT 1;
        END IF;
    END IF;
    SELECT r.sql, r.is_foreign INTO expr, is_foreign FROM fuzz.resolve(picked, t, role_t, caller_t) r;
    -- A reference counts as one where the function must take it as one: a
    -- value chosen for the parameter's name, a uuid (every uuid parameter
    -- names an object), or a JSON request naming objects.  Another
    -- programme's token passed as, say, a display name is just text.
    is_foreign := is_foreign AND (pool = 'valid' OR tname IN ('uuid', 'jsonb'));
    expr := '(' || expr || ')::' || tname;
END $$;

-- The input parameter names of a function (NULL where unnamed).
CREATE FUNCTION fuzz.in_names(p oid) RETURNS text[] LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(name ORDER BY ord), '{}')
      FROM pg_proc f,
           unnest(coalesce(f.proargnames, array_fill(NULL::text, ARRAY[coalesce(array_length(f.proallargtypes, 1), f.pronargs)])),
                  coalesce(f.proargmodes, array_fill('i'::"char", ARRAY[coalesce(array_length(f.proallargtypes, 1), f.pronargs)])))
             WITH ORDINALITY u(name, mode, ord)
     WHERE f.oid = p AND u.mode IN ('i', 'b', 'v')
$$;

-- One call as SQL: its meaningful result rows (not NULL, not false; a
-- void result counts, as '') are
-- counted, so the driver sees what succeeded without printing results
-- (a PAN from card_reveal never reaches the fuzzer's output).
CREATE FUNCTION fuzz.statement(p oid, args text[]) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN f.prokind = 'p' THEN format('CALL %s(%s)', p::regproc, array_to_string(args, ', '))
        -- a function returning a bare record cannot stand in FROM without a column list
        WHEN f.prorettype = 'record'::regtype AND f.proallargtypes IS NULL THEN
            format('SELECT count(*) FROM (SELECT %s(%s) AS x) s WHERE NOT (x IS NULL) AND x::text NOT IN (''false'', ''(f)'')',
                   p::regproc, array_to_string(args, ', '))
        ELSE
            format('SELECT count(*) FROM %s(%s) AS x WHERE NOT (x IS NULL) AND x::text NOT IN (''false'', ''(f)'')',
                   p::regproc, array_to_string(args, ', '))
        END
      FROM pg_proc f WHERE f.oid = p
$$;

-- Generate about `total` calls of every function by every role of `roles`
-- into fuzz.call.  Round 0 calls every (function, role) pair once; later
-- rounds call only the pairs the role may execute, and the others every
-- sixteenth round (they fail with 42501 before their arguments matter, so
-- more of them add little).  victim: the tenant attacked (cross phases).
CREATE FUNCTION fuzz.generate(phase text, roles name[], total integer, victim text DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    fns oid[];
    f oid;
    r name;
    made integer := 0;
    round integer := 0;
    next_id integer;
    names text[];
    types oid[];
    nargs integer;
    ndefaults integer;
    args text[];
    a record;
    is_foreign boolean;
    echo_ok boolean;
    mode text;
    base text;
    free text;
    shape float8;
    odd integer;
    i integer;
BEGIN
    SELECT array_agg(p.oid ORDER BY p.oid::regprocedure::text) INTO fns
      FROM pg_proc p
     WHERE p.pronamespace = 'card'::regnamespace
       AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype);
    SELECT coalesce(max(id), 0) + 1 INTO next_id FROM fuzz.call;
    <<rounds>>
    LOOP
        -- Each round in its own random order, so that the round cut short
        -- by the total is a fair sample rather than the first functions.
        FOR f, r IN SELECT u.f, v.r FROM unnest(fns) WITH ORDINALITY u(f, i), unnest(roles) WITH ORDINALITY v(r, j)
                     ORDER BY random(), u.i, v.j LOOP
            CONTINUE WHEN round % 16 <> 0 AND NOT has_function_privilege(r, f, 'EXECUTE');
            -- (an oidvector counts from 0: re-index it from 1)
            SELECT ARRAY(SELECT unnest(p.proargtypes::oid[])), p.pronargs, p.pronargdefaults
              INTO types, nargs, ndefaults
              FROM pg_proc p WHERE p.oid = f;
            names := fuzz.in_names(f);
            -- Now and then leave out trailing arguments that have defaults.
            IF ndefaults > 0 AND random() < 0.3 THEN
                nargs := nargs - 1 - fuzz.rnd(ndefaults);
            END IF;
            -- The shape of the call: every argument valid (of the
            -- caller's programme, or in the cross phases of the
            -- victim's), all valid but one (the classic mutation), or
            -- each argument drawn on its own.
            base := CASE WHEN phase = 'general' THEN 'own' ELSE 'victim' END;
            free := CASE WHEN phase = 'general' THEN 'general' ELSE 'cross' END;
            shape := random();
            odd := CASE WHEN shape < 0.25 THEN 0             -- all valid
                        WHEN shape < 0.60 THEN 1 + fuzz.rnd(greatest(nargs, 1))  -- one odd argument
                        ELSE -1 END;                          -- each on its own
            args := '{}';
            is_foreign := false;
            echo_ok := false;
            FOR i IN 1 .. nargs LOOP
                mode := CASE WHEN odd = -1 OR odd = i THEN free ELSE base END;
                a := fuzz.arg((SELECT proname FROM pg_proc WHERE oid = f), names[i], types[i], mode,
                              fuzz.role_tenant(r), victim);
                args := args || a.expr;
                is_foreign := is_foreign OR a.is_foreign;
                -- A secret put where no secret belongs may be quoted
                -- back ("invalid currency ..."): that is not a leak.
                echo_ok := echo_ok OR (a.expr ~ '(activation|reveal|reset)_token|''(act|rvl|pin)_|''(2468|1357|135790)'''
                                       AND coalesce(names[i], '') !~ '(token|pin)');
            END LOOP;
            -- The shard readers only read the value they are given (its
            -- version and bits, a token's marker) and look nothing up:
            -- another programme's id tells them no more than a made-up one.
            IF f IN ('card.shard_of(uuid)'::regprocedure, 'card.shard_of_token(text)'::regprocedure) THEN
                is_foreign := false;
            END IF;
            -- programme_adopt's id names the programme it makes: another
            -- programme's id there is a cross-tenant reference (it must
            -- fail), another kind of object's id is just a new value.
            IF f = 'card.programme_adopt(uuid,bytea,text,text,text,text,integer,integer,interval,interval)'::regprocedure
               AND args[1] !~ '''programme''' THEN
                is_foreign := false;
            END IF;
            INSERT INTO fuzz.call VALUES (next_id, phase, r, f, is_foreign, echo_ok, fuzz.statement(f, args));
            next_id := next_id + 1;
            made := made + 1;
            EXIT rounds WHEN made >= total;
        END LOOP;
        round := round + 1;
    END LOOP;
    RETURN made;
END $$;
