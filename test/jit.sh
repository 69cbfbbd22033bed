#!/usr/bin/env bash
# No JIT in the extension's statements: with jit_above_cost at 0 every plan
# would be compiled; auto_explain (nested statements, at NOTICE) shows each
# plan the calls execute, and none of the card functions' own may carry a
# "JIT:" section, while a plain query in the same session does (so JIT is
# there to be refused, and the check sees it).  Runs against the cluster of
# PGHOST/PGPORT.
set -euo pipefail

db=card_jit
out=$(mktemp)
trap 'rm -f "$out"; dropdb --if-exists $db 2>/dev/null' EXIT
fail() { echo "FAILED: $*"; exit 1; }

dropdb --if-exists $db 2>/dev/null
createdb $db
psql -X -q -v ON_ERROR_STOP=1 -d $db >/dev/null <<'SQL'
CREATE EXTENSION card;
SELECT card.programme_create('JIT', '45671234') AS p \gset
SELECT card.individual_create(:'p', 'Holder') AS i \gset
SELECT card.account_open(:'p', :'i') AS a \gset
SELECT card.account_credit(:'a', 100000, 'jit-credit');
SQL
[ "$(psql -X -At -d $db -c "SELECT pg_jit_available()")" = t ] \
    || fail "the server has no JIT provider (postgresql-15 on Debian ships llvmjit)"

ids=$(psql -X -q -v ON_ERROR_STOP=1 -At -F ' ' -d $db <<'SQL'
SELECT id AS c FROM card.card_order((SELECT id FROM card.individual), (SELECT id FROM card.account), 'First') \gset
SELECT c.id, card.card_token(c.id), c.individual_id, c.account_id FROM card.card c WHERE c.id = :'c';
SQL
)
read -r card token individual account <<<"$ids"

# Each statement of the session is marked /* top */: those are the
# session's own and may be compiled; any other plan shown is one that a
# card function ran.
run() {
    psql -X -q -v ON_ERROR_STOP=1 -d $db 2>&1 >/dev/null <<SQL
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_level = notice;
SET client_min_messages = notice;
SET jit = on;
SET jit_above_cost = 0;
$1
SQL
}
# Blocks of auto_explain's output that show a compiled plan, by query text.
compiled() {
    awk '/^NOTICE:  duration/ { if (jit && q !~ /\/\* top \*\//) print q; q = ""; jit = 0 }
         /^Query Text:/ { q = $0 }
         /^JIT:/ { jit = 1 }
         END { if (jit && q !~ /\/\* top \*\//) print q }' "$1"
}
run "/* top */ SELECT count(*) FROM pg_class;" >"$out"
grep -q '^JIT:' "$out" || fail "a plain query was not compiled: the check would see nothing"

# The calls: order, activate, freeze and unfreeze, a limit, authorise twice
# (the second a replay), capture, the feed, a direct update (a trigger).
run "
/* top */ SELECT count(*) FROM card.card_order('$individual', '$account', 'JIT card');
/* top */ SELECT count(*) FROM card.card_set_status('$card', 'active');
/* top */ SELECT count(*) FROM card.card_set_status('$card', 'frozen', 'check');
/* top */ SELECT count(*) FROM card.card_set_status('$card', 'active', 'check');
/* top */ SELECT card.card_set_controls('$card', '{\"spending_limits\": [{\"amount\": 50000, \"interval\": \"daily\"}]}') IS NOT NULL;
/* top */ SELECT approved FROM card.card_authorize('$token', 1000, 'EUR', '5411', 'SE', 'chip', 'jit-1');
/* top */ SELECT approved FROM card.card_authorize('$token', 1000, 'EUR', '5411', 'SE', 'chip', 'jit-1');
/* top */ SELECT status FROM card.authorization_capture((SELECT id FROM card.\"authorization\" WHERE external_id = 'jit-1'));
/* top */ SELECT count(*) FROM card.events_after(0, 100);
/* top */ UPDATE card.card SET status = 'frozen' WHERE id = '$card';
" >"$out"
plans=$(grep -c '^Query Text:' "$out" || true)
[ "$plans" -ge 20 ] || fail "only $plans plans were shown: auto_explain did not see the calls' statements"
if [ -n "$(compiled "$out")" ]; then
    compiled "$out" | cut -c1-160 | sort | uniq -c
    fail "statements of the card functions were JIT-compiled"
fi
echo "jit: $plans plans shown, none of the card functions' compiled"
