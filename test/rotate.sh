#!/usr/bin/env bash
# Key rotation: a new key line becomes the key for new cards; card.rotate_keys()
# is interrupted midway (a card it must wait for is held, then the call is
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

# A new line: version 2 is the key for new cards after a reload.
echo "2 $(new_key)" >>"$keys"
q -c "SELECT pg_reload_conf()" >/dev/null
q -c "SELECT count(*) FROM card.card_order((SELECT individual_id FROM card.account), (SELECT id FROM card.account), 'New card')" >/dev/null
[ "$(q -c "SELECT pan_key_version FROM card.card WHERE display_name = 'New card'")" = 2 ] \
    || fail "a card ordered after the reload is not under key version 2"
q -c "INSERT INTO before SELECT id, pan_digest(id) FROM card.card WHERE display_name = 'New card'"

# Interrupt a rotation midway: hold a card in the middle of the batches'
# order, let the rotation reach it and wait, then cancel it.
middle=$(q -c "SELECT id FROM card.card WHERE pan_key_version = 1 ORDER BY id OFFSET 150 LIMIT 1")
psql -X -q -d $db -c "BEGIN" -c "SELECT 1 FROM card.card WHERE id = '$middle' FOR UPDATE" \
     -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
holder=$!
until [ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND state = 'active' AND pid <> pg_backend_pid()")" = 1 ]; do
    sleep 0.1
done
psql -X -q -d $db -c "CALL card.rotate_keys(20)" >"$CARD_DIR/rotate.log" 2>&1 &
rotator=$!
for _ in $(seq 1 300); do
    waiting=$(q -c "SELECT pid FROM pg_stat_activity WHERE query LIKE 'CALL card.rotate_keys%' AND wait_event_type = 'Lock'")
    [ -n "$waiting" ] && break
    sleep 0.1
done
[ -n "$waiting" ] || fail "the rotation never reached the held card"
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
[ "$versions" = "3:$((cards + 1))" ] || fail "after the resumed rotation: $versions"
echo "rotate: resumed under key 3 and finished: $versions"

# Remove the old key lines; every card still reveals its PAN.
grep -v -E '^(1|2) ' "$keys" >"$keys.new"
cat "$keys.new" >"$keys"
rm -f "$keys.new"
grep -c -E '^[0-9]+ ' "$keys" | grep -qx 1 || fail "the old key lines are still in the key file"
q -c "SELECT pg_reload_conf()" >/dev/null
same=$(q -c "SELECT count(*) FROM before b WHERE pan_digest(b.id) = b.digest")
checks=$(q -c "SELECT count(*) FROM card.card c, card.pan_check(c.id) k WHERE k.luhn_valid AND k.fingerprint_matches AND k.last4_matches")
[ "$same" = $((cards + 1)) ] || fail "only $same of $((cards + 1)) cards reveal the PAN they had"
[ "$checks" = $((cards + 1)) ] || fail "only $checks cards pass pan_check"
echo "rotate: old key lines removed; all $same cards reveal the PAN they had before"
