#!/usr/bin/env bash
# The leak suite: no clear PAN, PIN or activation token reaches the server
# log, pg_stat_statements, card.event, any table, the data directory or the
# client's messages, even with every statement logged.
#
# On its own throwaway cluster (log_statement = 'all', log_min_error_statement
# = error, log_parameter_max_length(_on_error) = 0 as the README tells DBAs,
# pg_stat_statements tracking nested statements too):
#   1. every suite (pg_regress, isolation, pgTAP, dump/restore, upgrade,
#      key rotation, feed) runs, so every path of the extension runs under
#      full logging;
#   2. a sentinel session drives a programme with a distinctive BIN through
#      orders, activations (right, malformed and refused PINs; used,
#      superseded, expired, malformed, unseen tokens), authorisations,
#      reveals of PAN and CVV, processor PIN checks until blocked, PIN
#      resets, replacement (new PAN) and reissue (same PAN, carried PIN),
#      key rotation, and errors of each, passing every secret as a bind
#      parameter (pgbench -M extended) as clients must, from the login roles
#      production would use;
#   3. the log, pg_stat_statements, card.event, a data-only dump of every
#      database, the data directory and the client's messages are searched
#      for the sentinels, the issued tokens (activation, reveal, PIN reset),
#      the keys of the key file, and any PAN of any programme;
#   4. a negative control sends a PIN, a PAN and used tokens as literals in
#      SQL text and checks that the same searches find each in the log.
# Expects the extension built and installed.  Exits non-zero on any leak or
# failure.  CARD_LEAK_PORT (default 54339) sets the port of its cluster;
# CARD_KEEP=1 leaves the cluster running for a look (pg_ctl stop it after).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
# Our own cluster, whatever port the calling script's cluster uses.
CARD_PORT=${CARD_LEAK_PORT:-54339}
unset PGDATABASE

# The sentinels.  Every PAN of the sentinel programme is BIN + 8 digits.
BIN=53591742
PAN_RE="${BIN}[0-9]{8}"
PAN_WRONG=${BIN}90807060         # a PAN-shaped value sent where a PAN does not belong
PIN=090807                       # the PIN that activates
PIN_WRONG=918273                 # well-formed, sent with refused tokens and as wrong PINs
PIN_NEW=564738                   # the PIN a reset sets
PIN_LETTERS=09o8q7               # malformed: letters
PIN_LONG=0908070605              # malformed: too long
PIN_SHORT=090                    # malformed: too short (only searched for as a quoted value)
hex() { printf %s "$1" | od -An -tx1 | tr -d ' \n'; }
# A digits-only PIN also turns up by chance inside hex (uuids, bytea: about
# once in 16^6 positions, and the dumps hold millions), so it counts only
# standing alone; the longer PAN and the PIN with letters count anywhere.
# Nor after a '.': a timestamp's microseconds are six digits, and once
# matched a PIN by chance ("12:52:35.090807+00" in an event's time).
B='[^0-9A-Za-z]'
B_BEFORE='[^0-9A-Za-z.]'
SECRET_RE="$PAN_RE|$PIN_LETTERS|(^|$B_BEFORE)($PIN|$PIN_WRONG|$PIN_NEW|$PIN_LONG)(\$|${B})|['\"]${PIN_SHORT}['\"]"
# bytea columns dump as hex: the same secrets in hex.
HEX_RE="$(hex $BIN)(3[0-9]){8}|$(hex $PIN)|$(hex $PIN_WRONG)|$(hex $PIN_NEW)|$(hex $PIN_LETTERS)|$(hex $PIN_LONG)"
# The issued one-time tokens of every hosted page: activation, reveal, PIN reset.
TOKEN_RE='(act|rvl|pin)_[A-Za-z0-9_-]{43}'

cluster_start
if [ "${CARD_KEEP:-0}" = 1 ]; then trap - EXIT; fi   # leave the cluster to inspect
work=$CARD_DIR/leak         # removed with the cluster
mkdir -p "$work"
log=$CARD_DIR/server.log
cat >>"$CARD_DATA/postgresql.conf" <<'CONF'
log_statement = 'all'
log_min_error_statement = error
log_min_messages = info
log_error_verbosity = verbose
log_parameter_max_length = 0
log_parameter_max_length_on_error = 0
log_line_prefix = '%m %u@%d %e '
shared_preload_libraries = 'card, pg_stat_statements'
pg_stat_statements.track = all
pg_stat_statements.max = 20000
CONF
runuser -u postgres -- $PG_BIN/pg_ctl -D "$CARD_DATA" -l "$log" -m fast -w restart >/dev/null
[ "$(psql -X -A -t -c 'SHOW log_statement')" = all ] || { echo "FAIL: settings not applied"; exit 1; }

status=0
fail() { echo "FAIL: $*"; status=1; }
q() { local db=$1; shift; psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$db" -c "$*"; }

say "leak: every suite under log_statement = all"
make -s installcheck PG_CONFIG=$PG_BIN/pg_config >"$work/installcheck.out" 2>&1 ||
    { tail -5 "$work/installcheck.out"; fail "pg_regress/isolation suites (diffs in regression.diffs, output_iso/)"; }
createdb card_tap
PGOPTIONS="-c client_min_messages=warning" pg_prove -d card_tap test/pgtap/*.sql >"$work/pgtap.out" 2>&1 ||
    { tail -5 "$work/pgtap.out"; fail "pgTAP suites"; }
test/dump-restore.sh >"$work/dump-restore.out" 2>&1 || { tail -5 "$work/dump-restore.out"; fail "dump/restore"; }
test/upgrade.sh >"$work/upgrade.out" 2>&1 || { tail -5 "$work/upgrade.out"; fail "upgrade"; }
# rotate.sh edits the key file of $CARD_DIR, and puts it back as it was.
CARD_DIR=$CARD_DIR test/rotate.sh >"$work/rotate.out" 2>&1 || { tail -5 "$work/rotate.out"; fail "key rotation"; }
test/feed.sh >"$work/feed.out" 2>&1 || { tail -5 "$work/feed.out"; fail "feed"; }

say "leak: the sentinel session (BIN $BIN, secrets as bind parameters)"
# The suites' own values must not look like the sentinels.
if grep -rlE "$SECRET_RE" sql test bench scripts | grep -v '^test/leak.sh$'; then
    fail "the files above hold a sentinel value of test/leak.sh: choose other sentinels"
fi
createdb leak
q leak "CREATE EXTENSION card; CREATE EXTENSION pg_stat_statements" >/dev/null
prog=$(q leak "SELECT card.programme_create('Leak sentinel', '$BIN', 'mastercard')")
holder=$(q leak "SELECT card.individual_create('$prog', 'Sentinel Holder')")
acct=$(q leak "SELECT card.account_open('$prog', '$holder', 'EUR')")
# The API, the hosted pages and the processor log in as their own roles,
# granted the programme, as in production (row-level security on their
# paths); an outsider's hosted pages do not see the programme.
q leak "CREATE ROLE leak_api LOGIN IN ROLE card_api; CREATE ROLE leak_pages LOGIN IN ROLE card_hosted_pages;
        CREATE ROLE leak_processor LOGIN IN ROLE card_processor; CREATE ROLE leak_outsider LOGIN IN ROLE card_hosted_pages;
        SELECT card.programme_grant('$prog', r) FROM unnest('{leak_api,leak_pages,leak_processor}'::name[]) r" >/dev/null
order() { q leak "SELECT id FROM card.card_order('$holder', '$acct', 'Sentinel $1', type => '$1')"; }
# link FUNCTION CARD: a new hosted-page link from the API (activation,
# reveal or PIN reset); prints its token and adds it to the issued tokens
# searched for.  The token is in the result, never in SQL text.
link() {
    local url
    url=$(PGUSER=leak_api q leak "SELECT redirect_url FROM card.$1('$2', 'https://app.example.com/done')")
    echo "${url##*token=}" | tee -a "$work/tokens"
}
start() { link card_activation_start "$1"; }
# bind EXPECT SQL NAME=VALUE...: one call through the extended protocol, the
# values as $n parameters (pgbench -M extended turns :NAME into $n).  EXPECT
# is ok, or a fragment of the error message the call must fail with.
bind() {
    local expect=$1 sql=$2 rc=0 vars=()
    shift 2
    for v in "$@"; do vars+=(-D "$v"); done   # values only in argv, never in SQL
    printf '%s\n' "$sql" >"$work/call.sql"
    pgbench -n -M extended -t 1 "${vars[@]}" -f "$work/call.sql" leak >/dev/null 2>"$work/call.err" || rc=$?
    cat "$work/call.err" >>"$work/client.log"
    if [ "$expect" = ok ]; then
        [ $rc -eq 0 ] || { head -3 "$work/call.err"; fail "call failed: $sql"; }
    elif [ $rc -eq 0 ] || ! grep -qF -- "$expect" "$work/call.err"; then
        head -3 "$work/call.err"; fail "call did not fail with \"$expect\": $sql"
    fi
}
pages() { PGUSER=leak_pages bind "$@"; }
processor() { PGUSER=leak_processor bind "$@"; }
complete="SELECT * FROM card.card_activation_complete(:token, :pin)"

c1=$(order physical)
tok=$(start "$c1")
# Malformed PINs are refused before the token is touched.
pages 'pin must be 4 to 6 digits' "$complete" token="$tok" pin=$PIN_LETTERS
pages 'pin must be 4 to 6 digits' "$complete" token="$tok" pin=$PIN_LONG
pages 'pin must be 4 to 6 digits' "$complete" token="$tok" pin=$PIN_SHORT
PGUSER=leak_outsider bind 'activation token does not exist' "$complete" token="$tok" pin=$PIN_WRONG
pages ok "$complete" token="$tok" pin=$PIN
pages 'already used' "$complete" token="$tok" pin=$PIN_WRONG
[ "$(q leak "SELECT status FROM card.cards WHERE id = '$c1'")" = active ] || fail "the sentinel card was not activated"

c2=$(order physical)
old=$(start "$c2")
tok=$(start "$c2")
pages 'replaced by a newer one' "$complete" token="$old" pin=$PIN_WRONG
q leak "UPDATE card.hosted_link SET expires_at = now() - interval '1 second' WHERE card_id = '$c2'"
pages 'expired at' "$complete" token="$tok" pin=$PIN_WRONG
pages 'malformed activation token' "$complete" token=$PAN_WRONG pin=$PIN_WRONG
pages 'activation token does not exist' "$complete" token=act_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA pin=$PIN
tok=$(start "$c2")
pages ok "$complete" token="$tok" pin=$PIN_WRONG
bind 'is active and cannot be activated' "SELECT * FROM card.card_activation_start(:card, 'https://app.example.com/x')" card="$c2"
# The JSON form of a link (PATCH /v3/cards/:id).
c5=$(order physical)
url=$(q leak "SELECT card.card_update('$c5', '{\"return_url\": \"https://app.example.com/done\"}') ->> 'redirect_url'")
echo "${url##*token=}" >>"$work/tokens"
pages ok "$complete" token="${url##*token=}" pin=$PIN

# A virtual card through the API, money, controls, authorisations.
c3=$(order virtual)
c4=$(order virtual)
q leak "SELECT card.card_set_status('$c3', 'active'); SELECT card.account_credit('$acct', 100000, 'leak-1')" >/dev/null
q leak "SELECT card.card_set_controls('$c3', '{\"spending_limits\": [{\"amount\": 5000, \"interval\": \"daily\"}]}')" >/dev/null
ct=$(q leak "SELECT card.card_token('$c3')")
authorize="SELECT * FROM card.card_authorize(:token, :amount, 'EUR', '5411', 'SE', 'chip', :ext)"
processor ok "$authorize" token="$ct" amount=1200 ext=leak-a1
processor ok "$authorize" token="$ct" amount=9000 ext=leak-a2            # declined: spending_limit
processor ok "$authorize" token="$ct" amount=1200 ext=leak-a1            # repeated external_id
processor 'no card has this token' "$authorize" token=$PAN_WRONG amount=100 ext=leak-a3
processor 'is out of range' "$authorize" token="$ct" amount=0 ext=leak-a4
q leak "SELECT card.authorization_capture(id, 1000) FROM card.\"authorization\" WHERE external_id = 'leak-a1'" >/dev/null
# A PAN sent in a request body is refused by name, never echoed.
bind 'unknown field "pan"' "SELECT card.card_order(:req::jsonb)" \
    req="{\"individual_id\": \"$holder\", \"account_id\": \"$acct\", \"display_name\": \"x\", \"pan\": \"$PAN_WRONG\"}"
q leak "SELECT card.card_set_status('$c3', 'frozen', reason => 'leak'); SELECT card.card_update('$c4', '{\"status\": \"block\"}')" >/dev/null
bind 'cannot change' "SELECT * FROM card.card_set_status(:card, 'active')" card="$c4"
for _ in 1 2 3 4 5; do order virtual >/dev/null; done   # a few more PANs

# assert COND NAME: pgbench lines that abort the call (so that bind reports
# it) unless COND holds, a pgbench expression over the columns the last
# query stored with \gset.  Those values stay inside pgbench, which prints
# no result: a revealed PAN is checked without being written anywhere.
assert() { printf '\\if not (%s)\n\\set %s 1 / 0\n\\endif\n' "$1" "$2"; }
api() { PGUSER=leak_api bind "$@"; }
outsider() { PGUSER=leak_outsider bind "$@"; }
status_of() { q leak "SELECT status FROM card.card WHERE id = '$1'"; }
same_pan() { q leak "SELECT a.pan_fingerprint = b.pan_fingerprint FROM card.card a, card.card b WHERE a.id = '$1' AND b.id = '$2'"; }

# Reveal.  The PAN and CVV go to the hosted page's result set and nowhere
# else.  The API, an outsider's pages, a used, superseded or malformed
# token and an ended card get no details.
reveal='SELECT pan, exp_month, exp_year, cvv FROM card.card_reveal(:token) \gset'
# revealed CARD TOKEN: the page reveals CARD's details, checked inside
# pgbench against its last4 and expiry (not secrets): the sentinel BIN, the
# card's last4 and expiry, a CVV of at most 3 digits.
revealed() {
    local last4 month year
    IFS='|' read -r last4 month year < <(q leak "SELECT last4, exp_month, exp_year FROM card.card WHERE id = '$1'")
    pages ok "$reveal
$(assert ":pan / 100000000 = $BIN and :pan % 10000 = :last4 and :exp_month = :month and :exp_year = :year and :cvv >= 0 and :cvv <= 999" revealed_details_wrong)" \
        token="$2" last4="$last4" month="$month" year="$year"
}
act=$(grep -m1 '^act_' "$work/tokens")           # a used activation token
old=$(link card_reveal_start "$c1")
tok=$(link card_reveal_start "$c1")
outsider 'reveal token does not exist' "$reveal" token="$tok"
api 'permission denied for function card_reveal' "$reveal" token="$tok"
pages 'replaced by a newer one' "$reveal" token="$old"
pages 'malformed reveal token' "$reveal" token=$PAN_WRONG
pages 'malformed reveal token' "$reveal" token="$act"
revealed "$c1" "$tok"
pages 'already used' "$reveal" token="$tok"
rvl_used=$tok                                    # for the negative control

# The processor's PIN checks: the right PIN, malformed ones (refused,
# counting nothing), an unknown card, then wrong PINs until blocked, when
# even the right PIN is not compared.
ct1=$(q leak "SELECT card.card_token('$c1')")
# A counted check, then its verdict in a later transaction (each pgbench
# statement is a transaction of its own).
verify='SELECT card.card_pin_check(:token, :pin) AS chk \gset
SELECT verified, tries_left FROM card.card_pin_result(:chk) \gset'
# verified COND TRIES: checks of the answer (COND: :verified or not :verified).
verified() { assert "$1 and :tries_left = $2" pin_answer_wrong; }
processor ok "$verify
$(verified :verified 3)" token="$ct1" pin=$PIN
for pin in $PIN_LETTERS $PIN_LONG $PIN_SHORT; do
    processor 'pin must be 4 to 6 digits' "$verify" token="$ct1" pin="$pin"
done
processor 'no card has this token' "$verify" token=$PAN_WRONG pin=$PIN
pages 'permission denied for function card_pin_check' "$verify" token="$ct1" pin=$PIN
for left in 2 1 0; do
    processor ok "$verify
$(verified 'not :verified' $left)" token="$ct1" pin=$PIN_WRONG
done
processor ok "$verify
$(verified 'not :verified' 0)" token="$ct1" pin=$PIN

# PIN reset through the hosted page, to a new sentinel PIN: a superseded
# link, malformed PINs (the link survives them), an outsider, tokens that
# are not PIN reset tokens, then the reset and a second use of its token.
reset='SELECT * FROM card.card_pin_reset(:token, :pin)'
old=$(link card_pin_reset_start "$c1")
tok=$(link card_pin_reset_start "$c1")
pages 'replaced by a newer one' "$reset" token="$old" pin=$PIN_NEW
for pin in $PIN_LETTERS $PIN_LONG $PIN_SHORT; do
    pages 'pin must be 4 to 6 digits' "$reset" token="$tok" pin="$pin"
done
outsider 'PIN reset token does not exist' "$reset" token="$tok" pin=$PIN_NEW
pages 'malformed PIN reset token' "$reset" token=$PAN_WRONG pin=$PIN_NEW
pages 'malformed PIN reset token' "$reset" token="$rvl_used" pin=$PIN_NEW
pages ok "$reset" token="$tok" pin=$PIN_NEW
pages 'already used' "$reset" token="$tok" pin=$PIN_WRONG
processor ok "$verify
$(verified 'not :verified' 2)" token="$ct1" pin=$PIN   # the old PIN is gone
processor ok "$verify
$(verified :verified 3)" token="$ct1" pin=$PIN_NEW
pin_used=$tok                                    # for the negative control

# Reissue (damaged: same PAN, PIN carried).  Both cards reveal the same
# PAN, compared inside pgbench; activating the reissue checks the carried
# PIN: a malformed one is refused, wrong ones count, the new one activates
# it and closes the old card.
replace='SELECT id FROM card.card_replace(:card, :reason)'
api ok "$replace" card="$c1" reason=damaged
api ok "$replace" card="$c1" reason=damaged      # the same request: the same reissue
r1=$(q leak "SELECT id FROM card.card WHERE replacement_for = '$c1'")
if [ "$(wc -l <<<"$r1")" != 1 ] || [ "$(same_pan "$c1" "$r1")" != t ]; then
    fail "the damaged card's reissue is not one card with its PAN"
fi
old=$(link card_reveal_start "$c1")
tok=$(link card_reveal_start "$r1")
pages ok "SELECT pan FROM card.card_reveal(:old) \\gset old_
SELECT pan FROM card.card_reveal(:new) \\gset new_
$(assert ":old_pan = :new_pan and :new_pan / 100000000 = $BIN" reissue_pan_differs)" old="$old" new="$tok"
tok=$(start "$r1")
tries="$complete \\gset"
pages 'pin must be 4 to 6 digits' "$complete" token="$tok" pin=$PIN_LETTERS
pages ok "$tries
$(assert ':pin_tries_left = 2' pin_tries_wrong)" token="$tok" pin=$PIN_WRONG
pages ok "$tries
$(assert ':pin_tries_left = 1' pin_tries_wrong)" token="$tok" pin=$PIN     # reset away
[ "$(status_of "$r1")" = not_activated ] || fail "a wrong PIN activated the reissue"
pages ok "$tries
$(assert ':pin_tries_left = 3' pin_tries_wrong)" token="$tok" pin=$PIN_NEW
[ "$(status_of "$r1") $(status_of "$c1")" = "active blocked" ] || fail "the reissue's activation did not replace the card"
processor ok "$verify
$(verified :verified 3)" token="$(q leak "SELECT card.card_token('$r1')")" pin=$PIN_NEW

# Replacement (lost: a new PAN, the old card ends at once); a link issued
# before the loss reveals nothing after it.
tok=$(link card_reveal_start "$c5")
api ok "$replace" card="$c5" reason=lost
l5=$(q leak "SELECT id FROM card.card WHERE replacement_for = '$c5'")
[ "$(same_pan "$c5" "$l5") $(status_of "$c5")" = "f lost" ] || fail "the lost card's replacement has its PAN, or the lost card lives"
pages 'cannot be revealed' "$reveal" token="$tok"
api 'cannot be revealed' 'SELECT * FROM card.card_reveal_start(:card, :url)' card="$c5" url=https://app.example.com/done
api 'invalid replacement reason' "$replace" card="$l5" reason=misplaced
revealed "$l5" "$(link card_reveal_start "$l5")"
pages ok "$complete" token="$(start "$l5")" pin=$PIN   # a new PAN: the holder chooses the PIN

# Key rotation: a key version 2 line, a reload, then every PAN of the
# database re-encrypted in small batches.  Its NOTICEs reach the client and
# the log (log_min_messages = info) and are searched like the rest.
echo "2 $(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" >>"$CARD_DIR/card.keys"
q postgres "SELECT pg_reload_conf()" >/dev/null
api 'permission denied for procedure rotate_keys' 'CALL card.rotate_keys(5)'
psql -X -q -v ON_ERROR_STOP=1 -d leak -c "CALL card.rotate_keys(5)" >/dev/null 2>"$work/notices.out" ||
    { cat "$work/notices.out"; fail "CALL card.rotate_keys failed"; }
cat "$work/notices.out" >>"$work/client.log"
if [ "$(grep -c 'PANs re-encrypted under key version 2' "$work/notices.out")" -lt 2 ] ||
   ! grep -q ', done' "$work/notices.out"; then
    fail "the rotation sent no progress NOTICEs"
fi
[ "$(q leak "SELECT string_agg(key_version::text, ' ') FROM card.pan_key_versions()")" = 2 ] ||
    fail "PANs are left under key version 1"
revealed "$r1" "$(link card_reveal_start "$r1")"     # the rotated PAN reveals
# Every stored PAN decrypts and checks; one whose ciphertext belongs to
# another card fails in the middle of decryption.
bad=$(q leak "SELECT count(*) FROM card.card c, card.pan_check(c.id) p
             WHERE NOT (p.luhn_valid AND p.bin_matches AND p.last4_matches AND p.fingerprint_matches)")
[ "$bad" = 0 ] || fail "$bad sentinel PANs do not check"
psql -X -q -d leak 2>>"$work/client.log" >/dev/null <<SQL || true
BEGIN;
UPDATE card.card SET pan_ciphertext = (SELECT pan_ciphertext FROM card.card WHERE id = '$c1') WHERE id = '$c2';
SELECT * FROM card.pan_check('$c2');
ROLLBACK;
SQL
grep -q 'failed authentication' "$work/client.log" || fail "pan_check of a moved ciphertext did not fail"
q leak "SELECT card.card_expire_due(); SELECT count(*) FROM card.events_after(0, 1000)" >/dev/null

say "leak: searching for the sentinels"
# mask: the first 3 hits, each with its secret masked (reads all its input:
# a reader that stops early would fail the writer under pipefail).
mask() { sed -nE "s/$PAN_RE/${BIN}XXXXXXXX/g; s/$PIN|$PIN_WRONG|$PIN_NEW|$PIN_LETTERS|$PIN_LONG/<PIN>/gi; s/$HEX_RE/<HEX>/gi; s/'$PIN_SHORT'/'<PIN>'/g; s/(.{200}).*/\1.../; 1,3p"; }
# issued: the one-time tokens the sentinel session received.
issued() { grep -E "^$TOKEN_RE\$" "$work/tokens"; }
# fixed: the secrets searched for as they are: those tokens, and the keys
# of the key file in hex (version 2 was added by the sentinel session).
fixed() { issued; awk '$1 ~ /^(mac|[0-9]+)$/ { print $2 }' "$CARD_DIR/card.keys"; }
# hits FILE: the lines of FILE holding a sentinel, a sentinel in hex, an
# issued token or a key, masked; false if there are none.
hits() {
    local h
    h=$( { grep -aiE "$SECRET_RE|$HEX_RE" "$1" || true; grep -aiF -f <(fixed) "$1" || true; } )
    [ -n "$h" ] && sed -E "s/$TOKEN_RE/\1_<TOKEN>/g; s/[0-9a-fA-F]{64}/<KEY>/g" <<<"$h" | mask
}
scan() {  # scan WHERE FILE
    local h
    if h=$(hits "$2"); then fail "a sentinel in $1:"; echo "$h"; fi
}
dbs=$(q postgres "SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1")
for db in $dbs; do
    pg_dump --data-only -d "$db" >>"$work/dump.sql" 2>/dev/null   # warns of circular foreign keys
    if [ "$(q "$db" "SELECT count(*) FROM pg_extension WHERE extname = 'card'")" = 1 ]; then
        q "$db" "SELECT e::text FROM card.event e" >>"$work/event.txt"
        q "$db" "SELECT bin FROM card.programme" >>"$work/bins"
    fi
done
q leak "SELECT query FROM pg_stat_statements" >"$work/pgss.txt"
q postgres "CHECKPOINT"
# Sanity: the sources cover the sentinel session.
grep -q "$BIN" "$work/dump.sql" || fail "the dump does not hold the sentinel programme"
grep -q card_activation_complete "$work/pgss.txt" || fail "pg_stat_statements missed the activations"
grep -q "\"last4\"" "$work/event.txt" || fail "card.event holds no card.ordered event"
for f in card_reveal card_pin_check card_pin_result card_pin_reset card_replace rotate_keys; do
    grep -q "$f" "$work/pgss.txt" || fail "pg_stat_statements missed $f"
done
for e in card.revealed card.pin_blocked card.pin_reset card.replaced; do
    grep -q "$e" "$work/event.txt" || fail "card.event holds no $e event"
done
grep -q 'rotate_keys: .* PANs re-encrypted' "$log" || fail "the log missed the rotation's NOTICEs"
for t in act rvl pin; do
    issued | grep -q "^${t}_" || fail "no ${t}_ token was issued"
done
[ "$(fixed | grep -vc '_')" = 3 ] || fail "the key file does not hold the MAC key and key versions 1 and 2"

scan "the server log" "$log"
scan "pg_stat_statements" "$work/pgss.txt"
scan "card.event" "$work/event.txt"
scan "the data-only dumps" "$work/dump.sql"
scan "the client's error messages" "$work/client.log"
# A CVV is 3 digits, too short to search for: no table or event may even
# have a field for one (a column in a COPY header, a key in event JSON; not
# the letters by chance inside a random card token).
if grep -iE '"cvv"|^COPY .*[(, ]cvv[,)]' "$work/event.txt" "$work/dump.sql"; then
    fail "a CVV field in the files above"
fi
for f in $( { grep -rlaE "$SECRET_RE" "$CARD_DATA"; grep -rlaiF -f <(fixed) "$CARD_DATA"; } | sort -u || true); do
    fail "a sentinel is in the data directory: ${f#"$CARD_DATA"/}"
done

# Any PAN of any programme the suites created: its BIN and 5 more digits,
# not inside a word or after "-" (a uuid's last group may be 510510 and 5
# digits by chance).  pgTAP rolls its programmes back, so their BINs come
# from the test files.
grep -rhoE "programme_create\('[^']*', '[0-9]{6,8}'" sql test bench | grep -oE "[0-9]{6,8}'$" | tr -d "'" >>"$work/bins"
BINS_RE="(^|[^0-9A-Za-z-])($(sort -u "$work/bins" | paste -sd'|'))[0-9]{5}"
# pans FILE: its lines with such a PAN, masked; false if there are none.
# 20_pan_token.sql sends '4567123400000000' as a literal in SQL text (a "pan"
# field that card_order(jsonb) must refuse): that value is the test's own,
# not a generated PAN, so it is removed before the search.
pans() {
    local h
    h=$(sed 's/4567123400000000//g' "$1" | grep -aE "$BINS_RE" || true)
    [ -n "$h" ] && sed -E "s/${BINS_RE}[0-9]*/\1\2XXXXX/g" <<<"$h" | mask
}
for f in "$log" "$work/pgss.txt" "$work/event.txt" "$work/dump.sql" "$work/client.log"; do
    if h=$(pans "$f"); then fail "a PAN-shaped value under a programme's BIN in ${f#"$CARD_DIR"/}:"; echo "$h"; fi
done

# The negative control, last so that nothing else reads its log lines: each
# kind of secret, sent alone as a literal in SQL text, must be found in the
# log lines its call adds.
say "leak: negative control (secrets sent as literals must be found)"
found=
control() {  # control WHAT CALL [pan]: CALL must fail, and its lines hold WHAT
    local offset
    offset=$(stat -c %s "$log")
    q leak "SELECT /* leak negative control */ $2" 2>/dev/null && fail "the negative control's call succeeded: $2"
    tail -c +$((offset + 1)) "$log" >"$work/control.log"
    if hits "$work/control.log" >/dev/null && { [ "${3:-}" != pan ] || pans "$work/control.log" >/dev/null; }; then
        found="$found${found:+, }$1"
    else
        fail "the searches did not find $1 sent as a literal"
    fi
}
control "a PAN" "card.card_activation_complete('$PAN_WRONG', '1234')" pan
control "the PIN" "card.card_pin_check('ct_none', '$PIN')"
control "the reset PIN" "card.card_pin_check('ct_none', '$PIN_NEW')"
control "a reveal token" "card.card_reveal('$rvl_used')"
control "a PIN reset token" "card.card_pin_reset('$pin_used', '1234')"
control "an activation token" "card.card_activation_complete('$act', '1234')"
echo "leak: the searches find, sent as literals: $found"

# At PostgreSQL's default log_statement (none), a failing call with its
# secrets as literals must not have its statement logged either: the
# PIN and token entry points hide it from log_min_error_statement (found
# in review: a mistyped token logged the PIN with the statement).
say "leak: failing calls with literal secrets, log_statement = none"
offset=$(stat -c %s "$log")
for call in "card.card_pin_check('ct_none', '$PIN')" "card.card_activation_complete('$act', '$PIN')" \
            "card.card_pin_reset('$pin_used', '$PIN')" "card.card_reveal('$rvl_used')"; do
    PGOPTIONS="-c log_statement=none" psql -X -q -d leak -c "SELECT $call" >/dev/null 2>&1 \
        && fail "a call that must fail succeeded"
done
tail -c +$((offset + 1)) "$log" >"$work/hidden.log"
[ "$(grep -c 'ERROR' "$work/hidden.log")" -ge 4 ] || fail "the failing calls logged no errors"
if hits "$work/hidden.log" >/dev/null; then
    fail "a failing call's literal secret is in the log:"; hits "$work/hidden.log"
else
    echo "leak: 4 failing calls with literal PIN and tokens logged their errors, not their statements"
fi

lines=$(grep -c '' "$log")
if [ $status -eq 0 ]; then
    say "leak: no sentinel in $lines log lines, pg_stat_statements, card.event, $(wc -w <<<"$dbs") databases, the data directory or the client's messages"
else
    say "leak: FAILED"
fi
exit $status
