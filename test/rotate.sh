#!/usr/bin/env bash
# Key rotation: a new key line becomes the key for new cards; card.rotate_keys()
# waits for an order in flight across the key change (and moves its card), is
# interrupted midway (a card it must wait for is held, then the call is
# cancelled), the key file changes again and is reloaded, the rotation is
# resumed and finishes; after the old key lines are removed, every card
# reveals the PAN it had before.  Runs against the cluster of PGHOST/PGPORT
# and its key file ($CARD_DIR/card.keys, as scripts/lib.sh makes it), which
# it puts back as it was.
set -euo pipefail

db=card_rotate
keys=$CARD_DIR/card.keys
cards=300
saved=$(mktemp)
cp -p "$keys" "$saved"
restore() {
    cp -p "$saved" "$keys"
    rm -f "$saved"
    psql -X -q -d postgres -c "SELECT pg_reload_conf()" >/dev/null
    dropdb --if-exists $db 2>/dev/null
}
trap restore EXIT
q() { psql -X -q -v ON_ERROR_STOP=1 -At -d $db "$@"; }
fail() { echo "FAILED: $*"; exit 1; }
new_key() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }

dropdb --if-exists $db 2>/dev/null
createdb $db
# Cards under key version 1, and a digest of each PAN as the hosted page
# reveals it (the test keeps no PAN in clear).
q >/dev/null <<SQL
CREATE EXTENSION card;
CREATE FUNCTION pan_digest(c uuid) RETURNS text LANGUAGE plpgsql AS \$\$
DECLARE
    tok text;
    result text;
BEGIN
    SELECT substring(redirect_url FROM 'token=(.*)\$') INTO tok
      FROM card.card_reveal_start(c, 'https://app.example.com/back');
    SELECT md5(pan) INTO result FROM card.card_reveal(tok);
    RETURN result;
END \$\$;
SELECT card.programme_create('Rotation', '45671234') AS p \gset
SELECT card.individual_create(:'p', 'Holder') AS i \gset
SELECT card.account_open(:'p', :'i') AS a \gset
SELECT count(*) FROM generate_series(1, $cards) g, card.card_order(:'i', :'a', 'Card ' || g) c;
CREATE TABLE before AS SELECT id, pan_digest(id) AS digest FROM card.card;
SQL
[ "$(q -c "SELECT string_agg(key_version || ':' || cards, ' ') FROM card.pan_key_versions()")" = "1:$cards" ] \
    || fail "the cards are not all under key version 1"

# An order in flight across the key change: a session seals a card under
# version 1 and stays in its transaction (fed through a FIFO) while the
# rotation starts; the rotation waits for it, then moves its card too.
fifo=$(mktemp -u)
mkfifo "$fifo"
psql -X -q -v ON_ERROR_STOP=1 -d $db -c "SET application_name = 'in_flight'" -f "$fifo" >/dev/null 2>&1 &
in_flight=$!
exec 3>"$fifo"
rm -f "$fifo"
# (on an account of its own: the reveals that record what each card shows
# wait for an order in flight on theirs).
flight_account=$(q -c "SELECT card.account_open(programme_id, individual_id) FROM card.account")
echo "BEGIN; SELECT count(*) FROM card.card_order((SELECT individual_id FROM card.account WHERE id = '$flight_account'), '$flight_account', 'In flight');" >&3
until [ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'in_flight' AND state = 'idle in transaction'")" = 1 ]; do
    sleep 0.1
done

# A new line: version 2 is the key for new cards after a reload.
echo "2 $(new_key)" >>"$keys"
q -c "SELECT pg_reload_conf()" >/dev/null
q -c "SELECT count(*) FROM card.account a, card.card_order(a.individual_id, a.id, 'New card') WHERE a.id <> '$flight_account'" >/dev/null
[ "$(q -c "SELECT pan_key_version FROM card.card WHERE display_name = 'New card'")" = 2 ] \
    || fail "a card ordered after the reload is not under key version 2"
q -c "INSERT INTO before SELECT id, pan_digest(id) FROM card.card WHERE display_name = 'New card'"

# The rotation starts while the order is in flight: it waits for that
# transaction before it moves anything.
middle=$(q -c "SELECT id FROM card.card WHERE pan_key_version = 1 ORDER BY id OFFSET 150 LIMIT 1")
psql -X -q -d $db -c "CALL card.rotate_keys(20)" >"$CARD_DIR/rotate.log" 2>&1 3>&- &
rotator=$!
wait_for() {   # wait_for EVENT: the rotation's pid once it waits on a lock of that kind
    for _ in $(seq 1 300); do
        waiting=$(q -c "SELECT pid FROM pg_stat_activity WHERE query LIKE 'CALL card.rotate_keys%' AND wait_event = '$1'")
        [ -n "$waiting" ] && return
        sleep 0.1
    done
    waiting=
}
wait_for virtualxid
[ -n "$waiting" ] || fail "the rotation did not wait for the transaction in flight"
sleep 0.5
[ "$(q -c "SELECT string_agg(key_version || ':' || cards, ' ') FROM card.pan_key_versions()")" = "1:$cards 2:1" ] \
    || fail "the rotation moved PANs before the transaction in flight ended"
echo "rotate: the rotation waits for an order in flight across the key change"
# A second run meanwhile is refused at once (two starting together would
# each wait for the other: a deadlock).
second=$(psql -X -q -d $db -c "CALL card.rotate_keys(20)" 2>&1 3>&- || true)
[[ $second == *"ERROR:  another key rotation is starting in this database"* ]] \
    || fail "a second rotation while the first waits: $second"
echo "rotate: a second rotation while the first waits is refused (55P03), not deadlocked"

# Interrupt the rotation midway: hold a card in the middle of the batches'
# order, let the order in flight commit, let the rotation reach the held
# card and wait, then cancel it.
psql -X -q -d $db -c "BEGIN" -c "SELECT 1 FROM card.card WHERE id = '$middle' FOR UPDATE" \
     -c "SELECT pg_sleep(60)" >/dev/null 2>&1 3>&- &
holder=$!
until [ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND state = 'active' AND pid <> pg_backend_pid()")" = 1 ]; do
    sleep 0.1
done
printf 'COMMIT;\n\\q\n' >&3
exec 3>&-
wait $in_flight || fail "the order in flight did not commit"
q -c "INSERT INTO before SELECT id, pan_digest(id) FROM card.card WHERE display_name = 'In flight'"
wait_for transactionid
[ -n "$waiting" ] || fail "the rotation never reached the held card: $(q -c "SELECT state, wait_event_type, wait_event FROM pg_stat_activity WHERE query LIKE 'CALL card.rotate_keys%'") $(cat "$CARD_DIR/rotate.log")"
progress=$(q -c "SELECT string_agg(key_version || ':' || cards, ' ') FROM card.pan_key_versions()")
q -c "SELECT pg_cancel_backend($waiting)" >/dev/null
wait $rotator && fail "the cancelled rotation reported success"
q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()" >/dev/null
wait $holder 2>/dev/null || true
grep -q "canceling statement due to user request" "$CARD_DIR/rotate.log" || fail "the rotation was not cancelled: $(cat "$CARD_DIR/rotate.log")"
grep -q "PANs re-encrypted under key version 2 so far" "$CARD_DIR/rotate.log" || fail "the rotation reported no progress"
done_before=$(q -c "SELECT cards FROM card.pan_key_versions() WHERE key_version = 2")
left_before=$(q -c "SELECT cards FROM card.pan_key_versions() WHERE key_version = 1")
[ "$done_before" -gt 100 ] && [ "$left_before" -gt 100 ] \
    || fail "the interruption did not come midway ($progress)"
echo "rotate: interrupted midway with $left_before PANs under key 1 and $done_before under key 2 (committed batches kept)"

# The key file changes again (version 3) and is reloaded; resume.
echo "3 $(new_key)" >>"$keys"
q -c "SELECT pg_reload_conf()" >/dev/null
q -c "CALL card.rotate_keys(50)" 2>"$CARD_DIR/rotate.log"
grep -q "under key version 3 so far, done" "$CARD_DIR/rotate.log" || fail "the resumed rotation did not finish: $(cat "$CARD_DIR/rotate.log")"
versions=$(q -c "SELECT string_agg(key_version || ':' || cards, ' ') FROM card.pan_key_versions()")
[ "$versions" = "3:$((cards + 2))" ] || fail "after the resumed rotation: $versions"
echo "rotate: resumed under key 3 and finished: $versions"

# Remove the old key lines; every card still reveals its PAN.
grep -v -E '^(1|2) ' "$keys" >"$keys.new"
cat "$keys.new" >"$keys"
rm -f "$keys.new"
grep -c -E '^[0-9]+ ' "$keys" | grep -qx 1 || fail "the old key lines are still in the key file"
q -c "SELECT pg_reload_conf()" >/dev/null
same=$(q -c "SELECT count(*) FROM before b WHERE pan_digest(b.id) = b.digest")
checks=$(q -c "SELECT count(*) FROM card.card c, card.pan_check(c.id) k WHERE k.luhn_valid AND k.fingerprint_matches AND k.last4_matches")
[ "$same" = $((cards + 2)) ] || fail "only $same of $((cards + 2)) cards reveal the PAN they had"
[ "$checks" = $((cards + 2)) ] || fail "only $checks cards pass pan_check"
echo "rotate: old key lines removed; all $same cards reveal the PAN they had before"
