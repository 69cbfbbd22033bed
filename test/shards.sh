#!/usr/bin/env bash
# Scale-out through PL/Proxy (issue 15, under way): scripts/shards starts two
# shards and a proxy under a directory of its own; calls made through the
# proxy land on the shard that holds their data, and what a shard makes
# (ids, tokens, links) carries its number.  Then the proxy's reading of ids
# and tokens (scripts/proxy-routes.sql) is compared with the extension's
# (src/shard.c) on the same values.  Stops its clusters; exits non-zero on
# any failure.  Needs the extension installed (make install).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
dir=$(mktemp -d /tmp/card-shards.XXXXXX)
trap 'scripts/shards down "$dir"; rm -rf "$dir"' EXIT
# The login role this suite creates on every cluster goes with them.
fail() { echo "shards: FAIL: $*"; exit 1; }

scripts/shards up 2 "$dir" >"$dir.log" 2>&1 || { cat "$dir.log"; fail "scripts/shards up"; }
rm -f "$dir.log"
# as_role ROLE WHERE ...: psql as ROLE in database card of the cluster
# $dir/WHERE; on WHERE ...: the same as postgres.
as_role() { local role=$1 where=$2; shift 2; psql -X -q -At -v ON_ERROR_STOP=1 -h "$dir/$where" -p 5432 -U "$role" -d card "$@"; }
on() { as_role postgres "$@"; }

# A programme through the proxy exists on both shards with one id; a tenant's
# login role, created on every cluster, is granted it through the proxy.
prog=$(on proxy -c "SELECT card.programme_create('Sharded', '45671234', activation_ttl => '1 hour')")
for k in 0 1; do
    [[ $(on "shard$k" -c "SELECT count(*) FROM card.programme WHERE id = '$prog' AND activation_ttl = '1 hour'") == 1 ]] \
        || fail "the programme is missing on shard $k"
done
[[ $(on proxy -c "SELECT card.programme_adopt('$prog', card.programme_seal('$prog'), 'Sharded', '45671234',
                                                activation_ttl => '1 hour')") == "$prog" ]] \
    || fail "adopting the programme again is not a no-op"
on proxy -c "SELECT card.programme_adopt('$prog', card.programme_seal('$prog'), 'Sharded', '45671234')" >/dev/null 2>&1 \
    && fail "the programme was adopted with another configuration"
# No programme is made anywhere that shard 0 did not make: adopting a
# made-up id, or shard 0's id under another configuration, with any seal,
# through the proxy or on shard 1 itself, makes nothing (shard 0: P0002,
# shard 1 without the seal: 42501).
squat=$(on shard1 -c "SELECT gen_random_uuid()")
for call in "SELECT card.programme_adopt('$squat', NULL, 'Squatted', '45670000')" \
            "SELECT card.programme_adopt('$squat', card.programme_seal('$prog'), 'Squatted', '45670000')" \
            "SELECT card.programme_adopt('$prog', card.programme_seal('$prog'), 'Sharded again', '45671234')"; do
    for where in proxy shard1; do
        on "$where" -c "$call" >/dev/null 2>&1 && fail "$where made a programme: $call"
    done
done
err=$(on shard1 -c "SELECT card.programme_adopt('$squat', '\\x00', 'Squatted', '45670000')" 2>&1 || true)
[[ $err == *"the seal is not programme"* ]] || fail "shard 1 adopted without the seal: $err"
err=$(on shard0 -c "SELECT card.programme_adopt('$squat', '\\x00', 'Squatted', '45670000')" 2>&1 || true)
[[ $err == *"does not exist"* ]] || fail "shard 0 adopted a programme it did not make: $err"
for k in 0 1; do
    [[ $(on "shard$k" -c "SELECT count(*) FROM card.programme WHERE name IN ('Squatted', 'Sharded again') OR id = '$squat'") == 0 ]] \
        || fail "shard $k holds a squatted programme"
done
# Nor straight on a shard k > 0: programme_create there is refused, and so
# is a seal (only shard 0 gives them out).  '1 day' is not '24 hours' to a
# seal or to an adoption.  Another programme's id, not visible to the
# caller, is one it cannot tell from none (P0002, not 23505).
for where in shard0 shard1 proxy; do
    on "$where" -c "CREATE ROLE shard_rival LOGIN IN ROLE card_admin, card_api"
done
err=$(as_role shard_rival shard1 -c "SELECT card.programme_create('Rival', '45679999')" 2>&1 || true)
[[ $err == *"programmes are made on shard 0, not on shard 1"* ]] || fail "shard 1 made a programme: $err"
err=$(on shard1 -c "SELECT card.programme_seal('$prog')" 2>&1 || true)
[[ $err == *"programme seals are given by shard 0"* ]] || fail "shard 1 gave a seal: $err"
day=$(as_role shard_rival proxy \
           -c "SELECT card.programme_create('Daylight', '45679998', activation_ttl => '1 day', hold_lifetime => '1 mon')")
err=$(as_role shard_rival proxy \
           -c "SELECT card.programme_adopt('$day', card.programme_seal('$day'), 'Daylight', '45679998',
                                           activation_ttl => '24 hours', hold_lifetime => '30 days')" 2>&1 || true)
[[ $err == *"already exists with another configuration"* ]] || fail "'1 day' adopted as '24 hours': $err"
[[ $(on shard1 -c "SELECT activation_ttl || ' ' || hold_lifetime FROM card.programme WHERE id = '$day'") == "1 day 1 mon" ]] \
    || fail "shard 1 holds another configuration of the programme"
err=$(as_role shard_rival shard1 \
           -c "SELECT card.programme_adopt('$prog', '\\x00', 'x', '45670000')" 2>&1 || true)
[[ $err == *"programme $prog does not exist"* ]] || fail "another programme's id told apart from none: $err"
echo "shards: no programme made anywhere shard 0 did not make (no seal, another's seal, shard 1's own programme_create and seal refused); '1 day' is not '24 hours'; another programme's id reads as none"

for where in proxy shard0 shard1; do
    on "$where" -c "CREATE ROLE shard_tenant LOGIN IN ROLE card_admin, card_api, card_processor, card_reader"
done
[[ $(on proxy -c "SELECT card.programme_grant('$prog', 'shard_tenant')") == t ]] || fail "programme_grant through the proxy"
for k in 0 1; do
    [[ $(on "shard$k" -c "SELECT count(*) FROM card.programme_role WHERE programme_id = '$prog' AND role_name = 'shard_tenant'") == 1 ]] \
        || fail "the grant is missing on shard $k"
done
echo "shards: programme_create and programme_grant through the proxy reach both shards with one id"

# Twenty cardholders through the proxy land on both shards; on each shard,
# an account, a card, a credit, an authorisation and its capture, all routed
# by the ids and tokens the shard made.
out=$(as_role shard_tenant proxy -v prog="$prog" <<'SQL'
CREATE TEMP TABLE holder AS
SELECT card.individual_create(:'prog', 'Holder ' || g) AS id FROM generate_series(1, 20) g;
SELECT string_agg(DISTINCT card_proxy.shard_of(id)::text, ',' ORDER BY card_proxy.shard_of(id)::text) FROM holder;
CREATE TEMP TABLE walk AS
SELECT DISTINCT ON (card_proxy.shard_of(id)) card_proxy.shard_of(id) AS shard, id AS holder FROM holder;
ALTER TABLE walk ADD account uuid, ADD card uuid, ADD token text, ADD auth uuid;
UPDATE walk SET account = card.account_open(:'prog', holder);
UPDATE walk SET card = (card.card_order(holder, account, 'Shard card')).id;
SELECT count(*) FROM walk, card.card_set_status(card, 'active') s WHERE s.status = 'active';
SELECT count(*) FROM walk, card.account_credit(account, 10000, 'top-' || shard) b WHERE b.balance = 10000;
UPDATE walk SET token = card.card_token(card);
UPDATE walk SET auth = (SELECT a.authorization_id FROM card.card_authorize(token, 2500, 'EUR', '5411', 'SE',
                                                                    'chip', 'ext-' || shard) a WHERE a.approved);
SELECT count(*) FROM walk, card.authorization_capture(auth, 2000) c WHERE c.status = 'captured';
SELECT string_agg(format('%s:%s%s%s%s', shard, card_proxy.shard_of(account), card_proxy.shard_of(card),
                         card_proxy.shard_of_token(token), card_proxy.shard_of(auth)), ' ' ORDER BY shard) FROM walk;
SELECT string_agg(left(token, 5), ' ' ORDER BY shard) FROM walk;
SELECT count(*) FROM walk w, card.card_activation_start(
         (card.card_order(w.holder, w.account, 'Plastic', type => 'physical')).id, 'https://app.example.com/done') l
 WHERE l.redirect_url ~ ('token=act_' || CASE w.shard WHEN 0 THEN '' ELSE w.shard || '\.' END || '[A-Za-z0-9_-]{43}$');
SELECT count(*) FROM walk WHERE (card.card_get(card) ->> 'status') = 'active';
SQL
)
expected=$'0,1\n2\n2\n2\n0:0000 1:1111\nct_AB ct_1.\n2\n2'
got=$(sed 's/^ct_\(..\)[^ ]*/ct_AB/; s/ ct_1\..*/ ct_1./' <<<"$out")
[[ $got == "$expected" ]] || { printf 'expected:\n%s\ngot:\n%s\n' "$expected" "$got"; fail "calls through the proxy"; }
echo "shards: 20 cardholders on both shards; on each, account, card, credit, authorisation, capture and activation link routed to the shard that made them"
for k in 0 1; do
    n=$(on "shard$k" -c "SELECT count(*) FROM card.card WHERE card.shard_of(id) = $k AND card.shard_of_token(token) = $k")
    [[ $n == 2 ]] || fail "shard $k holds $n of its own cards, expected 2"
done
echo "shards: each shard holds its own two cards, ids and tokens stamped with its number"

# Core and spend-control behaviour through the proxy, on each shard: one
# card per idempotency key, the lifecycle, a daily limit and the funds,
# one answer per external id, spend status, freeze, replacement (the new
# card on its account's shard) and the JSON form.
out=$(as_role shard_tenant proxy -v prog="$prog" <<'SQL'
CREATE TEMP TABLE holder AS
SELECT card.individual_create(:'prog', 'Spender ' || g) AS id FROM generate_series(1, 20) g;
CREATE TEMP TABLE walk AS
SELECT DISTINCT ON (card_proxy.shard_of(id)) card_proxy.shard_of(id) AS shard, id AS holder FROM holder;
ALTER TABLE walk ADD account uuid, ADD card uuid, ADD again uuid, ADD token text, ADD auth uuid,
                 ADD replacement uuid;
UPDATE walk SET account = card.account_open(:'prog', holder);
UPDATE walk SET card = (card.card_order(holder, account, 'Spend card', idempotency_key => 'spend-' || shard)).id;
UPDATE walk SET again = (card.card_order(holder, account, 'Spend card', idempotency_key => 'spend-' || shard)).id;
SELECT 'one card per key', count(*) FROM walk WHERE again = card;
SELECT 'active', count(*) FROM walk, card.card_set_status(card, 'active') s WHERE s.status = 'active';
SELECT 'credited', count(*) FROM walk, card.account_credit(account, 10000, 'fund-' || shard) b WHERE b.balance = 10000;
UPDATE walk SET token = card.card_token(card);
SELECT 'limited', count(*)
  FROM walk, card.card_set_controls(card, '{"spending_limits": [{"amount": 3000, "interval": "daily"}]}') c;
UPDATE walk SET auth = (SELECT a.authorization_id FROM card.card_authorize(token, 2500, 'EUR', '5411', 'SE',
                                                                    'chip', 'spend-a-' || shard) a WHERE a.approved);
SELECT 'approved', count(auth) FROM walk;
SELECT 'same answer', count(*) FROM walk, card.card_authorize(token, 2500, 'EUR', '5411', 'SE', 'chip', 'spend-a-' || shard) a
 WHERE a.authorization_id = walk.auth AND a.approved;
SELECT 'over the limit', string_agg(a.decline_reason, ',')
  FROM walk, card.card_authorize(token, 1000, 'EUR', '5411', 'SE', 'chip', 'spend-b-' || shard) a;
SELECT 'remaining', string_agg(s.spent || '/' || s.remaining, ',')
  FROM walk, card.card_spend_status(card) s;
SELECT 'raised', count(*)
  FROM walk, card.card_set_controls(card, '{"spending_limits": [{"amount": 100000, "interval": "daily"}]}') c;
SELECT 'beyond the funds', string_agg(a.decline_reason || ':' || a.available, ',')
  FROM walk, card.card_authorize(token, 9000, 'EUR', '5411', 'SE', 'chip', 'spend-c-' || shard) a;
SELECT 'frozen', count(*) FROM walk, card.card_set_status(card, 'frozen') s WHERE s.status = 'frozen';
SELECT 'while frozen', string_agg(a.decline_reason, ',')
  FROM walk, card.card_authorize(token, 100, 'EUR', '5411', 'SE', 'chip', 'spend-d-' || shard) a;
SELECT 'unfrozen', count(*) FROM walk, card.card_set_status(card, 'active') s WHERE s.status = 'active';
SELECT 'after', string_agg(a.approved::text, ',')
  FROM walk, card.card_authorize(token, 100, 'EUR', '5411', 'SE', 'chip', 'spend-e-' || shard) a;
UPDATE walk SET replacement = (card.card_replace(card, 'lost')).id;
SELECT 'replaced', string_agg(format('%s:%s:%s:%s', shard, card_proxy.shard_of(replacement),
                                     card.card_get(card) ->> 'status', card.card_get(replacement) ->> 'status'), ',' ORDER BY shard)
  FROM walk;
SELECT 'json', string_agg(card.card_update(replacement, '{"status": "blocked", "reason": "test"}') ->> 'status', ',')
  FROM walk;
SQL
)
expected='one card per key|2
active|2
credited|2
limited|2
approved|2
same answer|2
over the limit|spending_limit,spending_limit
remaining|2500/500,2500/500
raised|2
beyond the funds|insufficient_funds:7500,insufficient_funds:7500
frozen|2
while frozen|card_not_active,card_not_active
unfrozen|2
after|true,true
replaced|0:0:lost:not_activated,1:1:lost:not_activated
json|blocked,blocked'
[[ $out == "$expected" ]] || { printf 'expected:\n%s\ngot:\n%s\n' "$expected" "$out"; fail "core and spend controls through the proxy"; }
echo "shards: through the proxy on each shard: one card per idempotency key, lifecycle, a daily limit, funds, one answer per external id, spend status, freeze, replacement on the same shard, the JSON form"

# The limits docs/scaling.md states: a call through the proxy commits on its
# shard whatever the proxy's transaction does (a retry with the same key
# finds the card), and an individual of one shard cannot join an account of
# another.
out=$(as_role shard_tenant proxy -v prog="$prog" 2>&1 <<'SQL'
CREATE TEMP TABLE holder AS
SELECT card.individual_create(:'prog', 'Limit ' || g) AS id FROM generate_series(1, 20) g;
SELECT (SELECT id FROM holder WHERE card_proxy.shard_of(id) = 0 LIMIT 1) AS h0,
       (SELECT id FROM holder WHERE card_proxy.shard_of(id) = 1 LIMIT 1) AS h1 \gset
SELECT card.account_open(:'prog', :'h0') AS a0 \gset
BEGIN;
SELECT (card.card_order(:'h0', :'a0', 'Rolled back', idempotency_key => 'rollback-1')).id AS rolled \gset
ROLLBACK;
SELECT 'kept', (card.card_order(:'h0', :'a0', 'Rolled back', idempotency_key => 'rollback-1')).id = :'rolled';
\set ON_ERROR_STOP 0
\set VERBOSITY sqlstate
SELECT card.account_member_add(:'a0', :'h1');
SQL
)
[[ $out == $'kept|t\nERROR:  P0002' ]] || { printf 'got:\n%s\n' "$out"; fail "the limits through the proxy"; }
echo "shards: limits: an order in a rolled-back proxy transaction stays (its retry finds it); an individual of another shard cannot join an account (P0002)"

# The feed across shards: a cursor per shard, read in batches of 3 per shard
# through the proxy, with more events written on both shards and shard 1
# restarted between reads: every event of each shard is read once, none is
# skipped (compared with each shard's own table).
tenant() { as_role shard_tenant proxy "$@"; }
cursors="0,0"
: >"$dir/seen"
drain() {
    local batch
    while :; do
        batch=$(tenant -c "SELECT shard || ' ' || seq FROM card.events_after(ARRAY[$cursors]::bigint[], 3)")
        [[ -n $batch ]] || break
        printf '%s\n' "$batch" >>"$dir/seen"
        cursors=$(awk '{ if ($2 > c[$1]) c[$1] = $2 } END { printf "%d,%d", c[0], c[1] }' "$dir/seen")
    done
}
credit_all() {  # a credit through the proxy on every account of both shards
    local a
    for a in $(on shard0 -c "SELECT id FROM card.account WHERE programme_id = '$prog'") \
             $(on shard1 -c "SELECT id FROM card.account WHERE programme_id = '$prog'"); do
        tenant -c "SELECT balance FROM card.account_credit('$a', 5, '$1')" >/dev/null
    done
}
[[ $(tenant -c "SELECT card.consumer_register('ledger')") == "{0,0}" ]] \
    || fail "consumer_register through the proxy does not start at zero on both shards"
drain
credit_all feed-1
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/shard1/data" -m fast -w restart >/dev/null
drain
credit_all feed-2
drain
for k in 0 1; do
    want=$(on "shard$k" -c "SELECT string_agg(seq::text, ' ' ORDER BY seq) FROM card.event WHERE programme_id = '$prog'")
    got=$(awk -v k="$k" '$1 == k { print $2 }' "$dir/seen" | sort -n | tr '\n' ' ' | sed 's/ $//')
    [[ $got == "$want" ]] || fail "the feed of shard $k through the proxy: read [$got], the shard holds [$want]"
done
[[ $(sort "$dir/seen" | uniq -d | wc -l) == 0 ]] || fail "an event was read twice through the proxy"
# In order: each shard's events come in seq order across the batches.
awk '{ if ($1 in last && $2 <= last[$1]) bad = 1; last[$1] = $2 } END { exit bad }' "$dir/seen" \
    || fail "a shard's events came out of seq order through the proxy"
echo "shards: the feed through the proxy, a cursor per shard, read every event of both shards once and in each shard's order across a restart of shard 1 ($(wc -l <"$dir/seen") events)"

# A registered consumer across shards: its cursor on each shard, acknowledged
# through the proxy as an array; a wrong array is refused; registering again
# answers where it stands; unregistering forgets it on both.
[[ $(tenant -c "SELECT card.consumer_ack('ledger', ARRAY[$cursors]::bigint[])") == "{$cursors}" ]] \
    || fail "consumer_ack through the proxy"
for k in 0 1; do
    want=$(cut -d, -f$((k + 1)) <<<"$cursors")
    [[ $(on "shard$k" -c "SELECT cursor FROM card.event_consumer WHERE role_name = 'shard_tenant' AND name = 'ledger'") == "$want" ]] \
        || fail "the consumer's cursor on shard $k is not $want"
done
err=$(tenant -c "SELECT card.consumer_ack('ledger', ARRAY[1]::bigint[])" 2>&1 || true)
[[ $err == *"one cursor per shard"* ]] || fail "consumer_ack took a cursor array of the wrong length: $err"
err=$(tenant -c "SELECT card.consumer_ack('ledger', ARRAY[0, 999999]::bigint[])" 2>&1 || true)
[[ $err == *"cursor 999999 is beyond the last event"* ]] || fail "consumer_ack took a cursor beyond shard 1's feed: $err"
[[ $(tenant -c "SELECT card.consumer_register('ledger')") == "{$cursors}" ]] \
    || fail "registering again through the proxy does not answer the stored cursors"
tenant -c "SELECT card.consumer_unregister('ledger')" >/dev/null
for k in 0 1; do
    [[ $(on "shard$k" -c "SELECT count(*) FROM card.event_consumer WHERE name = 'ledger'") == 0 ]] \
        || fail "the consumer is still registered on shard $k"
done
echo "shards: a registered consumer through the proxy: a cursor per shard, acknowledged as an array, refused beyond a shard's feed, forgotten on both"

# PL/Proxy connects to the shards as the calling role: a role without the
# programme finds none of its cards, on either shard.
for where in proxy shard0 shard1; do
    on "$where" -c "CREATE ROLE shard_stranger LOGIN IN ROLE card_api"
done
for k in 0 1; do
    c=$(on "shard$k" -c "SELECT id FROM card.card WHERE card.shard_of(id) = $k LIMIT 1")
    state=$(as_role shard_stranger proxy \
                 -c "SELECT card.card_get('$c')" 2>&1 | grep -c 'does not exist' || true)
    [[ $state == 1 ]] || fail "a role without the programme read a card of shard $k through the proxy"
done
echo "shards: through the proxy a role without the programme finds no card on either shard"

# The views through the proxy list every shard's rows, as the caller: the
# tenant sees its programme's cards, balances and history on both shards,
# the stranger none.
for view in cards balances status_history authorizations individuals; do
    want=0
    for k in 0 1; do
        n=$(on "shard$k" -c "SET ROLE shard_tenant" -c "SELECT count(*) FROM card.$view")
        ((n > 0)) || fail "shard $k shows the tenant no row of card.$view"
        want=$((want + n))
    done
    got=$(as_role shard_tenant proxy -c "SELECT count(*) FROM card.$view")
    [[ $got == "$want" ]] || fail "card.$view through the proxy has $got rows for the tenant, the shards $want"
    got=$(as_role shard_stranger proxy -c "SELECT count(*) FROM card.$view" 2>&1)
    [[ $got == 0 ]] || fail "card.$view through the proxy shows a role without the programme: $got"
done
[[ $(as_role shard_tenant proxy \
          -c "SELECT count(DISTINCT card_proxy.shard_of(id)) FROM card.cards") == 2 ]] \
    || fail "card.cards through the proxy does not list both shards' cards"
echo "shards: the views through the proxy list both shards' rows for the tenant and none for a role without the programme"

# A sweep through the proxy runs on every shard and answers the sum: one
# lapsed card on each shard.
for k in 0 1; do
    on "shard$k" -c "UPDATE card.card SET exp_month = '01', exp_year = '2020'
                     WHERE id = (SELECT id FROM card.card WHERE status = 'active' ORDER BY id LIMIT 1)"
done
[[ $(on proxy -c "SELECT card.card_expire_due()") == 2 ]] || fail "the expiry sweep through the proxy did not count both shards"
[[ $(on proxy -c "SELECT card.programme_revoke('$prog', 'shard_tenant')") == t ]] || fail "programme_revoke through the proxy"
echo "shards: a sweep and a revoke through the proxy act on both shards"

# A shard down: calls for its data fail at once with a clear error, calls
# for the other shard's go on.  Then it comes back and serves again.
acct0=$(on shard0 -c "SELECT id FROM card.account WHERE programme_id = '$prog' LIMIT 1")
acct1=$(on shard1 -c "SELECT id FROM card.account WHERE programme_id = '$prog' LIMIT 1")
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/shard1/data" -m fast -w stop >/dev/null
t0=$(date +%s%N)
err=$(on proxy -c "SELECT card.account_get('$acct1')" 2>&1 >/dev/null || true)
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[[ $err == *"card.account_get"* && $err == *"shard1"* ]] || fail "a call for the stopped shard: $err"
(( ms < 5000 )) || fail "a call for the stopped shard took $ms ms"
[[ $(on proxy -c "SELECT card.account_get('$acct0') ->> 'currency'") == EUR ]] || fail "shard 0 stopped serving while shard 1 was down"
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/shard1/data" -l "$dir/shard1/server.log" -w start >/dev/null
[[ $(on proxy -c "SELECT card.account_get('$acct1') ->> 'currency'") == EUR ]] || fail "shard 1 did not serve again after its restart"
echo "shards: shard 1 down: its call failed in $ms ms naming it, shard 0's went on; back up, it serves again"

# The proxy's SQL reading of ids and tokens agrees with the extension's.
values=$(on shard1 -c "SELECT string_agg(quote_literal(v), ',') FROM (
    SELECT card.new_id()::text AS v FROM generate_series(1, 50)
    UNION ALL SELECT gen_random_uuid()::text FROM generate_series(1, 50)
    UNION ALL SELECT overlay(gen_random_uuid()::text placing '8' || lpad(to_hex(k), 3, '0') from 15 for 4)
                FROM generate_series(0, 4095, 97) k) x")
tokens="'ct_1.AAAA','ct_4095.A','ct_4096.A','ct_99999.A','ct_123456.A','act_7.x','ct_A','ct_.A','_1.A','1.A','ct_1','CT_1.A','ct__1.A','','ct_000001.A','act_00000000002.x','ct_0.A','ct_00000.A','ct_0004095.A','ct_0004096.A'"
c=$(on shard0 -c "SELECT string_agg(card.shard_of(v::uuid)::text, ',' ORDER BY o) FROM unnest(ARRAY[$values]) WITH ORDINALITY u(v, o)")
p=$(on proxy -c "SELECT string_agg(card_proxy.shard_of(v::uuid)::text, ',' ORDER BY o) FROM unnest(ARRAY[$values]) WITH ORDINALITY u(v, o)")
[[ $c == "$p" ]] || fail "shard_of: the extension says $c, the proxy $p"
c=$(on shard0 -c "SELECT string_agg(card.shard_of_token(v)::text, ',' ORDER BY o) FROM unnest(ARRAY[$tokens]) WITH ORDINALITY u(v, o)")
p=$(on proxy -c "SELECT string_agg(card_proxy.shard_of_token(v)::text, ',' ORDER BY o) FROM unnest(ARRAY[$tokens]) WITH ORDINALITY u(v, o)")
[[ $c == "$p" ]] || fail "shard_of_token: the extension says $c, the proxy $p"
echo "shards: the proxy reads $(tr ',' '\n' <<<"$values" | wc -l) ids and 20 tokens as the extension does"

# A NULL id or token through the proxy gets the answer one server gives
# (PL/Proxy fails with an internal error on a NULL route), and a cursor
# array must be numbered from 1, one per shard.
for call in "card.card_get(NULL)" "card.card_token(NULL)" "card.account_get(NULL)" \
            "card.account_credit(NULL::uuid, 1, 'x')" "card.card_authorize(NULL, 1, 'EUR', '5411', 'SE', 'chip', 'x')" \
            "card.card_activation_complete(NULL, '1234')"; do
    want=$(on shard0 -v VERBOSITY=sqlstate -c "SELECT $call" 2>&1 || true)
    got=$(on proxy -v VERBOSITY=sqlstate -c "SELECT $call" 2>&1 || true)
    [[ $got == "$want" && $got != *XX000* ]] || fail "$call through the proxy: '$got', on a shard: '$want'"
done
err=$(on proxy -c "SELECT count(*) FROM card.events_after('[0:1]={0,0}'::bigint[], 10)" 2>&1 || true)
[[ $err == *"cursors must hold one cursor per shard"* ]] || fail "a cursor array numbered from 0 was taken: $err"
echo "shards: NULL ids and tokens through the proxy get one server's answers; a cursor array numbered from 0 is refused"

# Adding shards: scripts/shards add doubles them.  The new ones hold every
# programme with its id, the login roles and their grants; the data of the
# first two stays where it is and is still reached through the proxy; new
# cardholders land on the new shards too, and everything they make there
# carries the new shard's number; the feed takes a cursor per shard.
# Before: a group role holding card_api with a login member, granted the
# programme; a grant left behind by a dropped role; and a role whose grant
# is revoked through the proxy while the shards are being added.  After:
# shard_group's grant everywhere, shard_racer's nowhere, the dropped role's
# leftover only where it was.
for where in proxy shard0 shard1; do
    on "$where" -c "CREATE ROLE shard_group NOLOGIN IN ROLE card_api" \
                -c "CREATE ROLE shard_member LOGIN IN ROLE shard_group" \
                -c "CREATE ROLE shard_racer LOGIN IN ROLE card_api" -c "CREATE ROLE shard_gone" \
                -c "CREATE ROLE shard_noinherit LOGIN NOINHERIT IN ROLE card_api" \
                -c "GRANT shard_group TO shard_tenant WITH ADMIN OPTION" -c "CREATE ROLE shard_boss LOGIN SUPERUSER"
done
for role in shard_group shard_racer shard_gone shard_boss; do
    [[ $(on proxy -c "SELECT card.programme_grant('$prog', '$role')") == t ]] || fail "granting $role"
done
for where in proxy shard0 shard1; do on "$where" -c "DROP ROLE shard_gone"; done
scripts/shards add "$dir" >"$dir/add.log" 2>&1 &
adding=$!
for ((i = 0; i < 600; i++)); do [[ -e $dir/shard2/data/postmaster.pid ]] && break; sleep 0.05; done
[[ $(on proxy -c "SELECT card.programme_revoke('$prog', 'shard_racer')") == t ]] || fail "the revoke while adding"
wait "$adding" || { cat "$dir/add.log"; fail "scripts/shards add"; }
for k in 0 1 2 3; do
    got=$(on "shard$k" -c "SELECT string_agg(role_name, ',' ORDER BY role_name) FROM card.programme_role
                            WHERE programme_id = '$prog' AND role_name LIKE 'shard\_%'")
    want=$( ((k < 2)) && echo shard_boss,shard_gone,shard_group || echo shard_group)
    [[ $got == "$want" ]] || fail "shard $k holds the grants [$got] after the shards were added, not [$want]"
done
for k in 2 3; do
    [[ $(on "shard$k" -c "SELECT pg_has_role('shard_member', 'card_api', 'USAGE') AND NOT r.rolcanlogin
                           FROM pg_roles r WHERE r.rolname = 'shard_group'") == t ]] \
        || fail "shard $k was added without the group role and its member"
    [[ $(on "shard$k" -c "SELECT (SELECT NOT rolinherit FROM pg_roles WHERE rolname = 'shard_noinherit')
                                 AND pg_has_role('shard_tenant', 'shard_group', 'USAGE WITH GRANT OPTION')") == t ]] \
        || fail "shard $k was added without NOINHERIT or an admin option"
done
# scripts/shards sync makes every shard's grants shard 0's again: a grant
# made by hand on one shard goes, and so does one revoked meanwhile.
[[ $(on proxy -c "SELECT card.programme_revoke('$prog', 'shard_group')") == t ]] || fail "revoking shard_group"
on shard2 -c "SELECT card.programme_grant('$prog', 'shard_racer')" >/dev/null
scripts/shards sync "$dir" >/dev/null 2>&1 || fail "scripts/shards sync"
for k in 0 1 2 3; do
    got=$(on "shard$k" -c "SELECT count(*) FROM card.programme_role WHERE programme_id = '$prog'
                            AND role_name IN ('shard_group', 'shard_racer')")
    [[ $got == 0 ]] || fail "scripts/shards sync left shard $k with $got grants shard 0 does not have"
done
[[ $(on proxy -c "SELECT card.programme_grant('$prog', 'shard_group')") == t ]] || fail "granting shard_group again"
[[ $(as_role shard_member proxy -c "SELECT card.account_get('$acct0') ->> 'currency'") == EUR ]] \
    || fail "the group role's member cannot read through the proxy after the shards were added"
for k in 2 3; do
    [[ $(on "shard$k" -c "SELECT count(*) FROM card.programme WHERE id = '$prog'") == 1 ]] \
        || fail "shard $k was added without the programme"
    [[ $(on "shard$k" -c "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname LIKE 'shard\_%'") \
       == shard_group,shard_member,shard_noinherit,shard_racer,shard_rival,shard_stranger,shard_tenant ]] || fail "shard $k was added without the login roles"
done
[[ $(on proxy -c "SELECT card.account_get('$acct0') ->> 'currency', card.account_get('$acct1') ->> 'currency'") == "EUR|EUR" ]] \
    || fail "the first shards' accounts are not reached through the proxy after the shards were added"
[[ $(on proxy -c "SELECT card.programme_grant('$prog', 'shard_tenant')") == t ]] || fail "programme_grant on four shards"
out=$(as_role shard_tenant proxy -v prog="$prog" <<'SQL'
CREATE TEMP TABLE holder AS
SELECT card.individual_create(:'prog', 'Newcomer ' || g) AS id FROM generate_series(1, 60) g;
SELECT string_agg(DISTINCT card_proxy.shard_of(id)::text, ',' ORDER BY card_proxy.shard_of(id)::text) FROM holder;
CREATE TEMP TABLE walk AS
SELECT DISTINCT ON (card_proxy.shard_of(id)) card_proxy.shard_of(id) AS shard, id AS holder FROM holder
 WHERE card_proxy.shard_of(id) >= 2;
ALTER TABLE walk ADD account uuid, ADD card uuid, ADD token text;
UPDATE walk SET account = card.account_open(:'prog', holder);
UPDATE walk SET card = (card.card_order(holder, account, 'New shard card')).id;
SELECT count(*) FROM walk, card.card_set_status(card, 'active') s WHERE s.status = 'active';
SELECT count(*) FROM walk, card.account_credit(account, 1000, 'new-' || shard) b;
UPDATE walk SET token = card.card_token(card);
SELECT string_agg(format('%s:%s%s%s%s', shard, card_proxy.shard_of(account), card_proxy.shard_of(card),
                         card_proxy.shard_of_token(token), card_proxy.shard_of(a.authorization_id)), ' ' ORDER BY shard)
  FROM walk, card.card_authorize(token, 100, 'EUR', '5411', 'SE', 'chip', 'new-' || shard) a WHERE a.approved;
SELECT count(DISTINCT shard) FROM card.events_after(ARRAY[0, 0, 0, 0]::bigint[], 1000);
SQL
)
[[ $out == $'0,1,2,3\n2\n2\n2:2222 3:3333\n4' ]] || { printf 'got:\n%s\n' "$out"; fail "the added shards through the proxy"; }
# No two shards can draw the same PAN: shard k's account digits (between
# the BIN and the check digit) leave k divided by card.pan_stride (64).
# Five cards per shard, revealed by the superuser on each shard.
for k in 0 1 2 3; do
    rests=$(on "shard$k" <<SQL
SELECT card.programme_grant('$prog', 'postgres');
SELECT card.individual_create('$prog', 'PAN holder') AS holder \gset
SELECT card.account_open('$prog', :'holder') AS acct \gset
CREATE TEMP TABLE pans AS
SELECT (card.card_order(:'holder', :'acct', 'PAN card ' || g)).id AS card FROM generate_series(1, 5) g;
SELECT string_agg(DISTINCT (substr(r.pan, 9, length(r.pan) - 9)::bigint % 64)::text, ',')
  FROM pans, card.card_reveal_start(card, 'https://app.example.com/done') l,
       card.card_reveal(substring(l.redirect_url from 'token=(.*)$')) r;
SQL
)
    rests=$(tail -1 <<<"$rests")
    [[ $rests == "$k" ]] || fail "shard $k drew PANs whose account digits leave $rests divided by 64"
done
# A shard numbered at or beyond its stride refuses to issue, the default
# stride (1) on a shard k > 0 included: it would draw from every shard's PANs.
for stride in 1 3 64; do
    runuser -u postgres -- bash -c "echo 'card.pan_stride = $stride' >>'$dir/shard3/data/postgresql.conf'"
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/shard3/data" -l "$dir/shard3/server.log" -w restart >/dev/null
    err=$(on shard3 2>&1 <<SQL || true
SELECT card.individual_create('$prog', 'Stride $stride') AS holder \\gset
SELECT status FROM card.card_order(:'holder', card.account_open('$prog', :'holder'), 'Stride $stride');
SQL
)
    if ((stride == 64)); then
        [[ $err == not_activated ]] || fail "shard 3 with stride 64 did not issue: $err"
    else
        [[ $err == *"card.shard 3 needs a card.pan_stride above it (it is $stride)"* ]] \
            || fail "shard 3 issued a card with card.pan_stride = $stride: $err"
    fi
done
echo "shards: each shard's PANs leave its number divided by card.pan_stride; a shard numbered beyond the stride refuses to issue"
echo "shards: two shards added (a revoke made meanwhile reaches them, a group role and its member are copied, a dropped role's leftover grant is skipped): they hold the programme, the roles and the grants; the first two's data stays and is reached; new cardholders land on all four and what shards 2 and 3 make carries their number; the feed reads four cursors"
echo "shards: ok"
