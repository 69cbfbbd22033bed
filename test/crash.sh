#!/usr/bin/env bash
# test/crash.sh: crash under load (issue 10).
#
# On a throwaway cluster of its own: two programmes' worth of cardholders,
# accounts and cards, then 8 clients (test/crash/driver.pl, Perl DBD::Pg,
# server-side prepared statements: what pgbench -M prepared sends) calling
# card_order, card_set_status, card_authorize, authorization_capture and
# _reverse, account_credit and card_replace at once.  Each client logs every
# call before it is sent and every answer after it came back (so after its
# COMMIT).  After a few seconds the postmaster and every server process are
# killed with SIGKILL, the server is restarted (crash recovery), and
# test/crash/check.sql checks the invariants: money (held, balance, limit
# counters), lifecycle (status = last audit row), PAN and token uniqueness,
# the feed (events_after gap-free, one event per change), storage (amcheck),
# every acknowledged call present, and each client's model of its cards and
# holds.  Then the clients retry what was in flight and repeat some
# acknowledged calls (idempotency across the crash), and everything is
# checked again.
#
#   test/crash.sh             1 round, about 6 s of load (about 25 s in all)
#   test/crash.sh --long      5 rounds (CRASH_ROUNDS), 20 s of load each
#   test/crash.sh --negative  1 round, then a negative control: sabotage.sql
#                             breaks one thing per invariant behind the
#                             extension's back, and each check concerned must fail
#
# Settings: CARD_PORT (default: the first free from 55421), CRASH_ROUNDS,
# CRASH_SECONDS (load per round), CRASH_CLIENTS (8), CRASH_KEEP=1 keeps the
# logs (their place is printed on failure in any case), CRASH_STRICT_AUDIT=0
# makes the audit order by changed_at a warning only (1.1 stamped a change
# with its transaction's start, which this check found; 1.2 stamps the time
# of the change).
# Needs root (as scripts/test) and the extension installed.  Exits non-zero
# on any violation.
set -euo pipefail
cd "$(dirname "$0")/.."

long=0
negative=0
case "${1:-}" in
    --long) long=1 ;;
    --negative) negative=1 ;;
    "") ;;
    *) echo "usage: test/crash.sh [--long | --negative]"; exit 2 ;;
esac
rounds=${CRASH_ROUNDS:-$((long ? 5 : 1))}
[ "$negative" = 1 ] && rounds=1
seconds=${CRASH_SECONDS:-$((long ? 20 : 6))}
clients=${CRASH_CLIENTS:-8}
db=card_crash

if [ -z "${CARD_PORT:-}" ]; then
    CARD_PORT=55421
    while ss -lx 2>/dev/null | grep -q "\.s\.PGSQL\.$CARD_PORT\b" || [ -e "/tmp/.s.PGSQL.$CARD_PORT" ]; do
        CARD_PORT=$((CARD_PORT + 1))
    done
fi
export CARD_PORT
# shellcheck source=../scripts/lib.sh
. scripts/lib.sh
ensure_packages
[ -f "$($PG_BIN/pg_config --sharedir)/extension/card.control" ] \
    || { echo "crash: the extension is not installed (make install)"; exit 1; }

t_start=$(date +%s)
logs=$(mktemp -d /tmp/card-crash-logs.XXXXXX)
driver_pids=()
failed=0

cleanup() {
    local rc=$?
    for p in "${driver_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    cluster_stop
    if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ] || [ "${CRASH_KEEP:-0}" = 1 ]; then
        echo "crash: logs kept in $logs"
    else
        rm -rf "$logs"
    fi
}

cluster_start
trap cleanup EXIT
echo "crash: port $CARD_PORT, $clients clients, $rounds round(s) of ${seconds}s load"

sql() { psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }

createdb "$db"
psql -X -q -v ON_ERROR_STOP=1 -v clients="$clients" -d "$db" -f test/crash/setup.sql \
    | sed 's/^/crash: setup: /'
sql "CREATE TABLE crash_log (kind text, client int, round int, opid bigint, op text, data jsonb);
     CREATE TABLE crash_fed (n bigserial, seq bigint)"

# Load the lines of the given client logs into crash_log.
load_logs() {
    local f
    for f in "$@"; do
        [ -s "$f" ] || continue
        psql -X -q -v ON_ERROR_STOP=1 -d "$db" \
            -c "\\copy crash_log FROM '$f' WITH (FORMAT csv, DELIMITER E'\\t', QUOTE E'\\x01')"
    done
    sql "ANALYZE crash_log"
}

# Reads the whole feed with card.events_after from cursor 0, a page per
# call (each call its own transaction), into crash_fed in the order returned.
read_feed() {
    local cursor=0 page
    : >"$logs/feed.txt"
    while :; do
        page=$(sql "SELECT seq FROM card.events_after($cursor, 2000)")
        [ -n "$page" ] || break
        printf '%s\n' "$page" >>"$logs/feed.txt"
        cursor=$(tail -1 <<<"$page")
    done
    sql "TRUNCATE crash_fed RESTART IDENTITY"
    psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "\\copy crash_fed (seq) FROM '$logs/feed.txt'"
}

checks_run=0
checks_failed=0
warnings=0
failed_names=
strict_audit=$([ "${CRASH_STRICT_AUDIT:-1}" = 1 ] && echo true || echo false)
# Runs test/crash/check.sql for round $1, phase $2; prints each check.
run_checks() {
    local round=$1 phase=$2 out name checked bad fatal detail
    local t0
    t0=$(date +%s%N)
    read_feed
    out=$(psql -X -q -v ON_ERROR_STOP=1 -v round="$round" -v strict_audit="$strict_audit" -d "$db" -f test/crash/check.sql) \
        || { echo "crash: check.sql failed"; failed=1; return; }
    echo "crash: round $round, $phase ($(( ($(date +%s%N) - t0) / 1000000 )) ms):"
    while IFS='|' read -r name checked bad fatal detail; do
        [ -n "$name" ] || continue
        checks_run=$((checks_run + 1))
        [ "$bad" = 0 ] || failed_names+="$name"$'\n'
        if [ "$bad" = 0 ]; then
            printf '  ok    %s (%s checked)\n' "$name" "$checked"
        elif [ "$fatal" = f ]; then
            warnings=$((warnings + 1))
            printf '  WARN  %s: %s of %s: %s\n' "$name" "$bad" "$checked" "$detail"
        else
            checks_failed=$((checks_failed + 1)); failed=1
            printf '  FAIL  %s: %s of %s: %s\n' "$name" "$bad" "$checked" "$detail"
        fi
    done <<<"$out"
}

# Kills the postmaster and every process it started, at once, with SIGKILL,
# and waits until they are all gone.  The postmaster is stopped first, so
# that it forks nothing between the listing of its children and the kill.
crash_server() {
    local pm kids p
    pm=$(head -1 "$CARD_DATA/postmaster.pid")
    kill -STOP "$pm"
    kids=$(ps -o pid= --ppid "$pm" | tr -d ' ' | tr '\n' ' ')
    # shellcheck disable=SC2086
    kill -9 "$pm" $kids
    for p in $pm $kids; do
        while kill -0 "$p" 2>/dev/null; do sleep 0.05; done
    done
    echo "crash: killed the postmaster ($pm) and its $(wc -w <<<"$kids") children with SIGKILL"
}

acked_total=0
inflight_total=0
for round in $(seq 1 "$rounds"); do
    echo "crash: round $round: ${seconds}s of load"
    driver_pids=()
    for c in $(seq 0 $((clients - 1))); do
        PGDATABASE=$db perl test/crash/driver.pl --client "$c" --round "$round" --seconds $((seconds * 4 + 60)) \
            --log "$logs/r$round.c$c.log" --ready "$logs/r$round.c$c.ready" \
            >"$logs/r$round.c$c.out" 2>&1 &
        driver_pids+=($!)
    done
    for c in $(seq 0 $((clients - 1))); do
        for _ in $(seq 300); do
            [ -e "$logs/r$round.c$c.ready" ] && break
            kill -0 "${driver_pids[$c]}" 2>/dev/null || break
            sleep 0.1
        done
        [ -e "$logs/r$round.c$c.ready" ] || { cat "$logs/r$round.c$c.out"; echo "crash: client $c did not start"; exit 1; }
    done
    # The crash lands at a random moment; in long runs, a checkpoint first
    # in every other round (recovery then starts from it).
    ms=$((seconds * 1000 + RANDOM % 1000))
    if [ "$long" = 1 ] && [ $((round % 2)) = 0 ]; then
        sleep $((ms / 2000)).$(printf '%03d' $((ms / 2 % 1000)))
        sql "CHECKPOINT"
        echo "crash: checkpoint in the middle of the load"
        sleep $((ms / 2000)).$(printf '%03d' $((ms / 2 % 1000)))
    else
        sleep $((ms / 1000)).$(printf '%03d' $((ms % 1000)))
    fi
    crash_server
    for i in "${!driver_pids[@]}"; do
        wait "${driver_pids[$i]}" || { failed=1; echo "crash: client $i reported failures"; }
        grep -v 'terminating connection due to unexpected postmaster exit' "$logs/r$round.c$i.out" | sed 's/^/crash:   /' || true
    done
    driver_pids=()

    state=$($PG_BIN/pg_controldata "$CARD_DATA" | sed -n 's/^Database cluster state: *//p')
    [ "$state" = "in production" ] || { echo "crash: the cluster was not left in production ($state)"; failed=1; }
    t0=$(date +%s%N)
    runuser -u postgres -- $PG_BIN/pg_ctl -D "$CARD_DATA" -l "$CARD_DIR/server.log" -w -t 120 start \
        >"$logs/pg_ctl.log" 2>&1 || { cat "$logs/pg_ctl.log" "$CARD_DIR/server.log"; echo "crash: restart failed"; exit 1; }
    echo "crash: restarted with crash recovery in $(( ($(date +%s%N) - t0) / 1000000 )) ms"

    load_logs "$logs"/r"$round".c*.log
    read -r acked inflight <<<"$(sql "SELECT count(*) FILTER (WHERE kind = 'A'), count(*) FILTER (WHERE kind = 'X' AND op <> '')
                                       FROM crash_log WHERE round = $round" | tr '|' ' ')"
    acked_total=$((acked_total + acked)); inflight_total=$((inflight_total + inflight))
    echo "crash: round $round: $acked calls acknowledged, $inflight in flight at the crash; by op: $(sql "
        SELECT string_agg(op || ' ' || n, ', ' ORDER BY n DESC) FROM (
          SELECT op, count(*) AS n FROM crash_log WHERE round = $round AND kind = 'A' GROUP BY op) x")"
    run_checks "$round" "after the restart"

    for c in $(seq 0 $((clients - 1))); do
        PGDATABASE=$db perl test/crash/driver.pl --retry --client "$c" --round "$round" --log "$logs/r$round.c$c.log" \
            --retry-log "$logs/r$round.c$c.retry.log" 2>&1 | sed 's/^/crash:   /' || true
    done
    load_logs "$logs"/r"$round".c*.retry.log
    [ "$(sql "SELECT count(*) FROM crash_log WHERE round = $round AND kind = 'R'")" -gt 0 ] \
        || { echo "crash: no call was retried"; failed=1; }
    run_checks "$round" "after the retries"
done

if [ "$negative" = 1 ]; then
    # The negative control: break one thing per invariant behind the
    # extension's back; each check below must now fail.
    echo "crash: negative control: $(psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f test/crash/sabotage.sql | paste -sd ';' | sed 's/;/; /g')"
    [ "$failed" = 0 ] || { echo "crash: FAILED before the negative control"; exit 1; }
    failed_names=
    run_checks 1 "after the sabotage (every check named below must fail)"
    missed=0
    for want in "held = sum of pending holds" "balance = credits - captures" \
                "every limit counter = the approved" "each card's status = to_status of its last audit row" \
                "a PAN is issued once" "every authorisation has exactly one approved/declined event" \
                "every acknowledged call is in the database" "each card has the status its client was last answered"; do
        if grep -qF "$want" <<<"$failed_names"; then
            echo "crash: negative control: caught: $want"
        else
            echo "crash: negative control: NOT caught: $want"; missed=1
        fi
    done
    [ "$missed" = 0 ] || { echo "crash: negative control FAILED"; exit 1; }
    failed=0
    echo "crash: negative control: ok (every sabotage was caught)"
    exit 0
fi

echo
echo "crash: summary: $rounds round(s), $clients clients, ${seconds}s load per round"
echo "crash:   calls acknowledged: $acked_total; in flight at a crash: $inflight_total"
echo "crash:   $(sql "SELECT count(*) || ' cards, ' || (SELECT count(*) FROM card.\"authorization\") || ' authorisations, '
                         || (SELECT count(*) FROM card.account_credit) || ' credits, '
                         || (SELECT count(*) FROM card.event) || ' events' FROM card.card")"
echo "crash:   invariant checks run: $checks_run, failed: $checks_failed, warnings: $warnings"
echo "crash:   time: $(( $(date +%s) - t_start ))s"
if [ "$failed" -ne 0 ]; then
    echo "crash: FAILED"
    exit 1
fi
echo "crash: ok"
