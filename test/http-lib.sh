# Set-up shared by test/server.sh, test/server-load.sh and bench/server:
# a database with the extension, the clients' roles and their bearer
# tokens, and card-server on a free loopback port of its own.  Source it
# with PGHOST/PGPORT/PGUSER naming a superuser of the cluster and $work a
# scratch directory; http_cleanup undoes everything.
server=${CARD_SERVER:-server/card-server}
server_pid=
http_roles="http_server, http_server2, http_a, http_b, http_a_proc, http_reader, http_nogrant, http_pages"

# Tokens: random, given to the client, stored only as SHA-256 hashes.
http_token() { od -An -tx1 -N24 /dev/urandom | tr -d ' \n'; }
http_sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

# http_setup DB: the database, roles, two programmes (prog_a, prog_b) and
# tokens (tok_a, tok_b: admin+api+reader of A or B; tok_proc: processor of
# A; tok_reader: reader of A; tok_nogrant: no programme) in $work/tokens.
http_setup() {
    db=$1
    tok_a=$(http_token) tok_b=$(http_token) tok_proc=$(http_token)
    tok_reader=$(http_token) tok_nogrant=$(http_token)
    createdb "$db"
    psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<SQL
CREATE EXTENSION card;
SET client_min_messages = warning;
DROP ROLE IF EXISTS $http_roles;
RESET client_min_messages;
-- The clients' roles, as a programme operator would make them.
CREATE ROLE http_a IN ROLE card_admin, card_api, card_reader;
CREATE ROLE http_b IN ROLE card_admin, card_api, card_reader;
CREATE ROLE http_a_proc IN ROLE card_processor;
CREATE ROLE http_reader IN ROLE card_reader;
CREATE ROLE http_nogrant IN ROLE card_admin, card_api, card_reader;
CREATE ROLE http_pages IN ROLE card_hosted_pages;
-- The server logs in as a role with no privilege of its own, able to
-- become each client's role.
CREATE ROLE http_server LOGIN NOINHERIT;
GRANT http_a, http_b, http_a_proc, http_reader, http_nogrant, http_pages TO http_server;
SELECT card.programme_create('HTTP A', '45671235') AS a \gset
SELECT card.programme_create('HTTP B', '41111115') AS b \gset
SELECT card.programme_grant(:'a', 'http_a'), card.programme_grant(:'b', 'http_b'),
       card.programme_grant(:'a', 'http_a_proc'), card.programme_grant(:'a', 'http_reader'),
       card.programme_grant(:'a', 'http_pages'), card.programme_grant(:'b', 'http_pages');
SQL
    prog_a=$(psql -X -A -t -q -d "$db" -c "SELECT id FROM card.programme WHERE name = 'HTTP A'")
    prog_b=$(psql -X -A -t -q -d "$db" -c "SELECT id FROM card.programme WHERE name = 'HTTP B'")
    {
        echo "# role sha256(token)"
        echo "http_a $(http_sha "$tok_a")"
        echo "http_b $(http_sha "$tok_b")"
        echo "http_a_proc $(http_sha "$tok_proc")"
        echo "http_reader $(http_sha "$tok_reader")"
        echo "http_nogrant $(http_sha "$tok_nogrant")"
    } >"$work/tokens"
}

# http_start [WRAPPER...] -- [SERVER OPTIONS...]: card-server on a free
# port (under WRAPPER, such as valgrind, if given); sets base, server_pid.
http_start() {
    local wrapper=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do wrapper+=("$1"); shift; done
    [ "${1:-}" = -- ] && shift
    rm -f "$work/port"
    ${wrapper[@]+"${wrapper[@]}"} "$server" --listen 127.0.0.1:0 --port-file "$work/port" \
        --tokens "$work/tokens" --pages-role http_pages \
        --database "host=$PGHOST port=$PGPORT dbname=$db user=http_server" "$@" 2>"$work/server.log" &
    server_pid=$!
    for _ in $(seq 600); do [ -s "$work/port" ] && break; sleep 0.05; done
    [ -s "$work/port" ] || { tail -5 "$work/server.log"; return 1; }
    base="http://127.0.0.1:$(cat "$work/port")"
}

# http_stop: SIGTERM; returns the server's exit status.
http_stop() {
    local rc=0
    [ -n "$server_pid" ] || return 0
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" || rc=$?
    server_pid=
    return $rc
}

http_cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    [ -n "${db:-}" ] && dropdb --if-exists "$db" 2>/dev/null || true
    psql -X -q -d postgres -c "DROP ROLE IF EXISTS $http_roles" 2>/dev/null || true
}

# http_load_data N: N funded accounts of programme A, each with an active
# card, for load runs: tables bench_http_account (n, account_id,
# individual_id) and bench_http_card (n, token), readable by A's roles; the
# same as Lua tables in $work/accounts.lua and $work/cards.lua for wrk.
http_load_data() {
    psql -X -q -v ON_ERROR_STOP=1 -d "$db" -v n="$1" -v prog="$prog_a" >/dev/null <<'SQL'
SET bench.prog = :'prog';
SET bench.n = :n;
CREATE TABLE bench_http_account (n integer PRIMARY KEY, account_id uuid, individual_id uuid);
CREATE TABLE bench_http_card (n integer PRIMARY KEY, token text);
DO $$
DECLARE
    prog uuid := current_setting('bench.prog')::uuid;
    holder uuid; acct uuid; c uuid; link text;
BEGIN
    FOR i IN 1 .. current_setting('bench.n')::integer LOOP
        holder := card.individual_create(prog, 'Load holder ' || i);
        acct := card.account_open(prog, holder, 'EUR');
        PERFORM card.account_credit(acct, 1000000000000, 'load-' || i);
        INSERT INTO bench_http_account VALUES (i, acct, holder);
        c := (card.card_order(holder, acct, 'Load card ' || i)).id;
        SELECT substring(redirect_url FROM 'token=(.*)$') INTO link
          FROM card.card_activation_start(c, 'https://app.example.test/');
        PERFORM card.card_activation_complete(link, '2468');
        INSERT INTO bench_http_card SELECT i, token FROM card.card WHERE id = c;
    END LOOP;
END $$;
GRANT SELECT ON bench_http_account TO http_a;
GRANT SELECT ON bench_http_card TO http_a_proc;
ANALYZE;
SQL
    psql -X -A -t -q -d "$db" -c "SELECT '{' || string_agg(format('{%L, %L}', account_id, individual_id), ', ') || '}'
                                    FROM bench_http_account" | sed "s/^/return /; s/'/\"/g" >"$work/accounts.lua"
    psql -X -A -t -q -d "$db" -c "SELECT '{' || string_agg(format('%L', token), ', ') || '}' FROM bench_http_card" \
        | sed "s/^/return /; s/'/\"/g" >"$work/cards.lua"
}

# http_wrk SCRIPT SECONDS CONNECTIONS: wrk against $base; prints
# "<requests/s> <requests> <errors>" (errors: non-2xx answers and socket errors).
http_wrk() {
    local out
    out=$(HTTP_ACCOUNTS=$work/accounts.lua HTTP_CARDS=$work/cards.lua \
          HTTP_TOKEN=$([ "$1" = authorize ] && echo "$tok_proc" || echo "$tok_a") \
          wrk -t 2 -c "$3" -d "$2s" -s "bench/http/$1.lua" "$base" 2>&1)
    echo "$out" >>"$work/wrk.log"
    awk '/^Requests\/sec:/ { rps = $2 }
         /requests in/ { n = $1 }
         /Non-2xx or 3xx responses:/ { e += $NF }
         /Socket errors:/ { for (i = 3; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) { v = $i; sub(",", "", v); e += v } }
         END { printf "%.0f %d %d\n", rps, n, e }' <<<"$out"
}
