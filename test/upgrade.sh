#!/usr/bin/env bash
# The upgrade path: a database at version 1.0 with data in it, updated with
# ALTER EXTENSION card UPDATE, has the same catalog and grants as a fresh
# install of the default version, keeps its rows, and works under the new
# rules.  Runs against the cluster of PGHOST/PGPORT (scripts/test's).
set -euo pipefail

old=card_upgrade_old
new=card_upgrade_new
work=$(mktemp -d)
# KEEP=1 keeps the two descriptions for a look.
mid=card_upgrade_11
stray=card_upgrade_18
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"; dropdb --if-exists $old; dropdb --if-exists $new; dropdb --if-exists $mid; dropdb --if-exists $stray' EXIT
q() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
newest=$(sed -n "s/^default_version = '\(.*\)'/\1/p" card.control)
version_of() { q -d "$1" -c "SELECT extversion FROM pg_extension WHERE extname = 'card'"; }

dropdb --if-exists $old 2>/dev/null
dropdb --if-exists $new 2>/dev/null
createdb $old
createdb $new

# Version 1.0 with data.  The library installed is the newest, whose C entry
# points need the newest catalog (see README, "Upgrading"), so the 1.0 data
# comes from 1.0's SQL functions; a consumer as 1.0 registered it; a card
# row and its activation link as 1.0's C code wrote them (placeholder
# secrets: this card is never decrypted).
q -d $old -o /dev/null <<'SQL'
CREATE EXTENSION card VERSION '1.0';
SELECT card.programme_create('Before the upgrade', '45671234') AS prog \gset
SELECT card.individual_create(:'prog', 'Old holder') AS ind \gset
SELECT card.account_open(:'prog', :'ind') AS acc \gset
SELECT balance FROM card.account_credit(:'acc', 12345, 'old-credit');
SELECT card.consumer_register('old-consumer', 7);
INSERT INTO card.card (id, programme_id, account_id, individual_id, display_name, type,
                       exp_month, exp_year, last4, token, pan_ciphertext, pan_key_version, pan_fingerprint)
VALUES (gen_random_uuid(), :'prog', :'acc', :'ind', 'Card of 1.0', 'physical', '12', '2030', '0000',
        'ct_old', '\x00', 1, '\x01')
RETURNING id AS old_card \gset
INSERT INTO card.activation (token_hash, card_id, return_url, expires_at)
VALUES ('\x02', :'old_card', 'https://app.example.com/done', now() + interval '1 hour');
SQL
# The newest library under the 1.4 catalog: events_after(bigint, integer)
# names the C function that now also takes a wait (it read an argument that
# was not there and crashed the server).
dropdb --if-exists card_upgrade_14 2>/dev/null
createdb card_upgrade_14
q -d card_upgrade_14 -c "CREATE EXTENSION card VERSION '1.4'"
q -d card_upgrade_14 -c "SELECT card.event_emit('account.credited', NULL, NULL, NULL, '{}')" >/dev/null
[ "$(q -d card_upgrade_14 -c "SELECT count(*) FROM card.events_after(0, 10)")" = 1 ] \
    || { echo "FAILED: events_after(cursor, max) of the 1.4 catalog"; exit 1; }
dropdb card_upgrade_14
echo "ok: the newest library answers events_after(cursor, max) of the 1.4 catalog"
q -d $old -c "ALTER EXTENSION card UPDATE"
q -d $new -c "CREATE EXTENSION card"

# Everything the extension owns, described by name (never by OID).
describe() {
    q -d "$1" <<'SQL'
-- Privileges as sets of (grantee, privilege, grantable), so that an ACL
-- left at its default and the same ACL written out compare equal.
CREATE FUNCTION pg_temp.acl(a aclitem[], kind "char", owner oid) RETURNS text
    LANGUAGE sql STABLE
RETURN (SELECT coalesce(string_agg(item, ',' ORDER BY item), '-')
          FROM (SELECT format('%s:%s%s', CASE WHEN e.grantee = 0 THEN 'PUBLIC' ELSE e.grantee::regrole::text END,
                              e.privilege_type, CASE WHEN e.is_grantable THEN '*' ELSE '' END) AS item
                  FROM aclexplode(coalesce(a, acldefault(kind, owner))) e) AS items);
SELECT 'version ' || extversion FROM pg_extension WHERE extname = 'card';
SELECT 'member ' || pg_describe_object(classid, objid, objsubid)
  FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'card') ORDER BY 1;
SELECT 'dumped ' || c::regclass::text || coalesce(' ' || w, '')
  FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS t(c, w)
 WHERE e.extname = 'card' ORDER BY 1;
SELECT format('schema %s owner=%s acl=%s comment=%s', nspname, nspowner::regrole, pg_temp.acl(nspacl, 'n', nspowner),
              coalesce(obj_description(oid, 'pg_namespace'), '-'))
  FROM pg_namespace WHERE nspname IN ('card', 'card_internal') ORDER BY 1;
SELECT 'function ' || p.oid::regprocedure || ' owner=' || p.proowner::regrole || ' acl=' || pg_temp.acl(p.proacl, 'f', p.proowner)
       || coalesce(' comment=' || obj_description(p.oid, 'pg_proc'), '')
       || E'\n' || pg_get_functiondef(p.oid)
  FROM pg_proc p WHERE p.pronamespace IN ('card'::regnamespace, 'card_internal'::regnamespace)
   AND p.prokind <> 'a' ORDER BY 1;
SELECT format('relation %s kind=%s owner=%s acl=%s rls=%s force=%s options=%s comment=%s', c.oid::regclass, c.relkind, c.relowner::regrole,
              pg_temp.acl(c.relacl, (CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END)::"char", c.relowner),
              c.relrowsecurity, c.relforcerowsecurity,
              coalesce(c.reloptions::text, '-'), coalesce(obj_description(c.oid, 'pg_class'), '-'))
  FROM pg_class c WHERE c.relnamespace = ANY (ARRAY['card', 'card_internal']::regnamespace[]) ORDER BY 1;
SELECT format('column %s.%s #%s %s notnull=%s default=%s identity=%s generated=%s acl=%s comment=%s',
              a.attrelid::regclass, a.attname, a.attnum, format_type(a.atttypid, a.atttypmod),
              a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
              coalesce(a.attacl::text, '-'), coalesce(col_description(a.attrelid, a.attnum), '-'))
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE c.relnamespace = ANY (ARRAY['card', 'card_internal']::regnamespace[]) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1;
SELECT format('constraint %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
  FROM pg_constraint WHERE connamespace = ANY (ARRAY['card', 'card_internal']::regnamespace[]) ORDER BY 1;
SELECT 'index ' || pg_get_indexdef(indexrelid)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
 WHERE c.relnamespace = ANY (ARRAY['card', 'card_internal']::regnamespace[]) ORDER BY 1;
SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace = ANY (ARRAY['card', 'card_internal']::regnamespace[]) AND NOT t.tgisinternal ORDER BY 1;
SELECT format('policy %s.%s cmd=%s permissive=%s roles=%s using=%s check=%s', polrelid::regclass, polname, polcmd, polpermissive,
              polroles::regrole[], pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid))
  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
 WHERE c.relnamespace = ANY (ARRAY['card', 'card_internal']::regnamespace[]) ORDER BY 1;
SELECT format('view %s %s', c.oid::regclass, pg_get_viewdef(c.oid))
  FROM pg_class c WHERE c.relnamespace = ANY (ARRAY['card', 'card_internal']::regnamespace[]) AND c.relkind = 'v' ORDER BY 1;
SELECT format('type %s owner=%s acl=%s %s comment=%s', t.oid::regtype, t.typowner::regrole, pg_temp.acl(t.typacl, 'T', t.typowner),
              (SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = t.oid),
              coalesce(obj_description(t.oid, 'pg_type'), '-'))
  FROM pg_type t WHERE t.typnamespace = ANY (ARRAY['card', 'card_internal']::regnamespace[]) AND t.typtype IN ('e', 'c', 'd') ORDER BY 1;
SELECT format('sequence %s %s', seqrelid::regclass, row(seqtypid::regtype, seqstart, seqincrement, seqmax, seqmin, seqcache, seqcycle))
  FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
 WHERE c.relnamespace = ANY (ARRAY['card', 'card_internal']::regnamespace[]) ORDER BY 1;
SQL
}

describe $old >"$work/upgraded"
describe $new >"$work/fresh"
status=0
if diff -u "$work/fresh" "$work/upgraded"; then
    echo "ok: the updated catalog equals a fresh install ($(grep -c '^function ' "$work/fresh") functions, $(grep -c '^relation ' "$work/fresh") relations, $(grep -c '^policy ' "$work/fresh") policies, $(grep -c '^column ' "$work/fresh") columns compared)"
else
    echo "FAILED: ALTER EXTENSION card UPDATE gives a catalog other than a fresh install's"
    status=1
fi
# The comparison must see the new version's objects, or it proves nothing.
if ! grep -q '^function card.programme_grant(uuid,name)' "$work/upgraded" \
   || ! grep -q "^policy card.card.programme_of_caller" "$work/upgraded"; then
    echo "FAILED: the updated catalog lacks version 1.1's objects"
    status=1
fi

# The 1.0 rows are all there and work under 1.1: the superuser sees them,
# the old consumer is card_reader's, and the old account takes a new card.
out=$(q -d $old <<'SQL'
SELECT format('rows %s %s %s %s', (SELECT count(*) FROM card.programme), (SELECT count(*) FROM card.individual),
              (SELECT balance FROM card.balances), (SELECT role_name FROM card.event_consumer WHERE name = 'old-consumer'));
SELECT 'ordered ' || (card.card_order(a.individual_id, a.id, 'After the upgrade')).status
  FROM card.account a;
SELECT 'pan ' || (card.pan_check(c.id)).luhn_valid FROM card.card c WHERE display_name = 'After the upgrade';
SELECT card.consumer_register('old-consumer') AS adopted \gset
SELECT format('shared %s %s', :'adopted',
              (SELECT string_agg(role_name, ',') FROM card.event_consumer WHERE name = 'old-consumer'));
SELECT format('old card %s %s %s %s %s, its link %s', c.status, c.pan_sequence, c.pin_tries,
              c.chain_id IS NULL AND c.replacement_reason IS NULL, v.status = c.status, l.purpose)
  FROM card.card c JOIN card.cards v USING (id) JOIN card.hosted_link l ON l.card_id = c.id
 WHERE c.display_name = 'Card of 1.0';
SQL
)
expected=$'rows 1 1 12345 card_reader\nordered not_activated\npan true\nshared 7 card_reader\nold card not_activated 0 0 t t, its link activation'
if [ "$out" = "$expected" ]; then
    echo "ok: 1.0's rows survive the update and a new card is ordered on an old account"
else
    printf 'FAILED: after the update\n%s\nexpected\n%s\n' "$out" "$expected"
    status=1
fi

# Version 1.1 accepted PAN lengths that the brand does not issue; 1.2 does
# not (issue 16).  A 1.1 database holding such programmes, one with a card
# (written as 1.1's C code would, placeholder secrets), is updated: the
# update names each with a WARNING, the card keeps working, card_order
# refuses a new card under it until the owner changes its length, and the
# catalog equals a fresh install's.
dropdb --if-exists $mid 2>/dev/null
createdb $mid
ids=$(q -d $mid <<'SQL'
\o /dev/null
CREATE EXTENSION card VERSION '1.1';
SELECT card.programme_create('Legacy Mastercard 19', '51234567', 'mastercard', pan_length => 19) AS prog \gset
SELECT card.programme_create('Legacy Visa 13', '45671234', pan_length => 13) AS visa13 \gset
SELECT card.programme_create('Visa 19', '45671235', pan_length => 19) AS visa19 \gset
SELECT card.individual_create(:'prog', 'Legacy holder') AS ind \gset
SELECT card.account_open(:'prog', :'ind') AS acc \gset
INSERT INTO card.card (id, programme_id, account_id, individual_id, display_name, type,
                       exp_month, exp_year, last4, token, pan_ciphertext, pan_key_version, pan_fingerprint)
VALUES (gen_random_uuid(), :'prog', :'acc', :'ind', 'Card of 1.1', 'virtual', '12', '2030', '0000',
        'ct_legacy', '\x00', 1, '\x01');
\o
SELECT :'prog' || ' ' || :'visa13';
SQL
)
read -r legacy_mc legacy_visa <<<"$ids"
q -d $mid -c "ALTER EXTENSION card UPDATE" 2>"$work/update-1.1.err"
warnings=$(grep '^WARNING:' "$work/update-1.1.err" || true)
expected_warnings="WARNING:  programme \"Legacy Mastercard 19\" ($legacy_mc) has pan_length 19, which mastercard does not issue
WARNING:  programme \"Legacy Visa 13\" ($legacy_visa) has pan_length 13, which visa does not issue"
if [ "$warnings" = "$expected_warnings" ]; then
    echo "ok: updating 1.1 warns of each programme whose PAN length its brand does not issue, by name and id"
else
    printf 'FAILED: the update from 1.1 warned\n%s\nexpected\n%s\n' "$(cat "$work/update-1.1.err")" "$expected_warnings"
    status=1
fi
out=$(q -d $mid <<'SQL'
\i test/pgtap/include/run_as.sql
SELECT a.id AS acc, a.individual_id AS ind FROM card.account a \gset
SELECT 'version ' || extversion FROM pg_extension WHERE extname = 'card';
SELECT 'cards ' || count(*) FROM card.card;
SELECT 'old card ' || (card.card_set_status(c.id, 'active')).status FROM card.card c WHERE c.display_name = 'Card of 1.1';
SELECT 'order ' || pg_temp.tap_state(format('SELECT card.card_order(%L, %L, %L)', :'ind', :'acc', 'Refused'));
SELECT 'refused length ' || pg_temp.tap_state($$UPDATE card.programme SET pan_length = 13 WHERE name = 'Legacy Mastercard 19'$$);
UPDATE card.programme SET pan_length = 16 WHERE name = 'Legacy Mastercard 19';
SELECT 'ordered ' || (k).pan_length || ' ' || (k).luhn_valid
  FROM (SELECT card.pan_check(c.id) AS k FROM card.card_order(:'ind', :'acc', 'After the fix') c) s;
SELECT 'cards ' || count(*) FROM card.card;
SQL
)
expected=$'version '"$newest"$'\ncards 1\nold card active\norder 55000\nrefused length 22023\nordered 16 true\ncards 2'
if [ "$out" = "$expected" ]; then
    echo "ok: the 1.1 programme keeps its card, which works; card_order under it is refused (55000) until the owner sets an allowed length"
else
    printf 'FAILED: after the update from 1.1\n%s\nexpected\n%s\n' "$out" "$expected"
    status=1
fi
describe $mid >"$work/updated-1.1"
if diff -u "$work/fresh" "$work/updated-1.1"; then
    echo "ok: the catalog updated from 1.1 equals a fresh install"
else
    echo "FAILED: ALTER EXTENSION card UPDATE from 1.1 gives a catalog other than a fresh install's"
    status=1
fi

# 1.9 keys a card's holder to its account's members (card.account_member)
# instead of to card.individual.  card_order never made a card for anyone
# else, but a row written by hand may have: the update then stops, naming
# the card, and goes through once the holder is made a member.
dropdb --if-exists $stray 2>/dev/null
createdb $stray
q -d $stray -o /dev/null <<'SQL'
CREATE EXTENSION card VERSION '1.8';
SELECT card.programme_create('Before 1.9', '45671234') AS prog \gset
SELECT card.individual_create(:'prog', 'Holder') AS ind \gset
SELECT card.individual_create(:'prog', 'Not a member') AS outsider \gset
SELECT card.account_open(:'prog', :'ind') AS acc \gset
INSERT INTO card.card (id, programme_id, account_id, individual_id, display_name, type,
                       exp_month, exp_year, last4, token, pan_ciphertext, pan_key_version, pan_fingerprint)
VALUES ('00000000-0000-4000-8000-000000000018', :'prog', :'acc', :'outsider', 'By hand', 'virtual',
        '12', '2030', '0000', 'ct_by_hand', '\x00', 1, '\x01');
SQL
if q -d $stray -c "ALTER EXTENSION card UPDATE" 2>"$work/update-1.8.err"; then
    echo "FAILED: the update from 1.8 went through with a card whose holder is not a member of its account"
    status=1
elif grep -q "card 00000000-0000-4000-8000-000000000018 is held by individual .*, who is not a member of its account" "$work/update-1.8.err" \
     && grep -q "HINT:  Add the holder with card.account_member_add" "$work/update-1.8.err" \
     && [ "$(version_of $stray)" = 1.8 ]; then
    echo "ok: the update from 1.8 stops at a card whose holder is not a member of its account, naming it, and changes nothing"
else
    printf 'FAILED: the update from 1.8 with a stray card said\n%s\n' "$(cat "$work/update-1.8.err")"
    status=1
fi
q -d $stray -o /dev/null -c "SELECT card.account_member_add(account_id, individual_id) FROM card.card"
if q -d $stray -c "ALTER EXTENSION card UPDATE" 2>"$work/update-1.8.err" \
   && [ "$(version_of $stray)" = "$newest" ]; then
    echo "ok: once its holder is a member, the update from 1.8 goes through"
else
    printf 'FAILED: the update from 1.8 after account_member_add said\n%s\n' "$(cat "$work/update-1.8.err")"
    status=1
fi
exit $status
