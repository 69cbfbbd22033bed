#!/usr/bin/env bash
# Documentation that runs (issue 14): every ```sql and ```perl block of
# README.md and docs/*.md is executed, and its output compared with
# test/expected/docs/<file>.out.
#
# For each Markdown file that has such blocks, its blocks in order form one
# psql session, run in a fresh database of the cluster that PGHOST/PGPORT/
# PGUSER name (the docs say CREATE EXTENSION card themselves).  A ```perl
# block is written to a file and run at its place in the session with
# psql's \! (so it sees what the session's \setenv exported, and PGDATABASE
# names the session's database).  psql runs without ON_ERROR_STOP: an
# error the docs show on purpose is part of the expected output, one they
# do not is a diff.  What varies between runs is masked (ids, tokens,
# times, last4, expiry) and psql's column padding is squeezed, so that a
# value's width cannot move a table.
#
# Fails on any diff (and prints it), on a ```sql or ```perl block that no
# session runs (an indented fence, another Markdown file), on an expected
# file that no document has, and on a PAN-like digit run in any output.
#
#   test/docs.sh             run and compare
#   test/docs.sh --accept    run and write the expected files (then read them)
#   CARD_DOCS_KEEP=1         keep the databases and the work directory
set -euo pipefail
cd "$(dirname "$0")/.."
accept=0
case "${1:-}" in
    --accept) accept=1 ;;
    "") ;;
    *) echo "usage: $0 [--accept]" >&2; exit 2 ;;
esac
expected_dir=test/expected/docs
work=$(mktemp -d /tmp/card-docs.XXXXXX)
chmod 755 "$work"   # psql's \! runs perl here, as whoever runs the test
status=0
dbs=()
cleanup() {
    if [ "${CARD_DOCS_KEEP:-0}" = 1 ]; then
        echo "docs: kept $work and the databases ${dbs[*]-}"
        return
    fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "docs: FAIL: $*"; status=1; }
q() { PGOPTIONS="-c client_min_messages=warning" psql -X -A -t -q -v ON_ERROR_STOP=1 -d postgres -c "$1"; }

# Splits a Markdown file into $work/<name>.sql (the session) and
# $work/<name>-<n>.pl (its Perl blocks); prints how many blocks it took.
extract() {
    perl -e '
        my ($md, $sql, $stem) = @ARGV;
        open my $in, "<", $md or die "$md: $!";
        open my $out, ">", $sql or die "$sql: $!";
        my ($lang, $n, $perl, $fh) = ("", 0, 0);
        while (my $line = <$in>) {
            if ($lang eq "") {
                next unless $line =~ /^```(sql|perl)\s*$/;
                $lang = $1; $n++;
                if ($lang eq "perl") {
                    $perl++;
                    open $fh, ">", "$stem-$perl.pl" or die $!;
                    # Unbuffered, so that its lines and psql'\''s keep their order.
                    print $fh "BEGIN { \$| = 1 } ";
                }
            } elsif ($line =~ /^```\s*$/) {
                if ($lang eq "perl") {
                    close $fh;
                    my $base = $stem; $base =~ s{.*/}{};
                    print $out "\\! perl $base-$perl.pl\n";
                }
                $lang = "";
            } elsif ($lang eq "sql") {
                print $out $line;
            } else {
                print $fh $line;
            }
        }
        die "$md: a code block is not closed\n" if $lang ne "";
        print "$n\n";
    ' "$1" "$2" "$3"
}

# The output with what varies between runs masked: uuids numbered in order
# of appearance (so that the same id reads the same), tokens, last4 and
# expiry, times and dates near today; psql's padding squeezed.
mask() {
    perl -ne '
        BEGIN { our %id; our $n = 0; our $y = (gmtime)[5] + 1900; }
        s/^psql:<stdin>:\d+: //;
        s{\b([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b}{"<id-" . ($id{$1} //= ++$n) . ">"}ge;
        s/\bct_[A-Za-z0-9_-]{24}/ct_<token>/g;
        s/\b(act|rvl|pin)_[A-Za-z0-9_-]{43}/$1_<token>/g;
        s/("last4": ")\d{4}"/$1<last4>"/g;
        s/("exp_month": ")\d\d"/$1<mm>"/g;
        s/("exp_year": ")\d{4}"/$1<yyyy>"/g;
        # a time or date from last year to 25 years ahead: now(), expiries
        s{\b(\d{4})-\d\d-\d\d([ T]\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d\d(:\d\d)?)?)?}
         {($1 >= $y - 1 && $1 <= $y + 25) ? ($2 ? "<time>" : "<date>") : $&}ge;
        # psql pads columns to their widest value; squeeze the padding
        s/ {2,}/ /g; s/-{2,}/--/g; s/^ //; s/ $//;
        print;
    '
}

# Every fence of a runnable language anywhere in the repository's Markdown,
# counted by file, to find blocks no session runs.
declare -A found=()
while IFS= read -r md; do
    n=$(grep -cE '^[[:space:]]*```[[:space:]]*(sql|perl|psql|pgsql|plpgsql|SQL|Perl)[[:space:]]*$' "$md" || true)
    [ "$n" -gt 0 ] && found[$md]=$n
done < <(git ls-files --cached --others --exclude-standard '*.md' 2>/dev/null || find . -name '*.md' -not -path './.git/*' | sed 's|^\./||')

mkdir -p "$expected_dir"
docs=(README.md docs/*.md)
ran_any=()
for md in "${docs[@]}"; do
    [ -n "${found[$md]:-}" ] || continue
    name=$(basename "$md" .md)
    stem=$work/$name
    took=$(extract "$md" "$stem.sql" "$stem")
    if [ "$took" != "${found[$md]}" ]; then
        fail "$md has ${found[$md]} sql/perl fences, of which $took are run (an indented or misspelt fence?)"
    fi
    unset "found[$md]"
    ran_any+=("$name")

    db=card_docs_$(tr 'A-Z-' 'a-z_' <<<"$name")
    dbs+=("$db")
    # Roles are the cluster's: drop those the session creates, if an
    # interrupted run left them, before and after.
    roles=$({ grep -ohiE 'CREATE ROLE [a-z_][a-z0-9_]*' "$stem.sql" || true; } | awk '{print tolower($3)}' | sort -u | tr '\n' ' ')
    drop_roles() {
        local r
        for r in $roles; do q "DROP ROLE IF EXISTS $r" >/dev/null; done
    }
    drop_db() {
        q "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '$db'" >/dev/null
        PGOPTIONS="-c client_min_messages=warning" dropdb --if-exists "$db"
    }
    drop_db; drop_roles
    createdb "$db"
    (cd "$work" && PGDATABASE=$db psql -X -a <"$stem.sql" >"$stem.raw" 2>&1) || true
    mask <"$stem.raw" >"$stem.out"
    if [ "${CARD_DOCS_KEEP:-0}" != 1 ]; then drop_db; drop_roles; fi

    # A PAN must never reach the output, not even masked away.
    if grep -nE '(^|[^0-9])[0-9]{13,19}([^0-9]|$)' "$stem.raw" | grep -v 9223372036854775807 >"$stem.pan"; then
        fail "$md: a digit run as long as a PAN in its output:"; cat "$stem.pan"
    fi
    want=$expected_dir/$name.out
    if [ $accept = 1 ]; then
        cp "$stem.out" "$want"
        echo "docs: wrote $want ($(wc -l <"$want") lines)"
    elif [ ! -f "$want" ]; then
        fail "$md: no $want (write it with test/docs.sh --accept, then read it)"
    elif ! diff -u "$want" "$stem.out" >"$stem.diff"; then
        fail "$md: the output differs from $want:"
        cat "$stem.diff"
    else
        echo "docs: $md: $(grep -c '' "$stem.sql") lines of session, $(ls "$stem"-*.pl 2>/dev/null | wc -l) Perl snippets, output as expected"
    fi
done

# Every link between the documents resolves: the file, and the heading an
# anchor names (GitHub's slugs: lower case, punctuation dropped, spaces to -).
if ! perl -e '
    use strict; use warnings;
    my ($bad, %slugs) = (0);
    sub slugs {
        my ($f) = @_;
        return $slugs{$f} //= do {
            my %s; my $fence = 0;
            open my $in, "<", $f or die "$f: $!";
            while (<$in>) {
                $fence = !$fence if /^\s*```[\w-]*\s*$/;
                next if $fence or !/^#+\s+(.*?)\s*$/;
                (my $s = lc $1) =~ s/[^\w\- ]//g; $s =~ s/ /-/g;
                $s{$s} = 1;
            }
            \%s;
        };
    }
    for my $md (@ARGV) {
        (my $dir = $md) =~ s{[^/]*$}{};
        open my $in, "<", $md or die "$md: $!";
        my $fence = 0;
        while (my $line = <$in>) {
            $fence = !$fence if $line =~ /^\s*```[\w-]*\s*$/;
            next if $fence;
            while ($line =~ /\]\(([^)\s]+)\)/g) {
                my $link = $1;
                next if $link =~ /^(https?|mailto):/;
                my ($path, $anchor) = split /#/, $link, 2;
                my $target = $path eq "" ? $md : $dir . $path;
                1 while $target =~ s{[^/]+/\.\./}{};
                if (!-e $target) { print "docs: FAIL: $md:$.: $link: no file $target\n"; $bad = 1; next; }
                if (defined $anchor && $target =~ /\.md$/ && !slugs($target)->{$anchor}) {
                    print "docs: FAIL: $md:$.: $link: no heading #$anchor in $target\n"; $bad = 1;
                }
            }
        }
    }
    exit $bad;
' "${docs[@]}"; then
    status=1
fi

for md in "${!found[@]}"; do
    fail "$md has ${found[$md]} sql/perl blocks that no session runs (only README.md and docs/*.md are run)"
done
for want in "$expected_dir"/*.out; do
    [ -e "$want" ] || continue
    name=$(basename "$want" .out)
    [[ " ${ran_any[*]-} " == *" $name "* ]] || fail "$want belongs to no document with runnable blocks"
done

if [ $status = 0 ]; then echo "docs: ok"; fi
exit $status
