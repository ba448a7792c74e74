#!/usr/bin/perl
# verify-request: a requester for verify-daemon.  Sends each LINE as one
# request, in one write, and prints the replies as they come, until every
# request has its reply or the daemon closes the connection; with --hang-up
# it closes at once instead, leaving its requests outstanding (the daemon
# cancels them).
#   verify-request [--hang-up] SOCKET LINE...
use strict;
use warnings;
use IO::Socket::UNIX;

my $hang_up = @ARGV && $ARGV[0] eq '--hang-up' ? shift : undef;
die "Usage: verify-request [--hang-up] SOCKET LINE...\n" unless @ARGV >= 2;
my ($path, @lines) = @ARGV;
my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $path)
        or die "verify-request: Failed to connect to $path: $!\n";
$SIG{PIPE} = 'IGNORE';  # a daemon that closed first may still have answered
print $s join('', map { "$_\n" } @lines);
exit 0 if $hang_up;
$SIG{ALRM} = sub { die "verify-request: no reply within 30 seconds\n" };
alarm 30;
$| = 1;
for (@lines) {
        my $reply = <$s>;
        last unless defined $reply;
        print $reply;
}
