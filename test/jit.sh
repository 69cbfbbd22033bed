#!/usr/bin/env bash
# No JIT in what the extension's functions execute: with jit_above_cost at
# 0 every plan would be compiled; auto_explain (nested statements, at
# NOTICE) shows each plan a session executes, and none that a card function
# ran may carry a "JIT:" section.  The session's own statements are marked
# /* top */ and may be compiled: a plain query at the start and at the end
# must be (JIT is there to be refused, the check sees it, and nothing of
# the card calls left JIT off for the session).  In the same session, before
# the calls: direct UPDATEs of cards to 'lost' and the owner's own calls of
# card.end_same_pan, the PL/pgSQL function the audit trigger calls for them
# (outside any card function, its statements run compiled, and PL/pgSQL
# keeps those plans for the session: the card functions then reuse them;
# since 1.12 the trigger, in C, runs it through a kept plan, with JIT off,
# so the direct UPDATEs alone no longer compile it); an error thrown in a
# card function and caught by a DO block (its own PERFORM, like the direct
# UPDATEs, is the session's).  Runs against the cluster of PGHOST/PGPORT.
set -euo pipefail

db=card_jit
out=$(mktemp)
trap 'rm -f "$out"; dropdb --if-exists $db 2>/dev/null' EXIT
fail() { echo "FAILED: $*"; exit 1; }

dropdb --if-exists $db 2>/dev/null
createdb $db
[ "$(psql -X -At -d $db -c "SELECT pg_jit_available()")" = t ] \
    || fail "the server has no JIT provider (postgresql-15 on Debian ships llvmjit)"
# Eleven active cards: the first for the calls, seven to report lost by
# hand, the ninth to report stolen through card_set_status, the last two
# lost by hand after the calls (their triggers' kept plans, which the calls
# ran with JIT off, must be compiled again for the session).
psql -X -q -v ON_ERROR_STOP=1 -d $db >/dev/null <<'SQL'
CREATE EXTENSION card;
SELECT card.programme_create('JIT', '45671234') AS p \gset
SELECT card.individual_create(:'p', 'Holder') AS i \gset
SELECT card.account_open(:'p', :'i') AS a \gset
SELECT card.account_credit(:'a', 100000, 'jit-credit');
CREATE TABLE jit_card AS
SELECT g AS n, (card.card_order(:'i', :'a', 'Card ' || g)).id FROM generate_series(1, 11) g;
SELECT count(card.card_set_status(id, 'active')) FROM jit_card;
SQL
card() { psql -X -At -d $db -c "SELECT id FROM jit_card WHERE n = $1"; }
first=$(card 1)
token=$(psql -X -At -d $db -c "SELECT card.card_token('$first')")
read -r individual account <<<"$(psql -X -At -F ' ' -d $db -c "SELECT individual_id, account_id FROM card.card WHERE id = '$first'")"
# lost_by_hand MARK N...: a direct UPDATE to 'lost' of each card, and the
# owner's call of end_same_pan for it, marked.
lost_by_hand() {
    local mark=$1 n id
    shift
    for n; do
        id=$(card "$n")
        echo "/* top, $mark */ UPDATE card.card SET status = 'lost' WHERE id = '$id';"
        echo "/* top, $mark */ SELECT card.end_same_pan('$id', 'by hand');"
    done
}
lost=$(lost_by_hand direct 2 3 4 5 6 7 8)
stolen=$(card 9)
lost_after=$(lost_by_hand "direct, after" 10 11)

psql -X -q -v ON_ERROR_STOP=1 -d $db >"$out" 2>&1 <<SQL
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_level = notice;
SET client_min_messages = notice;
SET jit = on;
SET jit_above_cost = 0;
/* top */ SELECT count(*) FROM pg_class;
$lost
/* top, direct */ DO \$\$ BEGIN PERFORM card.card_authorize('ct_none', 1, 'EUR', '5411', 'SE', 'chip', 'x');
  EXCEPTION WHEN no_data_found THEN NULL; END \$\$;
/* top */ SELECT count(*) FROM card.card_set_status('$stolen', 'stolen', 'check');
/* top */ SELECT count(*) FROM card.card_order('$individual', '$account', 'JIT card');
/* top */ SELECT count(*) FROM card.card_set_status('$first', 'frozen', 'check');
/* top */ SELECT count(*) FROM card.card_set_status('$first', 'active', 'check');
/* top */ SELECT card.card_set_controls('$first', '{"spending_limits": [{"amount": 50000, "interval": "daily"}]}') IS NOT NULL;
/* top */ SELECT approved FROM card.card_authorize('$token', 1000, 'EUR', '5411', 'SE', 'chip', 'jit-1');
/* top */ SELECT approved FROM card.card_authorize('$token', 1000, 'EUR', '5411', 'SE', 'chip', 'jit-1');
/* top */ SELECT status FROM card.authorization_capture((SELECT id FROM card."authorization" WHERE external_id = 'jit-1'));
/* top */ SELECT count(*) FROM card.events_after(0, 100);
$lost_after
/* top */ SELECT count(*) FROM pg_class;
SQL

# auto_explain shows a statement when it ends, so the plans nested in a
# top-level statement come just before it.  Prints "nested N", "direct N"
# (plans compiled under the direct UPDATEs, allowed; "after N" of them
# under those after the calls), "plain" for each
# top-level plain query that was compiled, and each offending query text.
verdict=$(awk '
    function close_block() {
        if (q == "") return
        if (q ~ /\/\* top/) {
            if (q ~ /pg_class/ && jit) print "plain"
            if (q ~ /top, direct, after/) after += pending_jit
            if (q ~ /top, direct/) direct += pending_jit
            else if (pending_jit) print "offending " pending_q
            pending_jit = 0; pending_q = ""
        } else {
            nested++
            if (jit) { pending_jit++; pending_q = substr(q, 1, 160) }
        }
        q = ""; jit = 0
    }
    /^NOTICE:  duration/ { close_block() }
    /^Query Text:/ { q = $0 }
    /^JIT:/ { jit = 1 }
    END { close_block(); print "nested " nested; print "direct " direct + 0; print "after " after + 0 }' "$out")
nested=$(sed -n 's/^nested //p' <<<"$verdict")
direct=$(sed -n 's/^direct //p' <<<"$verdict")
after=$(sed -n 's/^after //p' <<<"$verdict")
[ "$(grep -c '^plain$' <<<"$verdict")" = 2 ] \
    || fail "a plain query was not compiled at the start or at the end of the session"
[ "$direct" -gt 0 ] || fail "no plan under the direct UPDATEs and end_same_pan calls was compiled: end_same_pan's plans were not made with JIT"
[ "$after" -gt 0 ] || fail "no plan under the direct UPDATEs after the calls was compiled: the calls left JIT off in the session's kept plans"
[ "$nested" -ge 60 ] || fail "only $nested nested plans were shown: auto_explain did not see the calls' statements"
if grep -q '^offending ' <<<"$verdict"; then
    grep '^offending ' <<<"$verdict" | sort | uniq -c
    fail "statements run by the card functions were JIT-compiled"
fi
echo "jit: $nested nested plans shown, none that a card function ran compiled ($direct under the direct UPDATEs and end_same_pan calls were)"
