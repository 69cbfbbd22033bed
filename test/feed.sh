#!/usr/bin/env bash
# The live feed end to end, against the cluster that PGHOST/PGPORT name:
# several writers (pgbench, 10 s) and one consumer (consumer/card-consumer);
# a server restart in the middle; a commit waking the consumer that waits
# in events_after (no NOTIFY); then every event was printed exactly once, in
# seq order.  A waiting reader is not ended by a writer that rolls back.
# Also logical decoding of card.event with wal2json.  Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PGHOST:?}" "${PGPORT:?}"
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
DATA=${CARD_DATA:?CARD_DATA must name the cluster data directory}
db=card_feed
consumer=${CARD_CONSUMER:-consumer/card-consumer}   # another binary to test
work=$(mktemp -d)
consumer_pid=
cleanup() {
    [ -n "$consumer_pid" ] && kill "$consumer_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
sql() { psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }

createdb "$db"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" -v layout=spread -v cards=50 -f bench/authorize_setup.sql >/dev/null
start_seq=$(sql "SELECT coalesce(max(seq), 0) FROM card.event")

# Each events_after call of the consumer waits up to 30 s: anything faster
# is a commit waking it.
"$consumer" -n feedtest -p 30000 "dbname=$db application_name=card-consumer" \
    >"$work/feed.jsonl" 2>"$work/consumer.log" &
consumer_pid=$!

echo "feed: 10 s of writers (authorisations and credits, 4 clients)"
pgbench -n -M prepared -f bench/authorize.pgbench@8 -f bench/credit.pgbench@2 -D cards=50 \
    -c 4 -j 2 -T 10 "$db" >"$work/pgbench.log" 2>&1 || { cat "$work/pgbench.log"; fail "pgbench"; }
grep -E "^(number of transactions actually processed|tps)" "$work/pgbench.log" | sed 's/^/feed:   /'

echo "feed: restarting the server under the consumer"
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$DATA" -l "$(dirname "$DATA")/server.log" -m fast -w restart >/dev/null
pgbench -n -M prepared -f bench/authorize.pgbench@8 -f bench/credit.pgbench@2 -D cards=50 \
    -c 4 -j 2 -T 3 "$db" >"$work/pgbench2.log" 2>&1 || { cat "$work/pgbench2.log"; fail "pgbench after restart"; }

# Wait until the consumer is back and has acknowledged everything.
wait_for_cursor() {
    local want=$1 limit=$2 waited=0
    while [ "$(sql "SELECT cursor FROM card.event_consumer WHERE name = 'feedtest'")" != "$want" ]; do
        sleep 0.2; waited=$((waited + 1))
        [ $waited -lt $((limit * 5)) ] || fail "consumer did not reach seq $want within ${limit}s"
    done
}
wait_for_cursor "$(sql "SELECT max(seq) FROM card.event")" 60

echo "feed: one more event must wake the consumer, well before its 30 s wait ends"
sleep 1  # the consumer has drained everything and waits inside events_after
t0=$(date +%s%N)
last=$(sql "SELECT seq FROM card.event_emit('account.credited', NULL, NULL, NULL, '{\"note\": \"notify test\"}') seq")
wait_for_cursor "$last" 10
echo "feed:   delivered in $(( ($(date +%s%N) - t0) / 1000000 )) ms"

[ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'card-consumer' AND wait_event = 'Extension'")" = 1 ] \
    || fail "the consumer is not waiting inside events_after"
kill "$consumer_pid"; wait "$consumer_pid" 2>/dev/null || true; consumer_pid=

# Every event after the start exactly once, in seq order.
psql -X -q -v ON_ERROR_STOP=1 -d "$db" <<SQL
CREATE TABLE feed_seen (line_no bigint GENERATED ALWAYS AS IDENTITY, line text);
\copy feed_seen (line) FROM '$work/feed.jsonl' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02')
SQL
read -r printed distinct in_order expected <<<"$(sql "
  WITH seen AS (SELECT line_no, (line::jsonb ->> 'seq')::bigint AS seq FROM feed_seen WHERE (line::jsonb ->> 'seq')::bigint > $start_seq)
  SELECT count(*), count(DISTINCT seq),
         bool_and(seq > coalesce(prev, 0)) ,
         (SELECT count(*) FROM card.event WHERE seq > $start_seq)
    FROM (SELECT seq, lag(seq) OVER (ORDER BY line_no) AS prev FROM seen) s" | tr '|' ' ')"
echo "feed: events written $expected, printed $printed, distinct $distinct, in seq order: $in_order"
[ "$printed" = "$expected" ] && [ "$distinct" = "$expected" ] && [ "$in_order" = "t" ] \
    || fail "the consumer did not see every event exactly once in order"
[ "$(sql "SELECT count(*) FROM feed_seen s LEFT JOIN card.event e ON e.seq = (s.line::jsonb ->> 'seq')::bigint WHERE e.seq IS NULL AND (s.line::jsonb ->> 'seq')::bigint > $start_seq")" = 0 ] \
    || fail "the consumer printed events that do not exist"
grep -q "connection lost after seq" "$work/consumer.log" \
    && echo "feed: the consumer reconnected after the restart" \
    || fail "the consumer never lost its connection: was the server restarted?"

echo "feed: under a steady stream the consumer reads in batches (-g), one acknowledgement per pause"
# Acknowledgements are the updates of card.event_consumer (each consumer's
# backend reports them when it exits); the same stream read with -g 0 is
# the control that the count sees each read.
acks_with() {
    local before after pid
    before=$(sql "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relid = 'card.event_consumer'::regclass")
    sql "SELECT card.consumer_register('gather$1', (SELECT max(seq) FROM card.event))" >/dev/null
    "$consumer" -n "gather$1" -g "$1" "dbname=$db application_name=card-consumer-gather" >/dev/null 2>>"$work/consumer.log" &
    pid=$!
    pgbench -n -f bench/credit.pgbench -D cards=50 -c 2 -j 2 -R 200 -T 4 "$db" >/dev/null 2>&1
    sleep 0.5
    kill "$pid"; wait "$pid" || fail "the consumer with -g $1 ended with $?"
    sleep 1
    after=$(sql "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relid = 'card.event_consumer'::regclass")
    echo $((after - before))
}
# Each acknowledgement also records the synchronous_commit it ran under.
psql -X -q -v ON_ERROR_STOP=1 -d "$db" <<'SQL'
CREATE TABLE ack_commit (setting text NOT NULL);
CREATE FUNCTION ack_commit_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.ack_commit VALUES (current_setting('synchronous_commit'));
    RETURN NULL;
END $$;
CREATE TRIGGER ack_commit_record AFTER UPDATE ON card.event_consumer
    FOR EACH ROW EXECUTE FUNCTION ack_commit_record();
SQL
gathered=$(acks_with 250)
each=$(acks_with 0)
echo "feed:   4 s at 200 commits/s: $gathered acknowledgements with -g 250, $each with -g 0"
[ "$gathered" -ge 3 ] && [ "$gathered" -le 24 ] || fail "-g 250 acknowledged $gathered times in 4 s (want 3 to 24)"
[ "$each" -gt $((gathered * 3)) ] || fail "-g 0 acknowledged only $each times: the count does not see each read"
commits=$(sql "SELECT string_agg(setting || ' ' || n, ', ') FROM (SELECT setting, count(*) AS n FROM ack_commit GROUP BY 1 ORDER BY 1) s")
echo "feed:   the acknowledgements' synchronous_commit: $commits"
[ "$commits" = "off $((gathered + each))" ] || fail "acknowledgements did not all commit asynchronously: $commits"
sql "DROP TRIGGER ack_commit_record ON card.event_consumer" >/dev/null
for bad in "-g -1" "-g 60001" "-g abc" "-g 10ms" "-g 4294967296" "-g +5" "-b 0" "-b 2x" "-p 0" "-x -5"; do
    # shellcheck disable=SC2086
    refusal=$("$consumer" $bad "dbname=$db" 2>&1) && fail "card-consumer accepted $bad"
    [ $? -eq 2 ] && [[ $refusal == "usage: "*"[-g gather_ms]"* ]] || fail "card-consumer $bad: no usage, or not status 2"
done

echo "feed: a waiting reader is not ended by a writer that rolls back, and is by the next commit"
cur=$(sql "SELECT max(seq) FROM card.event")
psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$db" \
    -c "SELECT count(*) || ' ' || string_agg(data ->> 'note', ',') FROM card.events_after($cur, 100, '20 s')" \
    >"$work/wait.out" 2>&1 &
reader=$!
sleep 0.5
psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "BEGIN" \
    -c "SELECT card.event_emit('account.credited', NULL, NULL, NULL, '{\"note\": \"rolled back\"}')" \
    -c "ROLLBACK" >/dev/null
sleep 0.5
kill -0 "$reader" 2>/dev/null || { cat "$work/wait.out"; fail "the reader returned after a rollback"; }
t0=$(date +%s%N)
sql "SELECT card.event_emit('account.credited', NULL, NULL, NULL, '{\"note\": \"committed\"}')" >/dev/null
wait "$reader" || { cat "$work/wait.out"; fail "the waiting reader failed"; }
waited=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$(cat "$work/wait.out")" = "1 committed" ] || { cat "$work/wait.out"; fail "the waiting reader returned something else"; }
[ "$waited" -lt 5000 ] || fail "the waiting reader took $waited ms after the commit"
echo "feed:   returned the committed event alone, $waited ms after its commit"

echo "feed: a wait ends on time while another programme's commits keep waking the reader"
quiet=$(sql "SELECT card.programme_create('Feed quiet', '45671299')")
psql -X -q -d "$db" -c "SET client_min_messages = warning" -c "DROP ROLE IF EXISTS card_feed_quiet" \
    -c "CREATE ROLE card_feed_quiet LOGIN IN ROLE card_reader" >/dev/null
sql "SELECT card.programme_grant('$quiet', 'card_feed_quiet')" >/dev/null
pgbench -n -f bench/credit.pgbench -D cards=50 -c 2 -j 2 -R 200 -T 5 "$db" >/dev/null 2>&1 &
writers=$!
sleep 1
t0=$(date +%s%N)
got=$(PGUSER=card_feed_quiet psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$db" \
    -c "SELECT count(*) FROM card.events_after(0, 10, '1 s')")
waited=$(( ($(date +%s%N) - t0) / 1000000 ))
wait "$writers" || true
psql -X -q -d "$db" -c "SET client_min_messages = warning" -c "DROP OWNED BY card_feed_quiet" \
    -c "DROP ROLE card_feed_quiet" >/dev/null
[ "$got" = 0 ] || fail "the quiet programme's reader got $got events of another programme"
[ "$waited" -lt 2500 ] || fail "a 1 s wait took $waited ms while another programme committed"
echo "feed:   a 1 s wait returned after $waited ms, with nothing, under 200 commits/s of another programme"

echo "feed: logical decoding of card.event with wal2json"
sql "SELECT 1 FROM pg_create_logical_replication_slot('card_feed_cdc', 'wal2json')" >/dev/null
sql "SELECT balance FROM card.account_credit((SELECT account_id FROM bench_card WHERE n = 1), 1, 'cdc-check')" >/dev/null
changes=$(sql "SELECT data FROM pg_logical_slot_get_changes('card_feed_cdc', NULL, NULL,
                 'format-version', '2', 'add-tables', 'card.event')")
sql "SELECT pg_drop_replication_slot('card_feed_cdc')" >/dev/null
echo "$changes" | grep -q '"action":"I".*"table":"event".*account.credited' \
    || { echo "$changes"; fail "wal2json did not stream the card.event insert"; }
echo "$changes" | grep -q '"table":"account"' && fail "add-tables let another table through"
echo "feed: wal2json streamed the event insert: $(echo "$changes" | grep -c '"action":"I"') insert(s)"
echo "feed: ok"
