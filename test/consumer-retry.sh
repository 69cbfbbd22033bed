#!/usr/bin/env bash
# The consumer (consumer/card-consumer) on failed requests, against the
# cluster that PGHOST/PGPORT name, in a database of its own:
#   - transient errors are retried and the consumer carries on: a cancel
#     (57014, pg_cancel_backend, twice) and a lock_timeout (55P03) while
#     events_after waits for a writer in flight, and a terminated backend
#     (57P01, reconnect); each time the held event and the next one written
#     are printed, once each, in order;
#   - one line per retry on stderr, with the SQLSTATE and no event data;
#   - permanent errors still end it with status 1: no privilege (42501),
#     its consumer unregistered under it (P0002).
# CARD_CONSUMER names another binary to test (default consumer/card-consumer).
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PGHOST:?}" "${PGPORT:?}"
consumer=${CARD_CONSUMER:-consumer/card-consumer}
db=card_consumer_retry
nopriv=card_retry_nopriv
work=$(mktemp -d)
pids=()
holder_open=
cleanup() {
    [ -n "$holder_open" ] && exec 3>&- || true
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP ROLE IF EXISTS $nopriv" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    for f in "$work"/*.log; do [ -s "$f" ] && { echo "--- $(basename "$f")"; cat "$f"; }; done
    exit 1
}
say() { echo "consumer-retry: $*"; }
sql() { psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }

# wait_for SECONDS WHAT CONSUMER_PID COMMAND...: until COMMAND succeeds; fails if
# the consumer (when given) exits first or time runs out.
wait_for() {
    local limit=$1 what=$2 pid=$3 tries=0
    shift 3
    until "$@"; do
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" && st=0 || st=$?
            fail "the consumer exited (status $st) while waiting for: $what"
        fi
        tries=$((tries + 1))
        [ $tries -lt $((limit * 10)) ] || fail "timed out after ${limit}s waiting for: $what"
        sleep 0.1
    done
}
# The consumer's backend (by application_name) is waiting inside events_after.
in_events_after() {
    [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$1'
                AND state = 'active' AND wait_event = 'virtualxid' AND query LIKE '%events_after%'")" = 1 ]
}
backend_pid() { sql "SELECT pid FROM pg_stat_activity WHERE application_name = '$1'"; }
acked() { [ "$(sql "SELECT cursor FROM card.event_consumer WHERE name = '$1'")" = "$2" ]; }
log_has() { grep -q -- "$2" "$work/$1.log"; }
emit() { sql "SELECT seq FROM card.event_emit('account.credited', NULL, NULL, NULL, '{\"note\": \"$1\"}') seq"; }

# A writer in flight: a transaction that has written an event and stays open
# (psql reading a fifo), so events_after waits for it.
holder_begin() {
    rm -f "$work/holder.fifo" "$work/holder.out"
    mkfifo "$work/holder.fifo"
    psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$db" <"$work/holder.fifo" >"$work/holder.out" 2>&1 &
    pids+=($!)
    exec 3>"$work/holder.fifo"
    holder_open=1
    echo "BEGIN; SELECT seq FROM card.event_emit('account.credited', NULL, NULL, NULL, '{\"note\": \"$1\"}') seq;" >&3
    wait_for 10 "the holder's event" "" grep -q '^[0-9]' "$work/holder.out"
    held=$(grep -m1 '^[0-9]' "$work/holder.out")
}
holder_commit() {
    echo "COMMIT;" >&3
    exec 3>&-
    holder_open=
}
# The consumer printed exactly these seqs after $2, in this order.
printed_exactly() {
    local out=$1 after=$2 want=$3 got
    got=$(grep -o '"seq": [0-9]*' "$work/$out.jsonl" | awk -v a="$after" '$2 > a { printf "%s ", $2 }')
    [ "$got" = "$want " ] || fail "$out printed seqs after $after: '${got% }', want '$want'"
}

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = warning" \
    -c "DROP DATABASE IF EXISTS $db" -c "DROP ROLE IF EXISTS $nopriv" >/dev/null
createdb "$db"
sql "CREATE EXTENSION card"
sql "SELECT card.consumer_register('retry_a')" >/dev/null

echo "consumer-retry: a cancel (57014) while events_after waits for a writer"
"$consumer" -n retry_a -p 200 "dbname=$db application_name=card-retry-a" \
    >"$work/a.jsonl" 2>"$work/a.log" &
a=$!; pids+=("$a")
holder_begin "held by a writer 1"
wait_for 10 "consumer a inside events_after" "$a" in_events_after card-retry-a
bpid=$(backend_pid card-retry-a)
for n in 1 2; do
    sql "SELECT pg_cancel_backend($bpid)" >/dev/null
    wait_for 10 "retry $n after the cancel logged" "$a" log_has a "events_after failed with SQLSTATE 57014 .*retry $n in"
    wait_for 10 "consumer a back inside events_after after cancel $n" "$a" in_events_after card-retry-a
done
[ "$(backend_pid card-retry-a)" = "$bpid" ] || fail "consumer a did not retry on the same connection"
holder_commit
wait_for 10 "consumer a acknowledging the held event $held" "$a" acked retry_a "$held"
next=$(emit "next 1")
wait_for 10 "consumer a acknowledging the next event $next" "$a" acked retry_a "$next"
printed_exactly a 0 "$held $next"
say "still running after two cancels; printed the held event $held and the next one $next"

echo "consumer-retry: lock_timeout (55P03) while events_after waits for a writer"
start=$(sql "SELECT max(seq) FROM card.event")
sql "SELECT card.consumer_register('retry_b', $start)" >/dev/null
"$consumer" -n retry_b -p 200 "dbname=$db application_name=card-retry-b options='-c lock_timeout=150'" \
    >"$work/b.jsonl" 2>"$work/b.log" &
b=$!; pids+=("$b")
holder_begin "held by a writer 2"
wait_for 15 "three lock_timeout retries logged" "$b" log_has b "events_after failed with SQLSTATE 55P03 .*retry 3 in"
holder_commit
wait_for 15 "consumer b acknowledging the held event $held" "$b" acked retry_b "$held"
next=$(emit "next 2")
wait_for 10 "consumer b acknowledging the next event $next" "$b" acked retry_b "$next"
printed_exactly b "$start" "$held $next"
say "still running after $(grep -c 'SQLSTATE 55P03' "$work/b.log") lock timeouts; printed $held and $next"
kill "$b"; wait "$b" 2>/dev/null || true

echo "consumer-retry: a terminated backend (57P01): reconnect"
start=$(sql "SELECT max(seq) FROM card.event")
holder_begin "held by a writer 3"
wait_for 10 "consumer a inside events_after" "$a" in_events_after card-retry-a
sql "SELECT pg_terminate_backend($(backend_pid card-retry-a))" >/dev/null
wait_for 10 "consumer a reconnecting" "$a" log_has a "connection lost after seq"
holder_commit
wait_for 15 "consumer a acknowledging the held event $held" "$a" acked retry_a "$held"
next=$(emit "next 3")
wait_for 10 "consumer a acknowledging the next event $next" "$a" acked retry_a "$next"
printed_exactly a "$start" "$held $next"
say "reconnected; printed $held and $next"

# One line per retry, with a SQLSTATE (a broken connection may have none:
# libpq drops the server's last words); never an event's data.
if grep -q -e 'held by a writer' -e 'next [0-9]' -e '"seq"' "$work/a.log" "$work/b.log"; then
    fail "the consumer's log holds event data"
fi
if grep -v -e 'SQLSTATE [0-9A-Z]\{5\}' -e 'connection lost after seq' "$work/a.log" "$work/b.log"; then
    fail "a log line without its SQLSTATE (above)"
fi
say "$(cat "$work/a.log" "$work/b.log" | wc -l) log lines, one per retry, each with its SQLSTATE (none for a broken connection), no event data"

echo "consumer-retry: SIGTERM during a long wait ends the consumer at once, status 0"
"$consumer" -n retry_d -p 600000 "dbname=$db application_name=card-retry-d" \
    >"$work/d.jsonl" 2>"$work/d.log" &
d=$!; pids+=("$d")
sleeping_in_events_after() {
    [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$1'
                AND state = 'active' AND wait_event = 'Extension' AND query LIKE '%events_after%'")" = 1 ]
}
wait_for 10 "consumer d asleep inside events_after" "$d" sleeping_in_events_after card-retry-d
t0=$(date +%s%N)
kill -TERM "$d"
st=0; timeout 5 tail --pid="$d" -f /dev/null || st=$?
[ $st -eq 0 ] || fail "consumer d still runs 5 s after SIGTERM (its 10-minute wait was not cancelled)"
wait "$d" && st=0 || st=$?
[ $st -eq 0 ] || fail "consumer d exited with status $st after SIGTERM, want 0"
[ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'card-retry-d'")" = 0 ] \
    || fail "consumer d left its backend behind"
say "stopped $(( ($(date +%s%N) - t0) / 1000000 )) ms after SIGTERM, status 0, its wait cancelled"

echo "consumer-retry: permanent errors still end the consumer with status 1"
# Its consumer unregistered under it: the next acknowledgement fails with P0002.
sql "SELECT card.consumer_unregister('retry_a')" >/dev/null
emit "after unregister" >/dev/null
st=0; timeout 20 tail --pid="$a" -f /dev/null || st=$?
[ $st -eq 0 ] || fail "consumer a still runs after its consumer was unregistered (P0002)"
wait "$a" && st=0 || st=$?
[ $st -eq 1 ] || fail "consumer a exited with status $st after P0002, want 1"
log_has a "consumer_ack failed with SQLSTATE P0002: giving up" || fail "no P0002 giving-up line"
say "unregistered consumer (P0002): status 1"

# No privilege on the schema: 42501 at registration.
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE ROLE $nopriv LOGIN" >/dev/null
st=0
timeout 20 "$consumer" -n retry_c "dbname=$db user=$nopriv" >"$work/c.jsonl" 2>"$work/c.log" || st=$?
[ $st -eq 1 ] || fail "a consumer without privileges exited with status $st, want 1 (124: still running)"
log_has c "consumer_register failed with SQLSTATE 42501: giving up" || fail "no 42501 giving-up line"
say "no privilege (42501): status 1"

say "ok"
