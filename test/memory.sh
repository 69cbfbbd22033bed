#!/usr/bin/env bash
# Memory checks of the extension's C code (issue 10), on clusters of its own:
#
#   1. UBSan: the extension built from a copy of this tree with
#      -fsanitize=undefined -fno-sanitize-recover=all, installed, and every
#      pg_regress and isolation suite run against a server whose environment
#      has UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1; fails on any
#      UBSan report in the server log, any crash, any regression diff.  Then
#      the normal build of the same copy is installed again.  Both installs
#      and the suites between them hold /tmp/card-install.lock (flock), so
#      nobody else installs meanwhile and the system is left with the normal
#      build, also when this script is interrupted.
#   2. valgrind memcheck: the stock server (not built with USE_VALGRIND) runs
#      whole under valgrind (test/memory/valgrind-postgres; PostgreSQL's
#      suppressions, test/memory/valgrind.supp, and ours, local.supp) with
#      the normal build, serving the pg_regress suites that cover the C entry
#      points (setup order lifecycle activation funding events reveal replace
#      pin; --long: every pg_regress and isolation suite).  test/memory/vg-report
#      reads the logs: fails on any error in the extension's code (a frame of
#      card.so in its stack, or bytes its stack left uninitialised) and on any
#      read or write below the stack pointer (a Datum pointing into a stack
#      frame that has ended); errors elsewhere are counted and listed by kind.
#
# A Datum pointing into the stack frame of a C function that has returned
# (issue 10, defect 1: card_pin_check returned card_time_uuid(&local_uuid))
# shows under valgrind as an invalid read "below stack pointer" in the
# server code that reads the result (uuid_out), during the statement that
# called the function; that is why step 2 fails on such reads whoever's the
# frame.  UBSan does not see it, gcc's -Wreturn-local-addr and -fanalyzer do
# not see it through a function call, and ASan (which would, with
# detect_stack_use_after_return) hangs Debian's server.
#
# The copy (rsync of this tree without .git and build outputs) leaves the
# main tree's objects alone.  Options:
#   --long           every suite under valgrind (about 10 minutes on 2 cores)
#   --suites "a b"   these pg_regress suites under valgrind (setup is added)
#   --no-ubsan       skip step 1          --no-valgrind   skip step 2
#   --port N         port of its clusters (default $CARD_MEMORY_PORT or 55431)
#   --keep           keep the work directory (builds, logs) and print its path
# Run as root, like scripts/test; installs valgrind and rsync if missing.
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
. scripts/lib.sh
CARD_PORT=${CARD_MEMORY_PORT:-55431}
unset PGDATABASE

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
long=0 ubsan=1 valgrind=1 keep=0 vg_suites=
while (($#)); do
    case $1 in
        --long) long=1 ;;
        --suites) vg_suites=$2; shift ;;
        --suites=*) vg_suites=${1#*=} ;;
        --port) CARD_PORT=$2; shift ;;
        --port=*) CARD_PORT=${1#*=} ;;
        --no-ubsan) ubsan=0 ;;
        --no-valgrind) valgrind=0 ;;
        --keep) keep=1 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    shift
done

UBSAN_FLAGS='-fsanitize=undefined -fno-sanitize-recover=all -fno-omit-frame-pointer'
LOCK=/tmp/card-install.lock
MAKE=(make -s "PG_CONFIG=$PG_BIN/pg_config")
started=$(date +%s)
status=0
fail() { echo "FAIL: $*"; status=1; }
# A crash in a server log.  A backend that exits with code 1 (FATAL, or
# UBSan's halt) is not logged as one; the logical replication launcher's
# exit code 1 at shutdown is normal in PostgreSQL 15.
CRASH_RE='terminated by signal|terminating any other active server processes|server process \(PID [0-9]+\) exited with exit code|exited with exit code [2-9]'

# Summary figures.
ubsan_result="not run" ubsan_reports="-" ubsan_secs=0
vg_result="not run" vg_card="-" vg_dead="-" vg_other="-" vg_procs="-" vg_secs=0 vg_suites_run="-"

work=$(mktemp -d /tmp/card-memory.XXXXXX)
chmod 755 "$work"
lock_held=0 ubsan_installed=0

# On any exit: the cluster stopped and removed, the normal build back in
# place if the UBSan one is installed, the lock released, the work
# directory removed.
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$bg_pid" ]; then kill -TERM -- "-$bg_pid" 2>/dev/null || true; fi
    if [ -n "${CARD_DIR:-}" ] && [ -f "$CARD_DIR/data/postmaster.pid" ]; then
        # a server under valgrind takes its time; do not wait for it
        runuser -u postgres -- $PG_BIN/pg_ctl -D "$CARD_DIR/data" -m immediate -w -t 120 stop \
            >/dev/null 2>&1 || true
    fi
    cluster_stop
    if [ $ubsan_installed = 1 ]; then
        echo "memory: putting the normal build back" >&2
        if [ -f "$work/normal/card.so" ]; then
            as_root "${MAKE[@]}" -C "$work/normal" install 9>&- || rc=1
        else
            echo "memory: WARNING: the UBSan build of card is still installed" >&2
            rc=1
        fi
    fi
    if [ $lock_held = 1 ]; then flock -u 9 2>/dev/null || true; fi
    if [ $keep = 1 ]; then echo "memory: work directory kept: $work" >&2; else rm -rf "$work"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# bg_wait OUT COMMAND...: COMMAND in a session of its own, its output in
# OUT, waited for.  A Ctrl-C (or kill) of this script then ends the wait at
# once (bash ignores a SIGINT that its foreground child survives, and
# pg_regress does), and cleanup ends the command's whole process group.
bg_pid=
bg_wait() {
    local out=$1 rc=0
    shift
    setsid "$@" >"$out" 2>&1 9>&- </dev/null &
    bg_pid=$!
    wait $bg_pid || rc=$?
    bg_pid=
    return $rc
}

# scripts/lib.sh's cluster, on our port; its EXIT trap (cluster_stop) is
# replaced by ours at once, also when the start fails halfway.
start_cluster() {
    cluster_start 9>&- || true
    trap cleanup EXIT
    runuser -u postgres -- $PG_BIN/pg_ctl -D "${CARD_DIR:-/nonexistent}/data" status >/dev/null ||
        { echo "FAIL: the cluster did not start"; exit 1; }
}

# The packages of scripts/lib.sh, and ours.
ensure_packages
missing=()
for tool in valgrind rsync; do command -v $tool >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    as_root apt-get update -q
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q "${missing[@]}"
fi

# ---------------------------------------------------------------- builds
say "memory: copying the tree to $work and building it"
rsync -a --exclude=/.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
    --exclude=/results/ --exclude=/output_iso/ --exclude=/tmp_check/ --exclude=/log/ \
    --exclude=/regression.diffs --exclude=/regression.out --exclude=/consumer/card-consumer \
    "$root"/ "$work/normal"/
"${MAKE[@]}" -C "$work/normal"
if [ $ubsan = 1 ]; then
    rsync -a --exclude='*.o' --exclude='*.so' --exclude=/consumer/card-consumer "$work/normal"/ "$work/ubsan"/
    "${MAKE[@]}" -C "$work/ubsan" COPT="$UBSAN_FLAGS"
    if [[ "$(nm -D "$work/ubsan/card.so")" != *' U __ubsan_handle_'* ]]; then
        echo "FAIL: the UBSan build of card.so calls no UBSan handler"
        exit 1
    fi
fi
# installcheck in the copies runs as root against a server run by postgres.
export PGUSER=postgres

# The results of make installcheck's output: "pg_regress 16 passed,
# isolation 2 of 10 failed" (pg_regress runs first, isolation only after it
# passed).
regress_result() {
    sed -n -e 's/.*All \([0-9]*\) tests passed.*/\1 passed/p' \
           -e 's/.* \([0-9]* of [0-9]*\) tests failed.*/\1 failed/p' "$1" |
        sed -e '1s/^/pg_regress /' -e '2s/^/isolation /' | paste -sd, - | sed 's/,/, /; s/^$/no result/'
}
show_diffs() {
    local dir=$1 f
    for f in "$dir/regression.diffs" "$dir/output_iso/regression.diffs"; do
        [ -s "$f" ] && { echo "--- $f (first 80 lines)"; head -80 "$f"; }
    done
    return 0
}

# ---------------------------------------------------------------- 1. UBSan
if [ $ubsan = 1 ]; then
    t=$(date +%s)
    say "UBSan: waiting for $LOCK"
    exec 9>>"$LOCK"
    flock 9
    lock_held=1
    say "UBSan: installing the UBSan build; every pg_regress and isolation suite (port $CARD_PORT)"
    ubsan_installed=1
    as_root "${MAKE[@]}" -C "$work/ubsan" install 9>&-
    # pg_ctl starts the server with this environment.
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    start_cluster
    unset UBSAN_OPTIONS
    pid=$(head -1 "$CARD_DATA/postmaster.pid")
    grep -qz '^UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1$' "/proc/$pid/environ" ||
        fail "UBSAN_OPTIONS is not in the server's environment"
    # Preloaded (scripts/lib.sh), the library is in the postmaster already.
    if grep -Eq "^shared_preload_libraries = .*card" "$CARD_DATA/postgresql.conf" &&
        ! grep -q libubsan "/proc/$pid/maps"; then
        fail "the server did not load the UBSan build"
    fi
    out=$work/ubsan-installcheck.out
    if ! bg_wait "$out" "${MAKE[@]}" -C "$work/ubsan" installcheck; then
        tail -5 "$out"
        show_diffs "$work/ubsan"
        fail "pg_regress/isolation suites of the UBSan build"
    fi
    ubsan_result=$(regress_result "$out")
    log=$CARD_DIR/server.log
    ubsan_reports=$(grep -c 'runtime error:' "$log" || true)
    if [ "$ubsan_reports" != 0 ] || grep -q 'UndefinedBehaviorSanitizer' "$log"; then
        echo "--- UBSan reports in the server log:"
        grep -n -A25 -e 'runtime error:' -e 'UndefinedBehaviorSanitizer' "$log" | head -200
        fail "UBSan reported undefined behaviour"
    fi
    if grep -E "$CRASH_RE" "$log"; then
        grep -A2 -E "$CRASH_RE" "$log" | head -40
        fail "a server process crashed under the UBSan build"
    fi
    cp "$log" "$work/server-ubsan.log"
    cluster_stop
    CARD_DIR=
    say "UBSan: installing the normal build again"
    as_root "${MAKE[@]}" -C "$work/normal" install 9>&-
    ubsan_installed=0
    flock -u 9
    lock_held=0
    exec 9>&-
    ubsan_secs=$(($(date +%s) - t))
fi

# ---------------------------------------------------------------- 2. valgrind
if [ $valgrind = 1 ]; then
    t=$(date +%s)
    if [ $long = 1 ]; then
        regress=$(sed -n 's/^REGRESS = //p' "$work/normal/Makefile")
        isolation=$(sed -n 's/^ISOLATION = //p' "$work/normal/Makefile")
    else
        # The C entry points: ordering, lifecycle, activation, funding and
        # authorisation, the feed, reveal, replacement, PIN.  Makefile order.
        regress="setup order lifecycle activation funding events reveal replace pin"
        isolation=
    fi
    if [ -n "$vg_suites" ]; then regress="setup ${vg_suites//setup/}"; isolation=; fi
    vg_suites_run="$regress${isolation:+ + isolation: $isolation}"
    # The library the server will load must be the normal build of this copy.
    installed=$($PG_BIN/pg_config --pkglibdir)/card.so
    cmp -s "$installed" "$work/normal/card.so" ||
        echo "memory: WARNING: $installed is not this run's normal build (installed by someone else since)"
    say "valgrind: the server under memcheck; pg_regress: $regress${isolation:+; isolation: $isolation}"
    start_cluster
    runuser -u postgres -- $PG_BIN/pg_ctl -D "$CARD_DATA" -m fast -w stop >/dev/null
    # jit off: no LLVM code under valgrind; autovacuum off: less to wait
    # for; every statement logged with its backend and suite, so that
    # vg-report can tell where an error happened.
    cat >>"$CARD_DATA/postgresql.conf" <<'CONF'
jit = off
autovacuum = off
log_statement = 'all'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %a '
CONF
    vglogs=$CARD_DIR/valgrind
    install -d -o postgres "$vglogs"
    log=$CARD_DIR/server-valgrind.log
    t0=$(date +%s.%N)
    CARD_VG_LOGDIR=$vglogs \
    CARD_VG_SUPP=$work/normal/test/memory/valgrind.supp:$work/normal/test/memory/local.supp \
        runuser -u postgres -- env PG_BIN="$PG_BIN" $PG_BIN/pg_ctl -D "$CARD_DATA" \
        -p "$work/normal/test/memory/valgrind-postgres" \
        -l "$log" -w -t 600 start >/dev/null 9>&-
    out=$work/valgrind-installcheck.out
    if ! bg_wait "$out" "${MAKE[@]}" -C "$work/normal" installcheck REGRESS="$regress" ISOLATION="$isolation"; then
        tail -5 "$out"
        show_diffs "$work/normal"
        fail "pg_regress/isolation suites under valgrind"
    fi
    vg_result=$(regress_result "$out")
    runuser -u postgres -- $PG_BIN/pg_ctl -D "$CARD_DATA" -m fast -w -t 600 stop >/dev/null
    if grep -E "$CRASH_RE" "$log"; then
        fail "a server process crashed under valgrind"
    fi
    cp -r "$log" "$vglogs" "$work/"
    if ! cmp -s "$installed" "$work/normal/card.so" &&
        ! grep -Eq "^shared_preload_libraries = .*card" "$CARD_DATA/postgresql.conf"; then
        echo "memory: WARNING: $installed changed during the valgrind run (not preloaded: later backends loaded another build)"
    fi
    # The extension's frames: its library, or its sources (with debug
    # information valgrind names the file, not the library).
    names=$(cd "$work/normal/src" && ls ./*.c ./*.h | sed 's|^\./||; s/\.[ch]$//' | sort -u | paste -sd'|' -)
    card_re="\\(in [^)]*/card\\.so\\)|/src/(${names})\\.[ch]:[0-9]+\\)"
    report=$work/vg-report.out
    "$work/normal/test/memory/vg-report" --logs "$vglogs" --card-re "$card_re" \
        --server-log "$log" --t0 "$t0" --others "$work/valgrind-elsewhere.txt" >"$report"
    cat "$report"
    read -r vg_card vg_dead vg_other vg_procs < <(sed -n \
        's/^vg-report: card=\([0-9]*\) deadstack=\([0-9]*\) elsewhere=\([0-9]*\) processes=\([0-9]*\)$/\1 \2 \3 \4/p' "$report") || true
    [ -n "$vg_procs" ] || fail "vg-report gave no summary"
    [ "${vg_procs:-0}" -gt 1 ] || fail "no valgrind logs of server processes"
    [ "${vg_card:-1}" = 0 ] || fail "valgrind: $vg_card error(s) in the extension's code"
    [ "${vg_dead:-1}" = 0 ] || fail "valgrind: $vg_dead read(s)/write(s) below the stack pointer"
    cluster_stop
    CARD_DIR=
    vg_secs=$(($(date +%s) - t))
fi

say "memory: summary"
printf '%-40s %s\n' \
    "UBSan build:" "$ubsan_result (${ubsan_secs}s)" \
    "UBSan reports:" "$ubsan_reports" \
    "valgrind, normal build:" "$vg_result (${vg_secs}s)" \
    "valgrind suites:" "$vg_suites_run" \
    "valgrind errors in the extension:" "$vg_card" \
    "valgrind reads/writes below the stack:" "$vg_dead" \
    "valgrind errors elsewhere:" "$vg_other (PostgreSQL's, by kind above; $vg_procs process logs)" \
    "duration:" "$(($(date +%s) - started))s"
if [ $status = 0 ]; then say "memory: passed"; else say "memory: FAILED"; fi
exit $status
