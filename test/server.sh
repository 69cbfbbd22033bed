#!/usr/bin/env bash
# card-server end to end with curl (issue 13), against the cluster that
# PGHOST/PGPORT/PGUSER name (a superuser): its own database card_http, its
# login role and its clients' roles; the server on a free loopback port of
# its own, stopped with SIGTERM at the end (it must exit 0).  Checks every
# route and error status, the seed's requests and response shape,
# idempotency, two programmes' tokens not seeing each other's cards, roles
# without a grant, the hosted activation, reveal and PIN reset pages, the
# long-polled feed, the response headers, and that no token, PIN or PAN
# reaches the server's log.  Exits non-zero on the first failure.
# Every route and status of docs/openapi.json must be answered at least
# once, and nothing the document does not name (route, method, status).
#   CARD_SERVER   the binary (default server/card-server)
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PGHOST:?}" "${PGPORT:?}"
work=$(mktemp -d)
checks=0
. test/http-lib.sh
cleanup() { http_cleanup; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "server: FAIL: $*"; [ -f "$work/server.log" ] && tail -20 "$work/server.log"; exit 1; }
ok() { checks=$((checks + 1)); }
sql() { psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }

# The cluster's log, if known (scripts/test's CARD_DIR): no statement of the
# server may fail there unseen (such as a prepare as its login role).
pg_log=${CARD_DIR:+$CARD_DIR/server.log}
denied_before=$( [ -n "$pg_log" ] && grep -c 'permission denied for schema card' "$pg_log" || true)
http_setup card_http
http_start -- --pool 4 --poll-pool 2 --max-body 4096 --max-wait 10 || fail "the server did not start"
echo "server: listening on $base"

# call METHOD PATH TOKEN [BODY [EXTRA CURL ARGS]]: sets $status and $body.
call() {
    local method=$1 path=$2 tok=$3 data=${4-} args=()
    [ -n "$tok" ] && args+=(-H "Authorization: Bearer $tok")
    [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
    args+=("${@:5}")
    status=$(curl -s -o "$work/body" -D "$work/headers" -w '%{http_code}' -X "$method" \
        ${args[@]+"${args[@]}"} "$base$path")
    body=$(cat "$work/body")
    # The route as docs/openapi.json names it: ids become {id}, no query.
    printf '%s %s %s\n' "$method" "$(sed -E 's/\?.*//; s#^(/v3/(accounts|cards|authorizations))/[^/]+#\1/{id}#' <<<"$path")" \
        "$status" >>"$work/seen"
}
expect() {  # expect STATUS WHAT
    [ "$status" = "$1" ] || fail "$2: status $status, expected $1: $body"
    ok
}
field() { jq -r "$1" <<<"$body"; }
expect_code() {  # expect_code STATUS CODE WHAT
    expect "$1" "$3"
    [ "$(field .error.code)" = "$2" ] || fail "$3: error code $(field .error.code), expected $2: $body"
}

echo "server: health, routes, methods, tokens"
call GET /healthz ""; expect 200 healthz
call GET /nowhere "$tok_a"; expect_code 404 not_found "unknown route"
call GET /v3/nowhere "$tok_a"; expect_code 404 not_found "unknown /v3 route"
call DELETE /v3/cards "$tok_a"; expect_code 405 method_not_allowed "DELETE /v3/cards"
grep -qi '^Allow: POST' "$work/headers" || fail "405 without Allow"
call POST /healthz ""; expect_code 405 method_not_allowed "POST /healthz"
grep -qi '^Allow: GET' "$work/headers" || fail "405 of /healthz without Allow"
call POST /v3/cards ""; expect_code 401 unauthorized "no token"
grep -qi '^WWW-Authenticate: Bearer' "$work/headers" || fail "401 without WWW-Authenticate"
call POST /v3/cards "not-a-token" '{}'; expect_code 401 unauthorized "unknown token"
call GET "/v3/cards/$(uuidgen 2>/dev/null || cat /proc/sys/kernel/random/uuid)" "${tok_a}x"; expect_code 401 unauthorized "token with a byte more"
for h in 'Cache-Control: no-store' 'Referrer-Policy: no-referrer' 'X-Frame-Options: DENY' \
         "Content-Security-Policy: default-src 'none'" 'X-Content-Type-Options: nosniff'; do
    grep -qi "^$h" "$work/headers" || fail "missing header $h"
    ok
done

echo "server: individuals, accounts, credits"
call POST /v3/individuals "$tok_a" "{\"programme_id\": \"$prog_a\", \"name\": \"Ada Holder\"}"
expect 201 "individual"; holder=$(field .id)
call POST /v3/accounts "$tok_a" "{\"programme_id\": \"$prog_a\", \"individual_id\": \"$holder\", \"currency\": \"EUR\"}"
expect 201 "account"; acct=$(field .id)
call POST "/v3/accounts/$acct/credits" "$tok_a" '{"amount": 10000, "reference": "http-credit-1"}'
expect 200 "credit"; [ "$(field .available)" = 10000 ] || fail "credit: $body"
call GET "/v3/accounts/$acct" "$tok_a"; expect 200 "account read"
[ "$(field .balance)" = 10000 ] || fail "account read: $body"
call GET "/v3/accounts/$acct" "$tok_b"; expect_code 404 no_data_found "B reads A's account"
call PUT "/v3/accounts/$acct/controls" "$tok_a" '{"spending_limits": [{"amount": 5000, "interval": "daily"}]}'
expect 200 "account controls"
call GET "/v3/accounts/$acct/controls" "$tok_a"; expect 200 "account controls read"

echo "server: the seed's card order"
exp_year=$(( $(date +%Y) + 3 ))
seed_body="{\"individual_id\": \"$holder\", \"account_id\": \"$acct\", \"display_name\": \"Ada's card\", \"exp_month\": \"08\", \"exp_year\": \"$exp_year\", \"type\": \"physical\"}"
call POST /v3/cards "$tok_a" "$seed_body"; expect 201 "POST /v3/cards"
card=$(field .id)
[ "$(jq -c 'keys' <<<"$body")" = '["account_id","brand","currency","display_name","exp_month","exp_year","id","individual_id","last4","region","status","type"]' ] \
    || fail "seed response shape: $body"
[ "$(field .status)" = not_activated ] && [ "$(field .exp_year)" = "$exp_year" ] && [ "$(field .currency)" = EUR ] \
    || fail "seed response values: $body"
ok

echo "server: idempotency"
call POST /v3/cards "$tok_a" "$seed_body" -H 'Idempotency-Key: order-http-1'; expect 201 "keyed order"
keyed=$(field .id)
call POST /v3/cards "$tok_a" "$seed_body" -H 'Idempotency-Key: order-http-1'; expect 201 "keyed order again"
[ "$(field .id)" = "$keyed" ] || fail "the same key made a second card"
call POST /v3/cards "$tok_a" "${seed_body/Ada\'s card/Other}" -H 'Idempotency-Key: order-http-1'
expect_code 409 unique_violation "the same key for another order"
call POST /v3/cards "$tok_a" "${seed_body%\}}, \"idempotency_key\": \"k2\"}" -H 'Idempotency-Key: order-http-2'
expect_code 422 invalid_parameter_value "a key in the header and the body"
[ "$(sql "SELECT count(*) FROM card.card WHERE idempotency_key = 'order-http-1'")" = 1 ] || fail "cards per key"

echo "server: bad bodies"
call POST /v3/cards "$tok_a" '{"individual_id": '; expect_code 400 malformed_json "truncated JSON"
call POST /v3/cards "$tok_a" '[1, 2]'; expect_code 400 malformed_json "an array body"
call POST /v3/cards "$tok_a" '{} {}'; expect_code 400 malformed_json "two objects"
call POST /v3/cards "$tok_a" '{"a": 1}x'; expect_code 400 malformed_json "trailing bytes"
call POST /v3/cards "$tok_a" "{\"display_name\": \"$(printf 'caf\xe9')\"}"; expect_code 400 malformed_json "a body that is not UTF-8"
call POST /v3/cards "$tok_a" "{\"a\": $(printf '[%.0s' $(seq 100))$(printf ']%.0s' $(seq 100))}"; expect_code 400 malformed_json "100 levels deep"
call POST /v3/cards "$tok_a" "{\"a\": 'single'}"; expect_code 400 malformed_json "single quotes"
call POST /v3/individuals "$tok_a" "{\"programme_id\": \"$prog_a\", \"name\": \"nul \\u0000 here\"}"
expect 422 "a JSON string holding \\u0000"
call POST /v3/cards "$tok_a" "$seed_body" -H "$(printf 'Idempotency-Key: a\xffb')"
[ "$status" = 400 ] || [ "$status" = 422 ] || fail "an Idempotency-Key that is not UTF-8: $status $body"
ok
call POST /v3/cards "$tok_a" "${seed_body%\}}, \"colour\": \"red\"}"; expect_code 422 invalid_parameter_value "unknown field"
call POST /v3/cards "$tok_a" "{\"pad\": \"$(head -c 5000 /dev/zero | tr '\0' a)\"}"; expect_code 413 payload_too_large "5 kB body"
call GET /v3/cards/not-a-uuid "$tok_a"; expect_code 422 invalid_text_representation "malformed id"
call GET "/v3/cards/%ff%fe" "$tok_a"; expect_code 404 not_found "an id that is not UTF-8"
call GET "/v3/cards/a'%3B--" "$tok_a"; expect_code 404 not_found "an id with SQL in it"
call GET "/v3/cards/$(cat /proc/sys/kernel/random/uuid)" "$tok_a"; expect_code 404 no_data_found "unknown card"

echo "server: programmes and grants"
call GET "/v3/cards/$card" "$tok_a"; expect 200 "A reads its card"
call GET "/v3/cards/$card" "$tok_b"; expect_code 404 no_data_found "B reads A's card"
call PATCH "/v3/cards/$card" "$tok_b" '{"status": "frozen"}'; expect_code 404 no_data_found "B freezes A's card"
call GET "/v3/cards/$card" "$tok_nogrant"; expect_code 404 no_data_found "a role with no programme"
call GET "/v3/cards/$card" "$tok_reader"; expect 200 "a reader reads"
call POST /v3/cards "$tok_reader" "$seed_body"; expect_code 403 insufficient_privilege "a reader orders"
call POST /v3/cards "$tok_proc" "$seed_body"; expect_code 403 insufficient_privilege "a processor orders"

echo "server: activation through the hosted page"
call PATCH "/v3/cards/$card" "$tok_a" '{"return_url": "https://app.example.com/activated"}'
expect 200 "PATCH return_url"
[ "$(jq -c 'keys' <<<"$body")" = '["expires_at","redirect_url"]' ] || fail "activation link shape: $body"
act_token=$(field .redirect_url | sed -n 's/.*[?&]token=\([^&]*\).*/\1/p')
[ "$(field .redirect_url | sed 's/?.*//')" = "https://cards.example.com/activate" ] || fail "link: $body"
call GET "/activate?token=$act_token" ""; expect 200 "activation page"
grep -q 'name="pin2"' "$work/body" || fail "the page asks for the PIN twice"
grep -qi '^Content-Type: text/html' "$work/headers" || fail "page content type"
grep -q '<script' "$work/body" && fail "a script on the page"
call POST /activate "" "" --data-urlencode "token=$act_token" --data-urlencode pin=2468 --data-urlencode pin2=2469
expect 422 "mismatched PINs"; grep -q 'differ' "$work/body" || fail "mismatch page"
call POST /activate "" "" --data-urlencode "token=$act_token" --data-urlencode pin=12 --data-urlencode pin2=12
expect 422 "a short PIN"
call POST /activate "" "" --data-urlencode "token=$act_token" --data-urlencode pin=2468 --data-urlencode pin2=2468
expect 303 "activation"
grep -qi '^Location: https://app.example.com/activated' "$work/headers" || fail "redirect to return_url"
grep -i '^Location:' "$work/headers" | grep -q -e "$act_token" -e 2468 && fail "a secret in the redirect"
call POST /activate "" "" --data-urlencode "token=$act_token" --data-urlencode pin=2468 --data-urlencode pin2=2468
expect 410 "a used link"
call POST /activate "" "" --data-urlencode "token=act_nonsense" --data-urlencode pin=2468 --data-urlencode pin2=2468
[ "$status" = 404 ] || [ "$status" = 422 ] || fail "an unknown link: $status"
ok
call GET "/v3/cards/$card" "$tok_a"; [ "$(field .status)" = active ] || fail "not active after the page: $body"

echo "server: status changes"
for s in frozen active; do
    call PATCH "/v3/cards/$card" "$tok_a" "{\"status\": \"$s\"}"; expect 200 "PATCH $s"
    [ "$(field .status)" = "$s" ] || fail "PATCH $s: $body"
done
call PATCH "/v3/cards/$card" "$tok_a" '{"status": "melted"}'; expect_code 422 invalid_parameter_value "an unknown status"
call PATCH "/v3/cards/$card" "$tok_a" '{"status": "not_activated"}'; expect 422 "back to not_activated"
for s in block lost stolen; do
    call POST /v3/cards "$tok_a" "$seed_body" -H "Idempotency-Key: order-$s"; expect 201 "card to $s"
    other=$(field .id)
    call PATCH "/v3/cards/$other" "$tok_a" "{\"status\": \"$s\"}"; expect 200 "PATCH $s"
    want=$s; [ "$s" = block ] && want=blocked
    [ "$(field .status)" = "$want" ] || fail "PATCH $s: $body"
    call PATCH "/v3/cards/$other" "$tok_a" '{"status": "active"}'; expect_code 409 object_not_in_prerequisite_state "$want -> active"
done
call PUT "/v3/cards/$card/controls" "$tok_a" '{"blocked_categories": ["7995"]}'; expect 200 "card controls"
call GET "/v3/cards/$card/controls" "$tok_a"; expect 200 "card controls read"

echo "server: authorisations"
card_token=$(sql "SELECT token FROM card.card WHERE id = '$card'")
auth_body() { echo "{\"card_token\": \"$card_token\", \"amount\": $1, \"currency\": \"EUR\", \"mcc\": \"5411\", \"merchant_country\": \"SE\", \"channel\": \"chip\", \"external_id\": \"$2\"}"; }
call POST /v3/authorizations "$tok_proc" "$(auth_body 1200 http-1)"; expect 200 "authorize"
[ "$(field .approved)" = true ] || fail "not approved: $body"
auth=$(field .authorization_id)
call POST /v3/authorizations "$tok_a" "$(auth_body 1200 http-2)"; expect_code 403 insufficient_privilege "authorize as the API role"
call POST /v3/authorizations "$tok_proc" "$(auth_body 99999 http-3)"; expect 200 "a decline"
[ "$(field .approved)" = false ] || fail "approved beyond the funds: $body"
call POST "/v3/authorizations/$auth/capture" "$tok_proc" '{"amount": 1000}'; expect 200 "capture"
[ "$(field .captured)" = 1000 ] || fail "capture: $body"
call POST /v3/authorizations "$tok_proc" "$(auth_body 300 http-4)"; auth4=$(field .authorization_id)
call POST "/v3/authorizations/$auth4/reverse" "$tok_proc" ''; expect 200 "reverse, empty body"
[ "$(field .status)" = reversed ] || fail "reverse: $body"
call POST "/v3/authorizations/$auth4/reverse" "$tok_proc" ''; expect_code 409 object_not_in_prerequisite_state "reverse twice"

echo "server: the event feed, long-polled"
call GET "/v3/events?after=0&limit=1000" "$tok_a"; expect 200 "events"
next=$(field .next)
[ "$(field '.events | length')" -gt 5 ] || fail "few events: $body"
[ "$(field '[.events[].programme_id] | unique | length')" = 1 ] || fail "A sees another programme's events"
call GET "/v3/events?after=0" "$tok_b"; expect 200 "B's events"
[ "$(field '[.events[] | select(.programme_id == "'"$prog_a"'")] | length')" = 0 ] || fail "B sees A's events"
call GET "/v3/events?wait=99" "$tok_a"; expect_code 422 invalid_parameter_value "a wait beyond --max-wait"
call GET "/v3/events?after=x" "$tok_a"; expect 422 "a cursor that is not a number"
start=$(date +%s%N)
curl -s -H "Authorization: Bearer $tok_a" "$base/v3/events?after=$next&wait=8" >"$work/poll" &
poll=$!
sleep 1
call PATCH "/v3/cards/$card" "$tok_a" '{"status": "frozen"}'; expect 200 "a change during a long poll"
wait "$poll"
waited=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$(jq -r '.events[0].type' "$work/poll")" = card.status_changed ] || fail "long poll: $(cat "$work/poll")"
[ "$waited" -lt 6000 ] || fail "the long poll waited ${waited} ms for a commit"
ok
echo "server:   a commit ended an 8 s long poll after $waited ms"
# More long polls than their pool has connections: calls still answer at once.
polls=()
for i in 1 2 3 4 5; do
    curl -s -o /dev/null -H "Authorization: Bearer $tok_a" "$base/v3/events?after=999999999&wait=5" &
    polls+=($!)
done
sleep 0.5
start=$(date +%s%N)
call GET "/v3/cards/$card" "$tok_a"; expect 200 "a call beside 5 long polls"
took=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$took" -lt 1000 ] || fail "a call waited $took ms behind long polls"
wait "${polls[@]}"
echo "server:   a call beside 5 long polls (2 poll connections) answered in $took ms"
# Polls beyond their pool read at once (no wait) instead of queueing.
for i in 1 2 3 4 5; do
    curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $tok_a" \
        "$base/v3/events?after=999999999&wait=4" >>"$work/poll-times" &
    polls[$i]=$!
done
wait "${polls[@]}"
quick=$(awk '$1 < 1.5' "$work/poll-times" | wc -l)
[ "$quick" -ge 3 ] || fail "long polls beyond their pool queued: $(tr '\n' ' ' <"$work/poll-times")"
ok

echo "server: a call whose connection is lost after it was sent is not sent again"
# A lock holds the order on A's account; the server's backend waiting on it is then terminated.
psql -X -q -d "$db" -c "BEGIN" -c "SELECT 1 FROM card.account WHERE id = '$acct' FOR UPDATE" \
    -c "SELECT pg_sleep(3)" -c "COMMIT" >/dev/null &
locker=$!
sleep 0.5
( call POST /v3/cards "$tok_a" "${seed_body/Ada\'s card/Lost in flight}"; echo "$status $body" >"$work/lost" ) &
caller=$!
for _ in $(seq 50); do
    n=$(sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE usename = 'http_server' AND wait_event_type = 'Lock'")
    [ "$n" -gt 0 ] && break
    sleep 0.05
done
wait "$caller"; wait "$locker"
grep -q '^503 .*transaction_resolution_unknown' "$work/lost" || fail "a lost call: $(cat "$work/lost")"
[ "$(sql "SELECT count(*) FROM card.card WHERE display_name = 'Lost in flight'")" = 0 ] \
    || fail "the lost call was sent again"
call GET "/v3/cards/$card" "$tok_a"; expect 200 "the next call after a lost connection"

echo "server: reveal, once"
call POST "/v3/cards/$card/reveal" "$tok_a" '{"return_url": "https://app.example.com/seen"}'; expect 200 "reveal link"
rvl_token=$(field .redirect_url | sed -n 's/.*[?&]token=\([^&]*\).*/\1/p')
call POST /reveal "" "" --data-urlencode "token=abc"; expect 404 "a malformed reveal token"
call POST /reveal "" "" --data-binary "token=$(printf '%%ff%%fe')"; expect 404 "a reveal token that is not UTF-8"
call POST /activate "" "" --data-binary "token=$act_token&pin=%ff%fe&pin2=%ff%fe"; [ "$status" -lt 500 ] || fail "a PIN that is not UTF-8: $status"
ok
call POST /activate "" "" --data-urlencode "token=$act_token"; expect 422 "no PIN at all"
grep -q 'both fields' "$work/body" || fail "a missing PIN is not told as such"
call GET "/reveal?token=$rvl_token" ""; expect 200 "reveal page"
grep -q -E '[0-9]{16}' "$work/body" && fail "the PAN shown before the holder asked"
call POST /reveal "" "" --data-urlencode "token=$rvl_token"; expect 200 "reveal"
pan=$(grep -o -E '[0-9]{16}' "$work/body" | head -1)
[ -n "$pan" ] || fail "no PAN on the reveal page"
[ "${pan: -4}" = "$(sql "SELECT last4 FROM card.card WHERE id = '$card'")" ] || fail "the PAN shown is not the card's"
call POST /reveal "" "" --data-urlencode "token=$rvl_token"; expect 410 "a second reveal"

echo "server: PIN reset"
call PATCH "/v3/cards/$card" "$tok_a" '{"status": "active"}'; expect 200 "unfreeze"
pin_token=$(psql -X -A -t -q -d "$db" -c "SET ROLE http_a" \
    -c "SELECT substring(redirect_url FROM 'token=(.*)\$') FROM card.card_pin_reset_start('$card', 'https://app.example.com/pin-done')")
call GET "/pin?token=$pin_token" ""; expect 200 "PIN page"
call POST /pin "" "" --data-urlencode "token=$pin_token" --data-urlencode pin=1357 --data-urlencode pin2=1357
expect 303 "PIN reset"
grep -qi '^Location: https://app.example.com/pin-done' "$work/headers" || fail "PIN reset redirect"
call GET /pages.css ""; expect 200 "stylesheet"

echo "server: every documented route without a token, with a bad body, a bad id, an unknown id"
# The token of a role that may call each route (the database checks EXECUTE first).
route_token() { case $1 in /v3/authorizations*) echo "$tok_proc" ;; *) echo "$tok_a" ;; esac; }
while read -r method route has_body; do
    m=${method^^}
    tok=$(route_token "$route")
    path=${route//\{id\}/$(cat /proc/sys/kernel/random/uuid)}
    [ "$route" = /healthz ] && continue
    call "$m" "$path" ""; expect 401 "$m $route without a token"
    # A role without the capability: the database refuses EXECUTE.
    other_tok=$tok_proc; [ "$tok" = "$tok_proc" ] && other_tok=$tok_a
    call "$m" "$path" "$other_tok" "$([ "$has_body" = true ] && echo '{}')"
    expect_code 403 insufficient_privilege "$m $route as a role without its capability"
    if [ "$has_body" = true ]; then
        call "$m" "$path" "$tok" '[1]'; expect_code 400 malformed_json "$m $route with an array"
        call "$m" "$path" "$tok" "{\"pad\": \"$(head -c 5000 /dev/zero | tr '\0' a)\"}"
        expect_code 413 payload_too_large "$m $route with 5 kB"
    fi
    if [[ $route == *'{id}'* ]]; then
        call "$m" "${route//\{id\}/not-a-uuid}" "$tok" "$([ "$has_body" = true ] && echo '{}')"
        expect 422 "$m $route with a malformed id"
        body_arg=''; [ "$has_body" = true ] && body_arg='{}'
        case $route in
            */controls) [ "$m" = PUT ] && body_arg='{"blocked_countries": ["XX"]}' ;;
            */reveal) body_arg='{"return_url": "https://app.example.com/"}' ;;
            */replace) body_arg='{"reason": "lost"}' ;;
            /v3/cards/\{id\}) [ "$m" = PATCH ] && body_arg='{"status": "frozen"}' ;;
            */credits) body_arg='{"amount": 1, "reference": "nobody"}' ;;
        esac
        call "$m" "$path" "$tok" "$body_arg"; expect_code 404 no_data_found "$m $route with an unknown id"
    fi
done < <(jq -r '.paths | to_entries[] | .key as $r | .value | to_entries[] | "\(.key) \($r) \(.value.requestBody != null)"' docs/openapi.json)
# What only a scenario provokes, not covered above.
call POST /v3/individuals "$tok_reader" "{\"programme_id\": \"$prog_a\", \"name\": \"R\"}"; expect_code 403 insufficient_privilege "a reader creates an individual"
call POST /v3/individuals "$tok_a" "{\"programme_id\": \"$prog_b\", \"name\": \"R\"}"; expect_code 404 no_data_found "A creates in B's programme"
call POST /v3/individuals "$tok_a" '{"name": "R"}'; expect 422 "an individual without a programme"
call POST /v3/accounts "$tok_reader" "{\"programme_id\": \"$prog_a\", \"individual_id\": \"$holder\"}"; expect_code 403 insufficient_privilege "a reader opens an account"
call POST /v3/accounts "$tok_b" "{\"programme_id\": \"$prog_b\", \"individual_id\": \"$holder\"}"; expect_code 404 no_data_found "B opens an account for A's holder"
call POST /v3/accounts "$tok_a" "{\"programme_id\": \"$prog_a\", \"individual_id\": \"$holder\", \"currency\": \"euro\"}"; expect 422 "a bad currency"
call PUT "/v3/accounts/$acct/controls" "$tok_a" '{"allowed_countries": ["SE"], "blocked_countries": ["NO"]}'; expect 422 "allow and block lists together"
call PUT "/v3/cards/$card/controls" "$tok_a" '{"channels": {"teleport": true}}'; expect 422 "an unknown channel"
call POST "/v3/accounts/$acct/credits" "$tok_reader" '{"amount": 1, "reference": "r"}'; expect_code 403 insufficient_privilege "a reader credits"
call POST "/v3/accounts/$acct/credits" "$tok_a" '{"amount": 0, "reference": "r"}'; expect 422 "a zero credit"
call POST "/v3/accounts/$acct/credits" "$tok_a" '{"amount": 7, "reference": "http-credit-1"}'; expect_code 409 unique_violation "a credit reference used for another amount"
call POST /v3/cards "$tok_a" "{\"individual_id\": \"$holder\", \"account_id\": \"$(cat /proc/sys/kernel/random/uuid)\", \"display_name\": \"X\"}"
expect_code 404 no_data_found "an order on an unknown account"
call POST "/v3/cards/$card/replace" "$tok_a" '{"reason": "broken"}'; expect 422 "an unknown replacement reason"
call POST "/v3/cards/$other/replace" "$tok_a" '{"reason": "damaged"}'; expect_code 409 object_not_in_prerequisite_state "replacing a stolen card as damaged"
call POST "/v3/cards/$card/replace" "$tok_a" '{"reason": "damaged"}'; expect 201 "a replacement"
call POST "/v3/cards/$card/reveal" "$tok_a" '{"return_url": "http://insecure.example.com/"}'; expect 422 "a plain http return_url"
call POST "/v3/cards/$other/reveal" "$tok_a" '{"return_url": "https://app.example.com/"}'; expect_code 409 object_not_in_prerequisite_state "revealing a stolen card"
call PATCH "/v3/cards/$other" "$tok_a" '{"return_url": "https://app.example.com/"}'; expect_code 409 object_not_in_prerequisite_state "activating a stolen card"
call POST /v3/authorizations "$tok_proc" '{"card_token": "tok_nothing", "amount": 1, "currency": "EUR", "mcc": "5411", "merchant_country": "SE", "channel": "chip", "external_id": "x"}'
expect_code 404 no_data_found "an unknown card token"
call POST /v3/authorizations "$tok_proc" '{"amount": 1}'; expect 422 "an authorisation without a card"
other_token=$(sql "SELECT token FROM card.card WHERE id = '$keyed'")
call POST /v3/authorizations "$tok_proc" "$(auth_body 1200 http-1 | sed "s/$card_token/$other_token/")"
expect_code 409 unique_violation "an external_id used for another card"
call POST "/v3/authorizations/$auth/capture" "$tok_proc" '{"amount": 1}'; expect_code 409 object_not_in_prerequisite_state "capturing a captured hold"
call POST /v3/authorizations "$tok_proc" "$(auth_body 100 http-5)"; expect 200 "a hold to refuse amounts on"
auth5=$(field .authorization_id)
call POST "/v3/authorizations/$auth5/capture" "$tok_proc" '{"amount": -1}'; expect 422 "a negative capture"
call POST "/v3/authorizations/$auth5/reverse" "$tok_proc" '{"amount": "x"}'; expect 422 "a reverse of x"

echo "server: the hosted pages in headless Chromium (playwright-core)"
# Links as the extension issues them, opened on this server.
link_of() {  # link_of PURPOSE CARD RETURN_URL: a hosted link, started by the card's API role
    psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$db" -c "SET ROLE http_a" \
        -c "SELECT redirect_url FROM card.card_$1_start('$2', '$3')" | sed "s#^https://cards.example.com#$base#"
}
new_card() {  # new_card KEY: a physical card of A's holder
    call POST /v3/cards "$tok_a" "$seed_body" -H "Idempotency-Key: $1"; expect 201 "card $1"
    field .id
}
browser_card=$(new_card browser-1)
expiring_card=$(new_card browser-2)
shown_card=$(new_card browser-3)
expiring_link=$(link_of activation "$expiring_card" https://app.example.test/never)
sql "UPDATE card.hosted_link SET expires_at = now() - interval '1 minute' WHERE card_id = '$expiring_card'" >/dev/null
# The card to reveal and reset is activated here, through the same page.
shown_token=$(link_of activation "$shown_card" https://app.example.test/x | sed -n 's/.*token=//p')
call POST /activate "" "" --data-urlencode "token=$shown_token" --data-urlencode pin=1111 --data-urlencode pin2=1111
expect 303 "activating the card to reveal"
# A replacement of the activated card carries its PIN: its activation asks for that PIN.
call POST "/v3/cards/$shown_card/replace" "$tok_a" '{"reason": "damaged"}'; expect 201 "a replacement that carries the PIN"
reissue_card=$(field .id)
jq -n --arg activate "$(link_of activation "$browser_card" https://app.example.test/activated)" \
      --arg reissue "$(link_of activation "$reissue_card" https://app.example.test/reissued)" \
      --arg reissue_return https://app.example.test/reissued \
      --arg activate_return https://app.example.test/activated \
      --arg activate_expired "$expiring_link" \
      --arg reveal "$(link_of reveal "$shown_card" https://app.example.test/revealed)" \
      --arg reveal_last4 "$(sql "SELECT last4 FROM card.card WHERE id = '$shown_card'")" \
      --arg pin "$(link_of pin_reset "$shown_card" https://app.example.test/pin-changed)" \
      --arg pin_return https://app.example.test/pin-changed \
      '$ARGS.named' >"$work/links.json"
mkdir -p "${CARD_ARTIFACTS:=test/artifacts/browser}"
(cd test/browser && npm install --no-audit --no-fund --silent >/dev/null 2>&1) || fail "npm install playwright-core"
ARTIFACTS=$CARD_ARTIFACTS node test/browser/pages.js <"$work/links.json" || fail "the hosted pages in Chromium"
ok
call GET "/v3/cards/$browser_card" "$tok_a"; [ "$(field .status)" = active ] || fail "the browser's activation: $body"

echo "server: HTTPS with a certificate (a second server, its own port and login role)"
sql "CREATE ROLE http_server2 LOGIN NOINHERIT; GRANT http_a, http_b, http_a_proc, http_reader, http_nogrant, http_pages TO http_server2" >/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$work/tls.key" -out "$work/tls.crt" >/dev/null 2>&1
"$server" --listen 127.0.0.1:0 --port-file "$work/tls-port" --tokens "$work/tokens" \
    --pages-role http_pages --pool 1 --tls-cert "$work/tls.crt" --tls-key "$work/tls.key" \
    --database "host=$PGHOST port=$PGPORT dbname=$db user=http_server2" 2>"$work/tls.log" &
tls_pid=$!
for _ in $(seq 100); do [ -s "$work/tls-port" ] && break; sleep 0.05; done
tls_base="https://127.0.0.1:$(cat "$work/tls-port")"
tls_status=$(curl -s -o "$work/tls-body" -D "$work/tls-headers" -w '%{http_code}' --cacert "$work/tls.crt" \
    -H "Authorization: Bearer $tok_a" "$tls_base/v3/cards/$card")
[ "$tls_status" = 200 ] || fail "HTTPS GET: $tls_status $(cat "$work/tls-body")"
grep -qi '^Strict-Transport-Security:' "$work/tls-headers" || fail "HTTPS without HSTS"
curl -s -o /dev/null "http://127.0.0.1:$(cat "$work/tls-port")/healthz" && fail "plain HTTP answered on the TLS port"
# /healthz when the database refuses the server: its login role may not log in.
sql "ALTER ROLE http_server2 NOLOGIN" >/dev/null
sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'http_server2'" >/dev/null
tls_status=$(curl -s -o "$work/tls-body" -w '%{http_code}' --cacert "$work/tls.crt" "$tls_base/healthz")
[ "$tls_status" = 503 ] || fail "/healthz with the database refusing: $tls_status"
echo "GET /healthz 503" >>"$work/seen"
sql "ALTER ROLE http_server2 LOGIN" >/dev/null
tls_status=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/tls.crt" "$tls_base/healthz")
[ "$tls_status" = 200 ] || fail "/healthz once the database lets it in again: $tls_status"
kill -TERM "$tls_pid"; rc=0; wait "$tls_pid" || rc=$?
[ "$rc" = 0 ] || fail "the TLS server exited $rc"
ok

echo "server: the routes and statuses answered, against docs/openapi.json"
jq -r '.paths | to_entries[] | .key as $r | .value | to_entries[] | .key as $m | .value.responses | keys[] | select(. != "default") | "\($m | ascii_upcase) \($r) \(.)"' \
    docs/openapi.json | sort -u >"$work/documented"
sort -u "$work/seen" | grep -v -E '^[A-Z]+ (/nowhere|/v3/nowhere|/activate|/reveal|/pin|/pages.css) ' \
    | grep -v -E ' 405$|^[A-Z]+ /v3/.* 503$' >"$work/answered"  # 405: no answer; 503 of /v3: "default"
grep -q ' 500$' "$work/seen" && fail "a 500: $(grep ' 500$' "$work/seen" | head -3 | tr '\n' ' ')"
if ! diff <(comm -23 "$work/documented" "$work/answered") /dev/null >/dev/null; then
    comm -23 "$work/documented" "$work/answered" | sed 's/^/server:   never answered: /'
    fail "documented statuses no test provoked"
fi
if ! diff <(comm -13 "$work/documented" "$work/answered") /dev/null >/dev/null; then
    comm -13 "$work/documented" "$work/answered" | sed 's/^/server:   undocumented: /'
    fail "answers docs/openapi.json does not document"
fi
ok
echo "server:   $(wc -l <"$work/documented") route and status pairs, each answered"

echo "server: a tokens file it cannot serve stops the start"
start_fails() {  # start_fails WHAT MESSAGE: a server with $work/bad-tokens exits 1 saying MESSAGE
    local rc=0
    timeout 20 "$server" --listen 127.0.0.1:0 --tokens "$work/bad-tokens" --pages-role http_pages \
        --database "host=$PGHOST port=$PGPORT dbname=$db user=http_server" 2>"$work/bad.log" || rc=$?
    [ "$rc" = 1 ] && grep -q -- "$2" "$work/bad.log" || fail "$1: exit $rc, $(cat "$work/bad.log")"
    ok
}
{ cat "$work/tokens"; echo "http_ghost $(http_sha ghost-token)"; } >"$work/bad-tokens"
start_fails "a role that does not exist" "role http_ghost does not exist"
{ cat "$work/tokens"; echo "NONE $(http_sha none-token)"; } >"$work/bad-tokens"
start_fails "the role none" "is not a role a client can be"
sql "CREATE ROLE http_stranger" >/dev/null
{ cat "$work/tokens"; echo "http_stranger $(http_sha stranger-token)"; } >"$work/bad-tokens"
start_fails "a role the login role cannot become" "is not a role the server's login role is a member of"
sql "DROP ROLE http_stranger" >/dev/null
# A token hidden in a comment line longer than any buffer is still a comment.
{ printf '#%0600d' 0; echo " http_a $(http_sha hidden)"; cat "$work/tokens"; } >"$work/long-tokens"
"$server" --listen 127.0.0.1:0 --port-file "$work/long-port" --tokens "$work/long-tokens" --pages-role http_pages \
    --database "host=$PGHOST port=$PGPORT dbname=$db user=http_server" 2>/dev/null &
long_pid=$!
for _ in $(seq 100); do [ -s "$work/long-port" ] && break; sleep 0.05; done
long_status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer hidden" \
    "http://127.0.0.1:$(cat "$work/long-port")/v3/cards/$card")
kill -TERM "$long_pid"; wait "$long_pid" || true
[ "$long_status" = 401 ] || fail "a token in a long comment line was accepted: $long_status"
ok

curl -s -o /dev/null "$base/x%0acard-server:%20POST%20/v3/forged%20200%201.0%20ms"
echo "server: stopping on SIGTERM, a long poll in flight"
curl -s -o "$work/last-poll" -w '%{http_code}' -H "Authorization: Bearer $tok_a" \
    "$base/v3/events?after=999999999&wait=3" >"$work/last-poll-status" &
last_poll=$!
sleep 0.5
kill -TERM "$server_pid"
sleep 0.3
refused=0; curl -s -m 2 -o /dev/null "$base/healthz" || refused=$?
[ "$refused" = 7 ] || fail "a connection during shutdown: curl exit $refused (7: refused at once)"
wait "$last_poll"
[ "$(cat "$work/last-poll-status")" = 200 ] || fail "the long poll in flight at SIGTERM: $(cat "$work/last-poll-status")"
ok
rc=0; http_stop || rc=$?
[ "$rc" = 0 ] || fail "card-server exited $rc on SIGTERM"
grep -q 'stopped' "$work/server.log" || fail "no clean stop in the log"
ok

grep -q '^card-server: POST /v3/forged' "$work/server.log" && fail "a path forged a log line"
ok
if [ -n "$pg_log" ]; then
    denied=$(grep -c 'permission denied for schema card' "$pg_log" || true)
    [ "$denied" = "$denied_before" ] || fail "$((denied - denied_before)) statements refused in the cluster's log"
    ok
fi
echo "server: no secret in the server's log"
for secret in "$tok_a" "$tok_b" "$tok_proc" "$act_token" "$rvl_token" "$pin_token" "$pan" "$card_token" 2468 1357; do
    if grep -q -F -- "$secret" "$work/server.log"; then fail "a secret in the server log"; fi
done
ok
echo "server: $checks checks passed; $(grep -c ' ms$' "$work/server.log") requests logged"
