-- The proxy's functions, generated from a shard's catalog (scale-out,
-- issue 15; scripts/shards runs it on shard 0 and feeds its output to the
-- proxy).  Every function of schema card that a capability role may call
-- gets a PL/Proxy function of the same name, arguments (with their
-- defaults) and result, routed by what it names:
--   a card, account, authorisation, individual or PIN check id: the shard
--     that made it (card_proxy.shard_of);
--   a card or link token: the shard its marker names (card_proxy.shard_of_token);
--   a JSON request: the id or token field that names its data;
--   a new cardholder: any shard (RUN ON ANY);
--   the same answer everywhere (the lifecycle table, the caller's own
--     questions): shard 0.
-- Functions that act on every shard run there all (RUN ON ALL, through a
-- set-returning function in schema card_proxy) and answer one value:
-- grants and revokes whether any shard changed, sweeps the sum of their
-- counts; programme_create makes the programme on shard 0 and then adopts
-- it, with its id and shard 0's seal of it, on every shard
-- (card.programme_adopt, which makes nothing without that seal).  The feed across
-- shards is scripts/proxy-feed.sql; the views read every shard's rows.
-- Output: one DDL statement per row, for psql -At.
\set ON_ERROR_STOP 1
\set QUIET on

-- The GRANTs of a function to the capability roles that may call it (NULL:
-- none may), on the proxy's function of that name or on target (a
-- qualified name: a helper the function's caller runs through), and the
-- names of its input arguments (TABLE and OUT columns route nothing and
-- are passed nothing).
CREATE FUNCTION pg_temp.proxy_grants(f oid, target text DEFAULT NULL) RETURNS text LANGUAGE sql STABLE
RETURN (SELECT string_agg(format('GRANT EXECUTE ON FUNCTION %s(%s) TO %I;',
                                 coalesce(target, 'card.' || quote_ident(p.proname)),
                                 pg_get_function_identity_arguments(f), r), E'\n')
          FROM pg_proc p, unnest(ARRAY['card_admin', 'card_api', 'card_processor',
                                       'card_hosted_pages', 'card_reader']::name[]) r
         WHERE p.oid = f AND has_function_privilege(r, f, 'EXECUTE'));
CREATE FUNCTION pg_temp.proxy_inputs(f oid) RETURNS text[] LANGUAGE sql STABLE
RETURN ARRAY(SELECT a.name
               FROM pg_proc p,
                    unnest(coalesce(p.proargnames, '{}'),
                           coalesce(p.proargmodes, array_fill('i'::"char",
                                    ARRAY[cardinality(coalesce(p.proargnames, '{}'))]))) WITH ORDINALITY a(name, mode, o)
              WHERE p.oid = f AND a.mode IN ('i', 'b', 'v') ORDER BY a.o);
-- Those names as the arguments of a call.
CREATE FUNCTION pg_temp.proxy_call_args(f oid) RETURNS text LANGUAGE sql STABLE
RETURN (SELECT string_agg(quote_ident(n), ', ' ORDER BY o)
          FROM unnest(pg_temp.proxy_inputs(f)) WITH ORDINALITY a(n, o));

-- The types the functions take and return: the enums, and the row types of
-- the views and tables they return (card.cards, card.event), as composite
-- types with the same columns.
SELECT format('CREATE TYPE %s AS ENUM (%s);', t.oid::regtype,
              string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder))
  FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
 WHERE t.typnamespace = 'card'::regnamespace
 GROUP BY t.oid ORDER BY t.oid;
SELECT format('CREATE TYPE %s AS (%s);', c.oid::regclass,
              string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', '
                         ORDER BY a.attnum))
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relnamespace = 'card'::regnamespace AND c.relkind <> 'v'
   AND c.reltype IN (SELECT p.prorettype FROM pg_proc p WHERE p.pronamespace = 'card'::regnamespace)
 GROUP BY c.oid ORDER BY c.oid;

-- The views (card.cards, card.balances, ...): every shard's rows, read
-- with RUN ON ALL as the caller (so each shard's row-level security
-- applies), in no particular order (a query orders what it needs).  Each
-- view's row type is also the result type of the functions that return
-- it (card_order returns card.cards), as on a shard.  A caller reads the
-- views, not the functions under them: PL/Proxy keeps one result per
-- cluster, and two of its set-returning functions side by side in one
-- select list mix or cut each other's rows (a view's function scan reads
-- all its rows first).  A view needs its caller to hold EXECUTE on the
-- functions it calls, so the roles that may read a view may call its
-- function too: each shard's row-level security applies either way.
SELECT format(E'CREATE TYPE card_proxy.%1$I AS (%2$s);\n'
              'CREATE FUNCTION card_proxy.%1$I()\n    RETURNS SETOF card_proxy.%1$I\n    LANGUAGE plproxy\nAS $proxy$\n'
              '    CLUSTER ''card'';\n    RUN ON ALL;\n    SELECT %3$s FROM card.%1$I;\n$proxy$;\n'
              'REVOKE ALL ON FUNCTION card_proxy.%1$I() FROM PUBLIC;\n'
              'CREATE VIEW card.%1$I WITH (security_invoker) AS SELECT * FROM card_proxy.%1$I();\n'
              'REVOKE ALL ON card.%1$I FROM PUBLIC;\n%4$s',
              c.relname,
              string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', '
                         ORDER BY a.attnum),
              string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum),
              (SELECT string_agg(format(E'GRANT EXECUTE ON FUNCTION card_proxy.%1$I() TO %2$I;\n'
                                        'GRANT SELECT ON card.%1$I TO %2$I;', c.relname, r), E'\n')
                 FROM unnest(ARRAY['card_admin', 'card_api', 'card_processor',
                                   'card_hosted_pages', 'card_reader']::name[]) r
                WHERE has_table_privilege(r, c.oid, 'SELECT')))
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relnamespace = 'card'::regnamespace AND c.relkind = 'v'
 GROUP BY c.oid ORDER BY c.relname;
WITH fn AS (
    SELECT p.oid, p.proname, pg_temp.proxy_inputs(p.oid) AS proargnames,
           pg_get_function_arguments(p.oid) AS args,
           pg_get_function_result(p.oid) AS result,
           pg_temp.proxy_grants(p.oid) AS grants
      FROM pg_proc p
     WHERE p.pronamespace = 'card'::regnamespace
       AND p.proname NOT IN ('shard', 'shard_of', 'shard_of_token', 'new_id')
), routed AS (
    SELECT fn.*,
           CASE
             WHEN 'card_id' = ANY (proargnames) THEN 'card_proxy.shard_of(card_id)'
             WHEN 'authorization_id' = ANY (proargnames) THEN 'card_proxy.shard_of(authorization_id)'
             WHEN 'check_id' = ANY (proargnames) THEN 'card_proxy.shard_of(check_id)'
             WHEN 'account_id' = ANY (proargnames) THEN 'card_proxy.shard_of(account_id)'
             WHEN proname = 'account_open' AND 'individual_id' = ANY (proargnames)
               THEN 'card_proxy.shard_of(individual_id)'
             WHEN 'card_token' = ANY (proargnames) THEN 'card_proxy.shard_of_token(card_token)'
             WHEN 'activation_token' = ANY (proargnames) THEN 'card_proxy.shard_of_token(activation_token)'
             WHEN 'reveal_token' = ANY (proargnames) THEN 'card_proxy.shard_of_token(reveal_token)'
             WHEN 'reset_token' = ANY (proargnames) THEN 'card_proxy.shard_of_token(reset_token)'
             WHEN proname = 'card_order' AND 'request' = ANY (proargnames)
               THEN 'card_proxy.shard_of_field(request, ''account_id'')'
             WHEN proname = 'account_open' AND 'request' = ANY (proargnames)
               THEN 'card_proxy.shard_of_field(request, ''individual_id'')'
             WHEN proname = 'card_authorize' AND 'request' = ANY (proargnames)
               THEN 'card_proxy.shard_of_token_field(request, ''card_token'')'
             WHEN proname = 'individual_create' THEN 'ANY'
             WHEN proname IN ('card_status_transitions', 'effective_status', 'caller', 'caller_sees_all',
                              'caller_has_role', 'programme_visible', 'visible_programmes', 'programme_seal')
               THEN '0'
             WHEN proname = 'pan_key_versions' THEN 'ALL'
           END AS route
      FROM fn
)
SELECT format(E'CREATE FUNCTION card.%I(%s)\n    RETURNS %s\n    LANGUAGE plproxy\nAS $proxy$\n    CLUSTER ''card'';\n    RUN ON %s;\n$proxy$;\nREVOKE ALL ON FUNCTION card.%I(%s) FROM PUBLIC;\n%s',
              proname, args, result, route, proname, pg_get_function_identity_arguments(oid), grants)
  FROM routed
 WHERE route IS NOT NULL AND grants IS NOT NULL
 ORDER BY proname, oid;

-- On every shard, one answer: the aggregate of each shard's.
WITH everywhere(proname, agg) AS (
    VALUES ('programme_grant', 'bool_or(r)'), ('programme_revoke', 'bool_or(r)'),
           ('programme_adopt', '(array_agg(r))[1]'), ('card_expire_due', 'sum(r)'),
           ('authorization_expire_due', 'sum(r)'), ('events_prune', 'sum(r)')
)
SELECT format(E'CREATE FUNCTION card_proxy.%1$I_all(%2$s)\n    RETURNS SETOF %3$s\n    LANGUAGE plproxy\nAS $proxy$\n    CLUSTER ''card'';\n    RUN ON ALL;\n    TARGET card.%1$I;\n$proxy$;\n'
              'REVOKE ALL ON FUNCTION card_proxy.%1$I_all(%2$s) FROM PUBLIC;\n%8$s\n'
              'CREATE FUNCTION card.%1$I(%4$s)\n    RETURNS %3$s\n    LANGUAGE sql\nRETURN (SELECT (%5$s)::%3$s FROM card_proxy.%1$I_all(%6$s) r);\n'
              'REVOKE ALL ON FUNCTION card.%1$I(%2$s) FROM PUBLIC;\n%7$s',
              p.proname, pg_get_function_identity_arguments(p.oid), pg_get_function_result(p.oid),
              pg_get_function_arguments(p.oid), e.agg, pg_temp.proxy_call_args(p.oid),
              pg_temp.proxy_grants(p.oid),
              pg_temp.proxy_grants(p.oid, 'card_proxy.' || quote_ident(p.proname || '_all')))
  FROM pg_proc p JOIN everywhere e USING (proname)
 WHERE p.pronamespace = 'card'::regnamespace
 ORDER BY p.proname;

-- programme_create: made on shard 0 (its checks, its id), then adopted with
-- that id on every shard.  Not atomic across shards: if a shard fails, the
-- programme exists where it was made and card.programme_adopt through the
-- proxy, with the same arguments, completes it (a second adopt is a no-op).
SELECT format(E'CREATE FUNCTION card_proxy.programme_create_first(%1$s)\n    RETURNS uuid\n    LANGUAGE plproxy\nAS $proxy$\n    CLUSTER ''card'';\n    RUN ON 0;\n    TARGET card.programme_create;\n$proxy$;\n'
              'CREATE FUNCTION card.programme_create(%2$s)\n    RETURNS uuid\n    LANGUAGE plpgsql\nAS $body$\nDECLARE\n    made uuid;\nBEGIN\n'
              '    made := card_proxy.programme_create_first(%3$s);\n'
              '    PERFORM card.programme_adopt(made, card.programme_seal(made), %3$s);\n    RETURN made;\nEND\n$body$;\n'
              'REVOKE ALL ON FUNCTION card.programme_create(%1$s) FROM PUBLIC;\n%4$s\n'
              'REVOKE ALL ON FUNCTION card_proxy.programme_create_first(%1$s) FROM PUBLIC;\n%5$s',
              pg_get_function_identity_arguments(p.oid), pg_get_function_arguments(p.oid),
              pg_temp.proxy_call_args(p.oid), pg_temp.proxy_grants(p.oid),
              pg_temp.proxy_grants(p.oid, 'card_proxy.programme_create_first'))
  FROM pg_proc p
 WHERE p.oid = 'card.programme_create(text, text, text, text, integer, integer, interval, interval)'::regprocedure;
