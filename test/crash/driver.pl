#!/usr/bin/perl
# test/crash/driver.pl: one client of the crash test's load (test/crash.sh).
#
#   driver.pl --client N --round R --log FILE [--seconds S] [--ready FILE] [--seed X]
#   driver.pl --retry --client N --round R --log FILE --retry-log FILE
#
# Load mode: connects (PGHOST, PGPORT, PGDATABASE, PGUSER from the
# environment), loads the state of its own cards (display_name 'crash c<N> ...';
# replacements keep the name, so a chain stays with its client) and of their
# pending holds, then calls, in autocommit with server-side prepared
# statements (the extended protocol), a random mix of card_order (with
# idempotency keys), card_set_status (activate, freeze, unfreeze, block),
# card_authorize (unique external_ids), authorization_capture and _reverse,
# account_credit (unique references), card_replace, and repeats of earlier
# orders, authorisations, credits and replacements, until the connection is
# lost (the crash) or S seconds have passed.
#
# Log lines (tab-separated: kind, client, round, op id, op, JSON):
#   P  before a call, with its arguments (the call may be in flight at the crash)
#   A  after the call returned: it is acknowledged (committed, or refused as
#      the model expected); written only then
#   F  a result the model did not expect (an unexpected error, a repeat that
#      answered otherwise, a status other than asked): a test failure
#   X  the connection was lost; names the op in flight, if any
#   S  at the end: each own card's status as the model has it, and whether the
#      op in flight may have changed it (uncertain)
#   H  at the end: each own pending hold and what it holds
#
# The model is exact because only the owning client changes a card's status
# (the side effects of a reissue's activation or a lost/stolen report stay
# within the card's PAN, so within its chain and its client) and only the
# client that authorised a hold captures or reverses it.
#
# Retry mode, after the restart: retries the op that was in flight (if it is
# idempotent: order, authorisation, credit, replacement) and repeats up to 12
# acknowledged idempotent ops; each must answer as the first time (R lines,
# F on a mismatch).
use strict;
use warnings;
use DBI;
use JSON::PP;
use Fcntl qw(O_WRONLY O_APPEND O_CREAT);
use Getopt::Long;
use Time::HiRes qw(time);

my ($client, $round, $seconds, $log, $ready, $seed, $retry, $retry_log) = (0, 1, 120);
GetOptions('client=i' => \$client, 'round=i' => \$round, 'seconds=f' => \$seconds,
           'log=s' => \$log, 'ready=s' => \$ready, 'seed=i' => \$seed, 'retry' => \$retry,
           'retry-log=s' => \$retry_log) or die "bad arguments\n";
die "--log is required\n" unless $log;
srand($seed // ($$ ^ int(time() * 1000)));

my $json = JSON::PP->new->canonical;
my $out_name = $retry ? $retry_log : $log;
sysopen(my $OUT, $out_name, O_WRONLY | O_APPEND | O_CREAT, 0644) or die "$out_name: $!\n";

sub logline {
    my ($kind, $id, $op, $data) = @_;
    my $line = join("\t", $kind, $client, $round, $id, $op, $json->encode($data)) . "\n";
    my $n = syswrite($OUT, $line);
    die "log write: $!\n" unless defined $n && $n == length($line);
}

my $dbh = DBI->connect('dbi:Pg:', undef, undef,
                       {AutoCommit => 1, RaiseError => 0, PrintError => 0, pg_server_prepare => 1})
    or die "connect: $DBI::errstr\n";
$dbh->do("SET application_name = 'crash-c$client'");

my %sql = (
    order     => 'SELECT id, status::text AS status FROM card.card_order($1, $2, $3, NULL, NULL, $4::card.card_type, $5)',
    status    => 'SELECT id, status::text AS status FROM card.card_set_status($1, $2::card.card_status, $3, \'api\')',
    authorize => 'SELECT authorization_id, approved::int AS approved, decline_reason, available'
               . ' FROM card.card_authorize($1, $2, \'EUR\', $3, $4, $5, $6, \'crash\')',
    capture   => 'SELECT status, captured, released, held, available FROM card.authorization_capture($1, $2)',
    reverse   => 'SELECT status, captured, released, held, available FROM card.authorization_reverse($1, $2)',
    credit    => 'SELECT balance, held, available FROM card.account_credit($1, $2, $3)',
    replace   => 'SELECT id, status::text AS status FROM card.card_replace($1, $2)',
    token     => 'SELECT card.card_token($1) AS token',
);
my %sth = map { $_ => $dbh->prepare($sql{$_}) } keys %sql;

# One call: (rows, undef) on success, (undef, sqlstate, message) on an error.
# A lost connection ends the load.
my $lost = 0;
sub call {
    my ($name, @args) = @_;
    my $sth = $sth{$name};
    if (defined $sth->execute(@args)) {
        return ($sth->fetchall_arrayref({}));
    }
    my ($state, $msg) = ($dbh->state // '', $dbh->errstr // '');
    if ($state =~ /^(08|57P|S8)/ || $msg =~ /server closed the connection|no connection to the server|terminating connection|could not receive data|connection to server/
        || !$dbh->ping) {
        $lost = 1;
        return (undef, 'lost', $msg);
    }
    return (undef, $state, $msg);
}

# --- the state of this client's cards -------------------------------------

my $pattern = "crash c$client %";
my (%card, @mine, %pending, @pairs, %shared);

sub load_state {
    my $rows = $dbh->selectall_arrayref(
        "SELECT c.id, c.status::text, c.type::text, c.token, card.chain_of(c.id, c.chain_id),
                c.programme_id || ':' || encode(c.pan_fingerprint, 'hex'), c.replacement_for,
                c.replacement_reason::text
           FROM card.card c WHERE c.display_name LIKE \$1 ORDER BY c.created_at, c.id",
        {}, $pattern) or die "load cards: " . $dbh->errstr . "\n";
    for my $r (@$rows) {
        my ($id, $status, $type, $token, $chain, $pan, $for, $reason) = @$r;
        $card{$id} = {status => $status, type => $type, token => $token, chain => $chain,
                      pan => $pan, reason => $reason, repl => {}};
        push @mine, $id;
    }
    for my $r (@$rows) {
        my ($id, $for, $reason) = @$r[0, 6, 7];
        $card{$for}{repl}{$reason} = $id if defined $for;
    }
    my $holds = $dbh->selectall_arrayref(
        "SELECT h.id, h.held FROM card.\"authorization\" h JOIN card.card c ON c.id = h.card_id
          WHERE h.status = 'pending' AND c.display_name LIKE \$1", {}, $pattern)
        or die "load holds: " . $dbh->errstr . "\n";
    $pending{$_->[0]} = $_->[1] for @$holds;
    my $shared = $dbh->selectall_arrayref(
        "SELECT c.id, c.token FROM card.card c WHERE c.display_name LIKE 'crash shared %'")
        or die "load shared cards: " . $dbh->errstr . "\n";
    %shared = map { $_->[0] => $_->[1] } @$shared;
    my $pairs = $dbh->selectall_arrayref(
        "SELECT m.account_id, m.individual_id FROM card.account_member m ORDER BY 1, 2")
        or die "load accounts: " . $dbh->errstr . "\n";
    @pairs = @$pairs;
}

sub live { my $s = shift; return $s eq 'not_activated' || $s eq 'active' || $s eq 'frozen'; }
sub pick { return $_[int(rand(@_))]; }

# --- load ----------------------------------------------------------------------

my $n = 0;                     # op counter
my %inflight;                  # the op being called: id, op, args
my (@orders, @auths, @credits);    # acknowledged, for repeats
my %count;                     # acknowledged per op
my $failures = 0;

sub fail {
    my ($op, $what) = @_;
    $failures++;
    logline('F', $n, $op, $what);
}

# Logs P, then calls the statement: returns ('ok', first row), ('error',
# sqlstate, message) or ('lost') (the op stays in flight).  The caller logs
# A or F.
sub attempt {
    my ($op, $stmt, $args, @bind) = @_;
    $n++;
    %inflight = (id => $n, op => $op, args => $args);
    logline('P', $n, $op, $args);
    my ($rows, $state, $msg) = call($stmt, @bind);
    return ('lost') if $lost;
    %inflight = ();
    return ('error', $state, $msg) unless $rows;
    return ('ok', $rows->[0]);
}

sub ack { my ($op, $data) = @_; $count{$op}++; logline('A', $n, $op, $data); }

sub unexpected_error {
    my ($op, $args, $state, $msg) = @_;
    fail($op, {%$args, error => $state, message => $msg});
}

sub token_of {
    my $id = shift;
    return $card{$id}{token} if defined $card{$id}{token};
    my ($rows) = call('token', $id);
    return undef unless $rows;
    return $card{$id}{token} = $rows->[0]{token};
}

# The cards that share this card's PAN, but for it.
sub same_pan { my $id = shift; return grep { $_ ne $id && $card{$_}{pan} eq $card{$id}{pan} } @mine; }

sub op_authorize {
    my @active = grep { $card{$_}{status} eq 'active' } @mine;
    my ($id, $token);
    if (%shared && rand() < 0.1) {
        $id = pick(keys %shared);
        $token = $shared{$id};
    } else {
        $id = (@active && rand() < 0.85) ? pick(@active) : pick(@mine);
        $token = token_of($id) // return;
    }
    my $args = {card => $id, amount => 100 + int(rand(4900)),
                mcc => pick(qw(5411 5812 5813 7011 5999)), country => pick(qw(SE DE FR)),
                channel => pick(qw(chip contactless ecommerce ecommerce atm)),
                ext => "x$round.$client." . ($n + 1)};
    my ($res, $row, $msg) = attempt('authorize', 'authorize', $args, $token, $args->{amount},
                                    @$args{qw(mcc country channel ext)});
    return if $res eq 'lost';
    return unexpected_error('authorize', $args, $row, $msg) if $res eq 'error';
    my $status = $card{$id} ? $card{$id}{status} : 'shared';
    if ($status eq 'shared') {
        # Another client may have frozen it: no model.
    } elsif ($status ne 'active' && ($row->{approved} || ($row->{decline_reason} // '') ne 'card_not_active')) {
        fail('authorize', {%$args, model_status => $status, got => $row});
    } elsif ($status eq 'active' && !$row->{approved}
             && $row->{decline_reason} =~ /^card_(not_active|expired)$/) {
        fail('authorize', {%$args, model_status => $status, got => $row});
    }
    $pending{$row->{authorization_id}} = $args->{amount} if $row->{approved};
    ack('authorize', {%$args, id => $row->{authorization_id}, approved => $row->{approved},
                      reason => $row->{decline_reason}});
    push @auths, [$token, $args, $row->{authorization_id}, $row->{approved}];
}

sub op_authorize_repeat {
    return op_authorize() unless @auths;
    my ($token, $first, $id, $approved) = @{pick(@auths)};
    my $args = {%$first, repeat_of => $id};
    my ($res, $row, $msg) = attempt('authorize_repeat', 'authorize', $args, $token, $args->{amount},
                                    @$args{qw(mcc country channel ext)});
    return if $res eq 'lost';
    return unexpected_error('authorize_repeat', $args, $row, $msg) if $res eq 'error';
    return fail('authorize_repeat', {%$args, got => $row})
        if $row->{authorization_id} ne $id || $row->{approved} != $approved;
    ack('authorize_repeat', {%$args, id => $id, approved => $approved});
}

sub op_capture {
    my @holds = keys %pending;
    return op_authorize() unless @holds;
    my $id = pick(@holds);
    my $held = $pending{$id};
    my $amount = rand() < 0.6 ? undef : 1 + int(rand($held));
    my $args = {id => $id, amount => $amount, held => $held};
    my ($res, $row, $msg) = attempt('capture', 'capture', $args, $id, $amount);
    return if $res eq 'lost';
    return unexpected_error('capture', $args, $row, $msg) if $res eq 'error';
    delete $pending{$id};
    my $want = $amount // $held;
    return fail('capture', {%$args, got => $row})
        if $row->{status} ne 'captured' || $row->{held} != 0 || $row->{captured} != $want;
    ack('capture', {%$args, status => $row->{status}, captured => $row->{captured},
                    released => $row->{released}});
}

sub op_reverse {
    my @holds = keys %pending;
    return op_authorize() unless @holds;
    my $id = pick(@holds);
    my $held = $pending{$id};
    my $amount = ($held > 1 && rand() < 0.5) ? 1 + int(rand($held - 1)) : undef;
    my $args = {id => $id, amount => $amount, held => $held};
    my ($res, $row, $msg) = attempt('reverse', 'reverse', $args, $id, $amount);
    return if $res eq 'lost';
    return unexpected_error('reverse', $args, $row, $msg) if $res eq 'error';
    my $left = $held - ($amount // $held);
    if ($left) { $pending{$id} = $left; } else { delete $pending{$id}; }
    return fail('reverse', {%$args, got => $row})
        if $row->{held} != $left || $row->{status} ne ($left ? 'pending' : 'reversed');
    ack('reverse', {%$args, status => $row->{status}, released => $row->{released}, left => $left});
}

sub op_credit {
    my $pair = pick(@pairs);
    my $args = {account => $pair->[0], amount => 1000 + int(rand(99000)),
                ref => "r$round.$client." . ($n + 1)};
    my ($res, $row, $msg) = attempt('credit', 'credit', $args, @$args{qw(account amount ref)});
    return if $res eq 'lost';
    return unexpected_error('credit', $args, $row, $msg) if $res eq 'error';
    ack('credit', {%$args, balance => $row->{balance}});
    push @credits, $args;
}

sub op_credit_repeat {
    return op_credit() unless @credits;
    my $args = {%{pick(@credits)}, repeat => 1};
    my ($res, $row, $msg) = attempt('credit_repeat', 'credit', $args, @$args{qw(account amount ref)});
    return if $res eq 'lost';
    return unexpected_error('credit_repeat', $args, $row, $msg) if $res eq 'error';
    ack('credit_repeat', $args);
}

sub op_order {
    my $pair = pick(@pairs);
    my $k = $n + 1;
    my $args = {account => $pair->[0], individual => $pair->[1],
                name => "crash c$client o$round.$k", type => rand() < 0.85 ? 'virtual' : 'physical',
                key => "k$round.$client.$k"};
    my ($res, $row, $msg) = attempt('order', 'order', $args,
                                    @$args{qw(individual account name type key)});
    return if $res eq 'lost';
    return unexpected_error('order', $args, $row, $msg) if $res eq 'error';
    fail('order', {%$args, got => $row}) if $row->{status} ne 'not_activated';
    $card{$row->{id}} = {status => 'not_activated', type => $args->{type}, chain => $row->{id},
                         pan => "new:$row->{id}", reason => undef, repl => {}};
    push @mine, $row->{id};
    ack('order', {%$args, id => $row->{id}});
    push @orders, [$args, $row->{id}];
}

sub op_order_repeat {
    return op_order() unless @orders;
    my ($first, $id) = @{pick(@orders)};
    my $args = {%$first, repeat_of => $id};
    my ($res, $row, $msg) = attempt('order_repeat', 'order', $args,
                                    @$args{qw(individual account name type key)});
    return if $res eq 'lost';
    return unexpected_error('order_repeat', $args, $row, $msg) if $res eq 'error';
    return fail('order_repeat', {%$args, got => $row}) if $row->{id} ne $id;
    ack('order_repeat', {%$args, id => $id});
}

# A lifecycle move the model allows: activate (virtual), freeze, unfreeze, block.
sub op_status {
    my @live = grep { live($card{$_}{status}) } @mine;
    return op_order() unless @live;
    my ($id, $to);
    for (1 .. 8) {
        $id = pick(@live);
        my ($s, $t) = ($card{$id}{status}, $card{$id}{type});
        my @moves = $s eq 'not_activated' ? ($t eq 'virtual' ? (('active') x 30) : ())
                  : $s eq 'active' ? (('frozen') x 20)
                  : (('active') x 20);
        push @moves, 'blocked';
        $to = pick(@moves);
        last if $to ne 'blocked' || rand() < 0.3;
    }
    my $from = $card{$id}{status};
    my $args = {card => $id, from => $from, to => $to};
    my ($res, $row, $msg) = attempt('status', 'status', $args, $id, $to, 'crash test');
    return if $res eq 'lost';
    return unexpected_error('status', $args, $row, $msg) if $res eq 'error';
    $card{$id}{status} = $to;
    # An activated reissue ends every other live card with its PAN.
    if ($from eq 'not_activated' && $to eq 'active' && ($card{$id}{reason} // '') =~ /^(damaged|expired)$/) {
        for my $other (same_pan($id)) {
            $card{$other}{status} = 'blocked' if live($card{$other}{status});
        }
    }
    return fail('status', {%$args, got => $row}) if $row->{status} ne $to;
    ack('status', {%$args, status => $row->{status}});
}

# Freeze or unfreeze a card that every client uses: never refused (a
# freeze of a frozen card and an unfreeze of an active one are no-ops).
sub op_shared_status {
    return op_status() unless %shared;
    my $id = pick(keys %shared);
    my $to = pick(qw(active frozen));
    my $args = {card => $id, to => $to, shared => 1};
    my ($res, $row, $msg) = attempt('shared_status', 'status', $args, $id, $to, 'crash test');
    return if $res eq 'lost';
    return unexpected_error('shared_status', $args, $row, $msg) if $res eq 'error';
    return fail('shared_status', {%$args, got => $row}) if $row->{status} ne $to;
    ack('shared_status', {%$args, status => $row->{status}});
}

# A move the lifecycle forbids: refused with 55000, and nothing changes.
sub op_refuse {
    my @cands;
    for my $id (@mine) {
        my ($s, $t) = ($card{$id}{status}, $card{$id}{type});
        push @cands, [$id, 'active'] if !live($s);
        push @cands, [$id, 'frozen'] if $s eq 'not_activated' || !live($s);
        push @cands, [$id, 'active'] if $s eq 'not_activated' && $t eq 'physical';
    }
    return op_status() unless @cands;
    my ($id, $to) = @{pick(@cands)};
    my $args = {card => $id, from => $card{$id}{status}, to => $to, refusal => 1};
    my ($res, $row, $msg) = attempt('refuse', 'status', $args, $id, $to, 'crash test');
    return if $res eq 'lost';
    return fail('refuse', {%$args, got => $row}) if $res eq 'ok';
    return unexpected_error('refuse', $args, $row, $msg) if $row ne '55000';
    ack('refuse', {%$args, state => $row});
}

sub op_replace {
    my @live = grep { live($card{$_}{status}) } @mine;
    my $id = (@live && rand() < 0.85) ? pick(@live) : pick(@mine);
    my $c = $card{$id};
    my $reason = pick(qw(lost lost stolen damaged damaged damaged expired));
    my $same_pan = $reason eq 'damaged' || $reason eq 'expired';
    my $repeat = $c->{repl}{$reason};
    my $ok = 1;
    if (!defined $repeat) {
        for my $earlier (keys %{$c->{repl}}) {
            $ok = 0 if $same_pan || $earlier eq 'lost' || $earlier eq 'stolen';
        }
        my $s = $c->{status};
        $ok = 0 unless $reason eq 'lost' || $reason eq 'stolen' ? (live($s) || $s eq 'lost' || $s eq 'stolen')
                     : $reason eq 'damaged' ? live($s) : (live($s) || $s eq 'expired');
    }
    my $args = {card => $id, reason => $reason, status => $c->{status},
                expect => defined $repeat ? "repeat" : $ok ? "new" : "refused"};
    $args->{repeat_of} = $repeat if defined $repeat;
    my ($res, $row, $msg) = attempt('replace', 'replace', $args, $id, $reason);
    return if $res eq 'lost';
    if ($res eq 'error') {
        return ack('replace', {%$args, state => $row}) if !$ok && $row eq '55000';
        return unexpected_error('replace', $args, $row, $msg);
    }
    return fail('replace', {%$args, got => $row}) if !$ok;
    if (defined $repeat) {
        return fail('replace', {%$args, got => $row}) if $row->{id} ne $repeat;
        return ack('replace', {%$args, id => $repeat});
    }
    my $new = $row->{id};
    $card{$new} = {status => 'not_activated', type => $c->{type}, chain => $c->{chain},
                   pan => $same_pan ? $c->{pan} : "new:$new", reason => $reason, repl => {}};
    push @mine, $new;
    $c->{repl}{$reason} = $new;
    if (!$same_pan && live($c->{status})) {
        $c->{status} = $reason;
        for my $other (same_pan($id)) {
            $card{$other}{status} = 'blocked' if live($card{$other}{status});
        }
    }
    return fail('replace', {%$args, got => $row}) if $row->{status} ne 'not_activated';
    ack('replace', {%$args, id => $new});
}

my @mix = ((\&op_authorize) x 36, (\&op_authorize_repeat) x 2, (\&op_capture) x 12,
           (\&op_reverse) x 4, (\&op_credit) x 9, (\&op_credit_repeat) x 1, (\&op_order) x 6,
           (\&op_order_repeat) x 1, (\&op_status) x 18, (\&op_refuse) x 2, (\&op_replace) x 5, (\&op_shared_status) x 4);

sub end_state {
    # Cards the op in flight may have changed: its card's chain.
    my %uncertain;
    if (%inflight && defined $inflight{args}{card} && $inflight{op} =~ /^(status|replace)$/) {
        my $chain = $card{$inflight{args}{card}}{chain};
        $uncertain{$_} = 1 for grep { $card{$_}{chain} eq $chain } @mine;
    }
    logline('S', $n, 'card', {card => $_, status => $card{$_}{status}, uncertain => $uncertain{$_} ? 1 : 0})
        for @mine;
    my %maybe;
    $maybe{$inflight{args}{id}} = 1 if %inflight && $inflight{op} =~ /^(capture|reverse)$/;
    logline('H', $n, 'hold', {id => $_, held => $pending{$_}, uncertain => $maybe{$_} ? 1 : 0})
        for sort keys %pending;
}

sub run_load {
    load_state();
    die "client $client has no cards\n" unless @mine;
    if ($ready) { open(my $fh, '>', $ready) or die; close $fh; }
    my $deadline = time() + $seconds;
    while (!$lost && time() < $deadline) {
        pick(@mix)->();
    }
    if ($lost) {
        logline('X', $inflight{id} // 0, $inflight{op} // '', $inflight{args} // {});
    }
    end_state();
    my $acked = 0;
    $acked += $_ for values %count;
    printf "client %d: %d acknowledged, %d failures%s\n", $client, $acked, $failures,
        $lost ? ", connection lost" : "";
    exit($failures ? 1 : 0);
}

# --- retry after the restart ---------------------------------------------------

sub run_retry {
    open(my $fh, '<', $log) or die "$log: $!\n";
    my (%p, %done, @acked, $x);
    while (my $line = <$fh>) {
        chomp $line;
        my ($kind, undef, undef, $id, $op, $data) = split /\t/, $line, 6;
        $data = $json->decode($data);
        if ($kind eq 'P') { $p{$id} = [$op, $data]; }
        elsif ($kind eq 'A') {
            $done{$id} = 1;
            push @acked, [$op, $data] if $op =~ /^(order|authorize|credit)$/
                                         || ($op eq 'replace' && defined $data->{id});
        }
        elsif ($kind eq 'F') { $done{$id} = 1; }
        elsif ($kind eq 'X') { $x = $id; }
    }
    close $fh;
    my @todo;
    if ($x && $p{$x} && !$done{$x}) {
        my ($op, $args) = @{$p{$x}};
        (my $base = $op) =~ s/_repeat$//;
        push @todo, ['inflight', $base, $args, $args->{repeat_of}]
            if $base =~ /^(order|authorize|credit)$/ || ($base eq 'replace' && $args->{expect} ne 'refused');
    }
    for (1 .. 12) {
        last unless @acked;
        my ($op, $data) = @{splice(@acked, int(rand(@acked)), 1)};
        push @todo, ['acked', $op, $data, $data->{id}];
    }
    my $retried = 0;
    for my $t (@todo) {
        my ($why, $op, $args, $want) = @$t;
        $n++;
        my @bind = $op eq 'order' ? @$args{qw(individual account name type key)}
                 : $op eq 'credit' ? @$args{qw(account amount ref)}
                 : $op eq 'replace' ? @$args{qw(card reason)}
                 : do {
                     my ($r) = call('token', $args->{card});
                     die "token: " . $dbh->errstr . "\n" unless $r;
                     ($r->[0]{token}, $args->{amount}, @$args{qw(mcc country channel ext)});
                 };
        my ($rows, $state, $msg) = call($op, @bind);
        if (!$rows) {
            fail($op, {%$args, retry => $why, error => $state, message => $msg});
            next;
        }
        my $row = $rows->[0];
        my $got = $row->{id} // $row->{authorization_id};
        if (defined $want && (!defined $got || $got ne $want)) {
            fail($op, {%$args, retry => $why, got => $row});
            next;
        }
        $retried++;
        logline('R', $n, $op, {%$args, retry => $why, id => $got, (approved => $row->{approved}) x defined $row->{approved}});
    }
    printf "client %d: retried %d call(s) after the restart (%s), %d failures\n", $client,
        $retried, join(', ', map { "$_->[0] $_->[1]" } grep { $_->[0] eq 'inflight' } @todo) || 'nothing in flight',
        $failures;
    exit($failures ? 1 : 0);
}

$retry ? run_retry() : run_load();
