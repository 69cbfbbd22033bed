# Shared steps of scripts/demo and scripts/test: packages, build, a
# throwaway cluster.  Source it; it expects to run from the project root.

PG_BIN=/usr/lib/postgresql/15/bin
CARD_PORT=${CARD_PORT:-54329}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian 12 packages the build and the suites need.
# ensure_packages [test]: with "test", also what only the suites use.
ensure_packages() {
    local wanted=(make gcc pkg-config postgresql-15 postgresql-server-dev-15 libssl-dev libpq-dev
                  postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl postgresql-15-wal2json sqlsmith libdbd-pg-perl
                  libmicrohttpd-dev libjson-c-dev curl)
    local missing=()
    [ "${1:-}" = test ] && wanted+=(jq wrk valgrind chromium openssl postgresql-15-plproxy)
    for p in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    # npm drives the browser suite (playwright-core); any Node 18+ with its npm will do:
    # nodejs first (some repositories' nodejs carries npm and conflicts with Debian's).
    [ "${1:-}" = test ] && ! command -v npm >/dev/null && missing+=(nodejs)
    if ((${#missing[@]})); then
        say "installing ${missing[*]}"
        as_root apt-get update -q
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q "${missing[@]}"
    fi
    if [ "${1:-}" = test ] && ! command -v npm >/dev/null; then
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q npm
    fi
}

build_and_install() {
    say "building and installing the extension"
    make -s PG_CONFIG=$PG_BIN/pg_config
    as_root make -s install PG_CONFIG=$PG_BIN/pg_config
}

# write_key_file PATH: a fresh key file, one MAC key and PAN encryption key
# version 1, readable by the postgres OS user only.
write_key_file() {
    runuser -u postgres -- bash -c "umask 077; {
        echo \"mac \$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')\"
        echo \"1 \$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')\"
    } > '$1'"
}

# Start a cluster owned by postgres in a new temporary directory, with a
# freshly generated key file; exports PGHOST, PGPORT, PGUSER, CARD_DIR and
# CARD_DATA (its data directory).
cluster_start() {
    CARD_DIR=$(mktemp -d /tmp/card.XXXXXX)
    chmod 755 "$CARD_DIR"
    chown postgres: "$CARD_DIR"
    trap cluster_stop EXIT
    say "starting a throwaway cluster in $CARD_DIR"
    runuser -u postgres -- $PG_BIN/initdb -D "$CARD_DIR/data" -A trust -E UTF8 \
        --locale=C.UTF-8 >"$CARD_DIR/initdb.log"
    write_key_file "$CARD_DIR/card.keys"
    cat >>"$CARD_DIR/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$CARD_DIR'
port = $CARD_PORT
shared_preload_libraries = 'card'
card.key_file = '$CARD_DIR/card.keys'
max_prepared_transactions = 10
log_min_messages = warning
wal_level = logical
max_replication_slots = 4
max_wal_senders = 4
CONF
    # Since 15.19 an output plugin must be allowed by name (wal2json for CDC).
    if $PG_BIN/postgres --describe-config 2>/dev/null | grep '^output_plugin_libraries' >/dev/null; then
        echo "output_plugin_libraries = 'pgoutput, test_decoding, wal2json'" >>"$CARD_DIR/data/postgresql.conf"
    fi
    runuser -u postgres -- $PG_BIN/pg_ctl -D "$CARD_DIR/data" -l "$CARD_DIR/server.log" -w start >/dev/null
    export PGHOST=$CARD_DIR PGPORT=$CARD_PORT PGUSER=postgres CARD_DIR CARD_DATA=$CARD_DIR/data
}

cluster_stop() {
    if [ -n "${CARD_DIR:-}" ] && [ -d "$CARD_DIR/data" ]; then
        runuser -u postgres -- $PG_BIN/pg_ctl -D "$CARD_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
        rm -rf "$CARD_DIR"
    fi
}
