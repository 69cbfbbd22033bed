#!/usr/bin/env bash
# card-server under load (issue 13), against the cluster PGHOST/PGPORT name:
# wrk drives POST /v3/cards and POST /v3/authorizations for 10 s each on
# loopback (4 connections) and every answer must be a 2xx; then the same
# for 2 s each with the server under valgrind (memcheck), which must report
# no error and no definitely lost block in the server when it exits on
# SIGTERM.  The throughput figures against direct calls are bench/server's.
#   LOAD_SECONDS       seconds of each wrk run (default 10)
#   VALGRIND_SECONDS   seconds of each run under valgrind (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PGHOST:?}" "${PGPORT:?}"
work=$(mktemp -d)
. test/http-lib.sh
cleanup() { http_cleanup; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "server-load: FAIL: $*"; tail -20 "$work/server.log" 2>/dev/null; tail -30 "$work/wrk.log" 2>/dev/null; exit 1; }
secs=${LOAD_SECONDS:-10}
vsecs=${VALGRIND_SECONDS:-2}

http_setup card_http_load
http_load_data 50
http_start -- --pool 4 || fail "the server did not start"
for route in order authorize; do
    read -r rps n errors <<<"$(http_wrk "$route" "$secs" 4)"
    echo "server-load: $route: $n requests in $secs s ($rps/s), $errors errors"
    [ "$n" -gt 0 ] || fail "$route: no request answered"
    [ "$errors" = 0 ] || fail "$route: $errors requests failed"
done
http_stop || fail "the server exited non-zero on SIGTERM"

echo "server-load: the server under valgrind, $vsecs s of each route"
http_start valgrind --quiet --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
    --error-exitcode=99 --log-file="$work/valgrind.log" -- --pool 2 || fail "the server did not start under valgrind"
for route in order authorize; do
    read -r rps n errors <<<"$(http_wrk "$route" "$vsecs" 2)"
    echo "server-load:   $route under valgrind: $n requests, $errors errors"
    [ "$errors" = 0 ] || fail "$route under valgrind: $errors requests failed"
done
rc=0; http_stop || rc=$?
if [ "$rc" != 0 ] || grep -q -E 'ERROR SUMMARY: [1-9]|definitely lost: [1-9]' "$work/valgrind.log"; then
    cat "$work/valgrind.log"
    fail "valgrind found errors or leaks in the server (exit $rc)"
fi
echo "server-load: valgrind: no error, no leak"
