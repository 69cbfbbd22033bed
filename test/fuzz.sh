#!/usr/bin/env bash
# Fuzzing (issue 10): every function of schema card, read from the catalog,
# called as every role with hostile arguments, against the cluster that
# PGHOST/PGPORT/PGUSER name (a superuser; scripts/lib.sh cluster_start makes
# one, with trust authentication: the fuzzer also logs in as the login roles
# it creates, fuzz_*, without a password).  Then sqlsmith, as a tenant's
# login role.  Drops its database (card_fuzz) and roles at the end.
# Exits non-zero when
#   - a call fails with an SQLSTATE that is not documented (DESIGN.md
#     section 7, README "Errors"; the list is fuzz.allowed in
#     test/fuzz/schema.sql), or with XX000 (internal error),
#   - a backend crashes, the postmaster restarts, or a session dies,
#   - a call hangs (57014 after the statement timeout, or no answer at all),
#   - a role reaches another programme: a call naming the other tenant's
#     ids or tokens succeeds with a result, the victim's rows change while
#     only the attacker's roles run, or the role with no grant succeeds,
#   - a message (error, notice) carries a secret: a one-time token, a PAN,
#     a PIN or a key,
#   - the money invariants of the README break.
#
# Usage: test/fuzz.sh [--long]
#   FUZZ_CALLS      calls in total (default 6000; --long: 200000)
#   FUZZ_SEED       seed of the generator (default 1; --long: random); printed
#   FUZZ_SQLSMITH   sqlsmith queries (default 1000; --long: 100000; 0 skips it)
#   FUZZ_TIMEOUT    statement timeout of each call in seconds (default 5)
#   FUZZ_KEEP=1     keep database card_fuzz and the fuzz roles, to reproduce
#                   a failure: each is printed as the statement that makes it
#                   and the role to run it as (psql -U <role> -d card_fuzz);
#                   its arguments name fixtures (fuzz.fx('b', 'card', 3)), so
#                   no secret is printed
#   FUZZ_SERVER_LOG the server's log file (default $CARD_DIR/server.log)
#   FUZZ_PLANT      an SQL file run as superuser after the set-up: a negative
#                   control (say, a deliberately broken function in schema
#                   card) to check that the fuzzer catches what it should
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PGHOST:?PGHOST must name the cluster}" "${PGPORT:?PGPORT must name the cluster}"

long=0
for arg in "$@"; do
    case $arg in
        --long) long=1 ;;
        *) echo "usage: $0 [--long]" >&2; exit 2 ;;
    esac
done
if [ $long = 1 ]; then
    calls=${FUZZ_CALLS:-200000}
    seed=${FUZZ_SEED:-$((RANDOM * 32768 + RANDOM))}
    smith_queries=${FUZZ_SQLSMITH:-100000}
else
    calls=${FUZZ_CALLS:-6000}
    seed=${FUZZ_SEED:-1}
    smith_queries=${FUZZ_SQLSMITH:-1000}
fi
timeout_s=${FUZZ_TIMEOUT:-5}
db=card_fuzz
server_log=${FUZZ_SERVER_LOG:-${CARD_DIR:+$CARD_DIR/server.log}}
key_file=${CARD_DIR:+$CARD_DIR/card.keys}

tenant_roles=(fuzz_a_admin fuzz_a_api fuzz_a_processor fuzz_a_hosted fuzz_a_reader
              fuzz_b_admin fuzz_b_api fuzz_b_processor fuzz_b_hosted fuzz_b_reader)
# fuzz_outsider holds every capability role and no programme; fuzz_nobody
# holds nothing at all.
all_roles=("${tenant_roles[@]}" fuzz_outsider fuzz_nobody)

work=$(mktemp -d /tmp/card-fuzz.XXXXXX)
started=$SECONDS
failed=0

q() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$db" "$@"; }
fail() { echo "fuzz: FAIL: $*"; failed=1; }
drop_everything() {
    dropdb --if-exists "$db" 2>/dev/null || true
    for r in "${all_roles[@]}"; do
        psql -X -q -d postgres -c "DROP ROLE IF EXISTS $r" >/dev/null 2>&1 || true
    done
}
cleanup() {
    if [ "${FUZZ_KEEP:-0}" = 1 ]; then
        echo "fuzz: kept database $db, the fuzz roles and $work"
    else
        drop_everything
        rm -rf "$work"
    fi
}
trap cleanup EXIT

echo "fuzz: seed $seed (FUZZ_SEED=$seed reproduces this run), $calls calls, sqlsmith $smith_queries queries"

# ---------------------------------------------------------------------------
# Set-up: roles (cluster-wide), the database, two tenants
# ---------------------------------------------------------------------------
drop_everything
createdb "$db"
q -f test/fuzz/schema.sql >/dev/null       # CREATE EXTENSION card makes the capability roles
declare -A capability=([admin]=card_admin [api]=card_api [processor]=card_processor
                       [hosted]=card_hosted_pages [reader]=card_reader)
{
    for r in "${tenant_roles[@]}"; do
        echo "CREATE ROLE $r LOGIN IN ROLE ${capability[${r##*_}]};"
    done
    echo "CREATE ROLE fuzz_outsider LOGIN IN ROLE card_admin, card_api, card_processor, card_hosted_pages, card_reader;"
    echo "CREATE ROLE fuzz_nobody LOGIN;"
} | psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null
for f in setup values generate; do
    q -f test/fuzz/$f.sql >/dev/null
done
[ -z "${FUZZ_PLANT:-}" ] || { echo "fuzz: planting $FUZZ_PLANT"; q -f "$FUZZ_PLANT" >/dev/null; }
echo "fuzz: card $(q -c "SELECT extversion FROM pg_extension WHERE extname = 'card'"),"\
     "$(q -c "SELECT count(*) FROM pg_proc WHERE pronamespace = 'card'::regnamespace
                AND prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype)") functions to fuzz"

postmaster_started=$(q -c "SELECT pg_postmaster_start_time()")
log_since_start() { tail -c +$((log_offset + 1)) "$server_log"; }
log_offset=0
if [ -n "$server_log" ] && [ -r "$server_log" ]; then
    log_offset=$(stat -c %s "$server_log")
else
    echo "fuzz: no readable server log (FUZZ_SERVER_LOG): crashes are found by the postmaster start time only"
    server_log=
fi

# ---------------------------------------------------------------------------
# Generation: the phases' calls, from one seed
# ---------------------------------------------------------------------------
# cross-b: tenant A's roles and the two roles of no programme attack B (B's
#          roles are idle, so B's rows must not change at all);
# cross-a: the other way round;
# general: every role at once, own and foreign ids mixed; run in parts of
#          about 1200 calls, with the tenants' grants restored and fresh
#          cards and links made between them (a tenant that revokes its own
#          roles' grants, as it may, or blocks its cards and uses up its
#          links, would otherwise leave nothing to reach but refusals).
cross=$((calls / 5))
general=$((calls - 2 * cross))
parts=$(((general + 1199) / 1200))
q >/dev/null <<SQL
SELECT setseed(($seed % 2147483647)::float8 / 2147483647);
SELECT fuzz.generate('cross-b', ARRAY['fuzz_a_admin', 'fuzz_a_api', 'fuzz_a_processor', 'fuzz_a_hosted',
                     'fuzz_a_reader', 'fuzz_outsider', 'fuzz_nobody']::name[], $cross, 'b');
SELECT fuzz.generate('cross-a', ARRAY['fuzz_b_admin', 'fuzz_b_api', 'fuzz_b_processor', 'fuzz_b_hosted',
                     'fuzz_b_reader', 'fuzz_outsider', 'fuzz_nobody']::name[], $cross, 'a');
SELECT fuzz.generate('general', ARRAY[$(printf "'%s'," "${all_roles[@]}" | sed 's/,$//')]::name[], $general);
UPDATE fuzz.call c SET phase = 'general-' || p.part
  FROM (SELECT id, ntile($parts) OVER (ORDER BY id) AS part FROM fuzz.call WHERE phase = 'general') p
 WHERE c.id = p.id;
SQL

# ---------------------------------------------------------------------------
# Running: one psql session per role, all roles of a phase at once
# ---------------------------------------------------------------------------
# Each call is three lines of psql script: a marker on stderr (what the
# server says next belongs to this call), the statement (its number in a
# comment, which the server log quotes if the backend running it crashes),
# and a marker on stdout with psql's :SQLSTATE (00000 on success), just
# after the count the statement prints (its meaningful result rows).  No
# statement holds a line break.  A session that dies (connection lost,
# psql killed) is resumed after the call it died in, recorded as LOST or
# HANG.
script_lines="unnest(ARRAY[format('\\warn @@ %s', id), format('/* fuzz call %s */ %s;', id, stmt),
                            format('\\echo @@ %s :SQLSTATE', id)]) WITH ORDINALITY u(l, k)"
session_calls() {   # phase role after-id: the psql script of the rest of a session
    q -c "SELECT l FROM fuzz.call, $script_lines WHERE phase = '$1' AND role = '$2' AND id > $3 ORDER BY id, k"
}
server_up() {
    for _ in $(seq 1 120); do
        pg_isready -q -d postgres && psql -X -q -d postgres -c "SELECT 1" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    return 1
}
run_session() {     # phase role: runs $work/<phase>.<role>.sql
    local phase=$1 role=$2 after=0 rc last next n=0
    local base=$work/$phase.$role
    : >"$base.out"; : >"$base.err"; : >"$base.lost"
    # A session gets two minutes plus 0.2 s a call before it counts as hung.
    local limit=$((120 + $(grep -c '^\\warn @@' "$base.sql") / 5))
    while :; do
        rc=0
        # Line-buffered, so that a killed psql leaves every marker it printed.
        PGUSER=$role PGAPPNAME=fuzz_$role PGOPTIONS="-c statement_timeout=${timeout_s}s" \
            timeout "$limit" stdbuf -oL -eL psql -X -q -A -t -d "$db" -f "$base.sql" >>"$base.out" 2>>"$base.err" || rc=$?
        [ $rc = 0 ] && break
        # The session ended before its last call: which call was it in?
        last=$(awk '/^@@ [0-9]+ /{id=$2} END{print id+0}' "$base.out")
        [ "$last" -ge "$after" ] || last=$after
        server_up || { echo "fuzz: the server did not come back"; return 1; }
        next=$(q -c "SELECT min(id) FROM fuzz.call WHERE phase = '$phase' AND role = '$role' AND id > $last")
        [ -n "$next" ] || break
        if [ $rc = 124 ]; then
            # No answer within the session's limit: statement_timeout did not
            # stop the call.  End its backend.
            printf '%s\tHANG\n' "$next" >>"$base.lost"
            q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'fuzz_$role'" >/dev/null || true
            after=$next
        elif [ -n "$server_log" ] \
             && ! log_since_start | grep "Failed process was running: /\* fuzz call $next \*/" >/dev/null \
             && log_since_start | grep 'terminated by signal' >/dev/null; then
            after=$last          # another backend crashed, not this one: the call runs again
        else
            # This call's backend crashed (the log says so), or the session
            # ended some other way (FATAL), or there is no log to tell.
            printf '%s\tLOST\n' "$next" >>"$base.lost"
            after=$next          # on with the next call
        fi
        n=$((n + 1))
        [ $n -lt 20 ] || { echo "fuzz: $role lost its session 20 times in $phase, giving up"; return 1; }
        session_calls "$phase" "$role" "$after" >"$base.sql"
        [ -s "$base.sql" ] || break
    done
}
run_phase() {       # phase
    local phase=$1 pids=() r roles t0=$SECONDS
    roles=$(q -c "SELECT DISTINCT role FROM fuzz.call WHERE phase = '$phase' ORDER BY 1")
    # Every role's script at once, each line prefixed with the role for awk
    # to split on.
    q -c "SELECT role || E'\\x1f' || l FROM fuzz.call, $script_lines WHERE phase = '$phase' ORDER BY id, k" \
        | awk -F'\x1f' -v base="$work/$phase." '{print $2 > (base $1 ".sql")}'
    for r in $roles; do
        run_session "$phase" "$r" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || failed=1; done
    # Outcomes and messages into fuzz.result and fuzz.message, in one session.
    for r in $roles; do
        awk '/^@@ [0-9]+ /{printf "%s\t%s\t%s\n", $2, $3, (cnt == "" ? "\\N" : cnt); cnt = ""; next}
             {cnt = $0}' "$work/$phase.$r.out" >"$work/$phase.$r.result"
        # (psql's "psql:<file>:<line>: " prefix and the call number comment
        # go: their numbers are no message)
        awk '/^@@ [0-9]+$/{id = $2; next}
             {sub(/^psql:[^ ]*:[0-9]+: /, ""); sub(/\/\* fuzz call [0-9]+ \*\/ /, ""); gsub(/\\/, "&&"); gsub(/\t/, "\\t"); gsub(/\r/, "\\r"); print (id == "" ? "\\N" : id) "\t" $0}' \
            "$work/$phase.$r.err" >"$work/$phase.$r.msg"
        echo "\\copy fuzz.result FROM '$work/$phase.$r.result'"
        echo "\\copy fuzz.result (id, sqlstate) FROM '$work/$phase.$r.lost'"
        echo "\\copy fuzz.message FROM '$work/$phase.$r.msg'"
    done | q >/dev/null
    echo "fuzz: phase $phase: $(q -c "SELECT count(*) FROM fuzz.call WHERE phase = '$phase'") calls in $((SECONDS - t0)) s"
}

# After a cross phase, undo what the attackers could legitimately do to
# themselves and what would blur the next phase: a tenant may grant its own
# programme to the other tenant's roles (then the next phase's calls on it
# are no attack), or revoke its own roles' grants.
reset_grants() {
    q >/dev/null <<'SQL'
SELECT card.programme_revoke(pr.programme_id, pr.role_name)
  FROM card.programme_role pr JOIN fuzz.fixture p ON p.kind = 'programme' AND p.v::uuid = pr.programme_id
 WHERE pr.role_name NOT IN (SELECT v FROM fuzz.fixture WHERE kind = 'role' AND tenant = p.tenant);
SELECT card.programme_grant(p.v::uuid, r.v)
  FROM fuzz.fixture p JOIN fuzz.fixture r ON r.tenant = p.tenant AND r.kind = 'role'
 WHERE p.kind = 'programme';
SQL
}

# The victim's rows, one digest per table, before and after its attack.
snapshot() { q -c "SELECT tbl || ' ' || coalesce(nrows::text, '-') || ' ' || digest FROM fuzz.snapshot('$1')"; }
attack() {          # victim
    local victim=$1 before after
    before=$(snapshot "$victim")
    run_phase "cross-$victim"
    after=$(snapshot "$victim")
    if [ "$before" != "$after" ]; then
        fail "tenant ${victim^^}'s rows changed while only the other tenant and the roles of no programme ran:"
        diff <(echo "$before") <(echo "$after") | sed 's/^/fuzz:   /' || true
    fi
    if grep -q 'not covered' <<<"$after"; then
        echo "fuzz: note: tables the snapshot cannot tie to a programme: $(grep 'not covered' <<<"$after" | cut -d' ' -f1 | tr '\n' ' ')"
    fi
    reset_grants
}

attack b
attack a
for part in $(seq 1 $parts); do
    q -c "SELECT fuzz.refresh('a', $part), fuzz.refresh('b', $part)" >/dev/null 2>&1 || echo "fuzz: note: refreshing the fixtures failed"
    run_phase "general-$part"
    reset_grants
done

# ---------------------------------------------------------------------------
# Verdicts on the calls
# ---------------------------------------------------------------------------
postmaster_now=$(q -c "SELECT pg_postmaster_start_time()")
[ "$postmaster_started" = "$postmaster_now" ] || fail "the postmaster restarted (started $postmaster_started, now $postmaster_now): a backend crashed"
log_problems() {
    [ -n "$server_log" ] || return 0
    log_since_start \
        | grep -E 'terminated by signal|terminated by exception|PANIC:|TRAP:|all server processes terminated|database system was interrupted' \
        | cut -c1-300 | head -20 || true
}
problems=$(log_problems)
[ -z "$problems" ] || { fail "the server log shows a crash:"; sed 's/^/fuzz:   /' <<<"$problems"; }

# Secrets: the one-time tokens of the hosted pages (issued or not, a token
# never belongs in a message), the PANs of the two BINs, the PINs the
# fuzzer uses as valid ones, and the key file's keys.
keys_re=
if [ -n "$key_file" ] && [ -r "$key_file" ]; then
    keys_re=$(awk '!/^#/ && NF >= 2 {printf "%s%s", (n++ ? "|" : ""), $2}' "$key_file")
fi
q -v keys_re="${keys_re:-a^}" >/dev/null <<'SQL'
CREATE TABLE fuzz.verdict AS
SELECT c.id, c.phase, c.role, c.fn, c.stmt, coalesce(r.sqlstate, 'NOT RUN') AS sqlstate, r.meaningful,
       CASE
         WHEN r.id IS NULL THEN 'call never ran'
         WHEN r.sqlstate = 'LOST' THEN 'session died during the call (crash or FATAL)'
         WHEN r.sqlstate = 'HANG' THEN 'hang: no answer, statement_timeout did not stop it'
         -- a wait the call was asked for (the interval values hold one valid
         -- wait longer than the statement timeout: '30 minutes')
         WHEN r.sqlstate = '57014' AND c.fn = 'card.events_after(bigint,integer,interval)'::regprocedure
              AND position('''30 minutes''' IN c.stmt) > 0 THEN NULL
         WHEN r.sqlstate = '57014' THEN 'hang: statement timeout'
         WHEN r.sqlstate LIKE 'XX%' THEN 'internal error'
         -- 54001 is allowed for the one literal PostgreSQL's parser refuses,
         -- not for a call that ran out of stack on a document it was given
         WHEN r.sqlstate = '54001' AND position('repeat(''['', 100000)' IN c.stmt) = 0
              THEN 'stack depth exceeded inside the call'
         WHEN r.sqlstate NOT IN (SELECT sqlstate FROM fuzz.allowed) THEN 'undocumented SQLSTATE'
         WHEN c.role = 'fuzz_nobody' AND r.sqlstate = '00000' THEN 'a role with no grant succeeded'
         WHEN c.foreign_ref AND r.sqlstate = '00000' AND r.meaningful > 0
              THEN 'succeeded with another programme''s id or token'
       END AS failure
  FROM fuzz.call c LEFT JOIN fuzz.result r USING (id);
-- A token or PIN the call itself put into a field that is not secret (a
-- currency, a consumer name) may be quoted back; anything else is a leak.
CREATE TABLE fuzz.leak AS
SELECT m.id, m.line,
       CASE WHEN m.line ~ '(act|rvl|pin)_[A-Za-z0-9_-]{43}' AND NOT coalesce(c.echo_ok, false) THEN 'a one-time token'
            WHEN m.line ~ '(45671234|51234567)[0-9]{5}' THEN 'a PAN'
            -- (ids are left out: a random uuid holds a PIN's digits now and then)
            WHEN regexp_replace(m.line, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<id>', 'gi')
                 ~ '(^|[^0-9])(2468|1357|135790)([^0-9]|$)' AND NOT coalesce(c.echo_ok, false) THEN 'a PIN'
            WHEN m.line ~ :'keys_re' THEN 'a key' END AS secret
  FROM fuzz.message m LEFT JOIN fuzz.call c USING (id)
 -- not the server quoting the statement back (LINE 1: ... and its caret):
 -- the statements name their secrets as fixtures, or as the valid PINs
 WHERE m.line !~ '^(LINE [0-9]+:|\s*\^\s*$)';
DELETE FROM fuzz.leak WHERE secret IS NULL;
SQL

# ---------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------
redact() { sed -E 's/(act|rvl|pin)_[A-Za-z0-9_-]{43}/\1_<redacted>/g; s/(45671234|51234567)[0-9]{5,}/<PAN redacted>/g'; }
echo
echo "fuzz: outcomes (seed $seed)"
psql -X -q -d "$db" -P footer=off <<'SQL'
SELECT v.sqlstate, count(*) AS calls, count(DISTINCT v.fn) AS functions, count(DISTINCT v.role) AS roles,
       coalesce(a.why, CASE WHEN v.sqlstate IN ('LOST', 'HANG', 'NOT RUN') THEN 'driver' ELSE 'NOT ALLOWED' END) AS meaning
  FROM fuzz.verdict v LEFT JOIN fuzz.allowed a USING (sqlstate)
 GROUP BY v.sqlstate, a.why ORDER BY calls DESC;
SELECT phase, count(*) AS calls, count(*) FILTER (WHERE sqlstate = '00000') AS succeeded,
       count(*) FILTER (WHERE failure IS NOT NULL) AS failures
  FROM fuzz.verdict GROUP BY phase ORDER BY phase DESC;
SQL
nfail=$(q -c "SELECT count(*) FROM fuzz.verdict WHERE failure IS NOT NULL")
if [ "$nfail" -gt 0 ]; then
    fail "$nfail calls failed; one example of each kind, function and SQLSTATE:"
    q -F $'\x1f' -c "
        SELECT DISTINCT ON (failure, fn, sqlstate) failure, fn, sqlstate, role, id,
               (SELECT count(*) FROM fuzz.verdict w WHERE w.failure = v.failure AND w.fn = v.fn AND w.sqlstate = v.sqlstate),
               coalesce((SELECT string_agg(line, ' | ') FROM (SELECT line FROM fuzz.message m WHERE m.id = v.id
                          AND line ~ '(ERROR|FATAL|WARNING|PANIC|server closed|connection)' LIMIT 3) l), ''),
               stmt
          FROM fuzz.verdict v WHERE failure IS NOT NULL ORDER BY failure, fn, sqlstate, id LIMIT 60" \
    | while IFS=$'\x1f' read -r what fn state role id count msg stmt; do
        echo "fuzz: - $what: $fn as $role -> $state ($count calls like it; call $id)"
        [ -z "$msg" ] || echo "fuzz:     server said: $(cut -c1-400 <<<"$msg" | redact)"
        echo "fuzz:     reproduce as $role in $db (FUZZ_KEEP=1 FUZZ_SEED=$seed keeps it): $(cut -c1-2000 <<<"$stmt" | redact);"
    done
fi
nleak=$(q -c "SELECT count(*) FROM fuzz.leak")
if [ "$nleak" -gt 0 ]; then
    fail "$nleak message lines carry a secret:"
    q -F $'\x1f' -c "SELECT l.secret, c.fn, c.role, c.id, left(l.line, 300), c.stmt FROM fuzz.leak l JOIN fuzz.call c USING (id)
                   ORDER BY l.secret, c.fn LIMIT 20" \
    | while IFS=$'\x1f' read -r what fn role id line stmt; do
        echo "fuzz: - $what in a message of $fn as $role (call $id): $(redact <<<"$line")"
        echo "fuzz:     reproduce as $role in $db: $(redact <<<"$stmt");"
    done
fi
broken=$(q -c "SELECT account_id || ': ' || problem FROM fuzz.money_invariants()")
[ -z "$broken" ] || { fail "money invariants broken after the fuzz:"; sed 's/^/fuzz:   /' <<<"$broken"; }

# ---------------------------------------------------------------------------
# sqlsmith, as tenant A's API role: random queries over everything that
# role can reach.  Its own errors are expected by the thousand; what must
# not happen is a crash.
# ---------------------------------------------------------------------------
if [ "$smith_queries" -gt 0 ]; then
    if ! command -v sqlsmith >/dev/null; then
        fail "sqlsmith is not installed (apt-get install sqlsmith; scripts/lib.sh ensure_packages lists it)"
    else
        t0=$SECONDS
        smith_started=$(q -c "SELECT pg_postmaster_start_time()")
        [ -z "$server_log" ] || log_offset=$(stat -c %s "$server_log")
        rc=0
        # Every query is written out before it is sent, so the last one
        # printed is the one that was running if the server went down.
        timeout $((120 + smith_queries / 10)) sqlsmith --seed="$seed" --max-queries="$smith_queries" --verbose \
            --dump-all-queries \
            --target="host=$PGHOST port=$PGPORT dbname=$db user=fuzz_a_api application_name=fuzz_sqlsmith" \
            >"$work/sqlsmith.queries" 2>"$work/sqlsmith.err" || rc=$?
        server_up || fail "the server is down after sqlsmith"
        smith_now=$(q -c "SELECT pg_postmaster_start_time()")
        echo "fuzz: sqlsmith: $smith_queries queries as fuzz_a_api in $((SECONDS - t0)) s, exit status $rc," \
             "$(grep -E '^error rate' "$work/sqlsmith.err" | tail -1) (its own errors are expected)"
        crashed=0
        [ "$smith_started" = "$smith_now" ] || { fail "the postmaster restarted during sqlsmith (a backend crashed)"; crashed=1; }
        [ $rc != 124 ] || fail "sqlsmith did not finish in time (a hang?)"
        if [ $rc != 0 ] && [ $rc != 124 ]; then
            fail "sqlsmith ended with status $rc:"
            grep -v '^  ' "$work/sqlsmith.err" | tail -5 | sed 's/^/fuzz:   /'
            crashed=1
        fi
        if [ $crashed = 1 ]; then
            echo "fuzz:   the last query sqlsmith sent (all of them: $work/sqlsmith.queries, kept with FUZZ_KEEP=1):"
            awk 'BEGIN{RS=";\n"} {last=$0} END{print last ";"}' "$work/sqlsmith.queries" | head -60 | sed 's/^/fuzz:     /'
        fi
        problems=$(log_problems)
        [ -z "$problems" ] || { fail "the server log shows a crash:"; sed 's/^/fuzz:   /' <<<"$problems"; }
    fi
fi

echo "fuzz: $((SECONDS - started)) s in all"
if [ $failed = 0 ]; then echo "fuzz: passed"; else echo "fuzz: FAILED (seed $seed)"; fi
exit $failed
