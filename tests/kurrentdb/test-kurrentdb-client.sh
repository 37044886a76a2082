#!/bin/bash
# The kurrentdb backend's own cases (tests/kurrentdb/test-kurrentdb-client.c) against seven
# KurrentDB gRPC stand-ins on 127.0.0.1: a leader, one that offers no AppendSession (a
# server before 25.1), both with --stats, a follower that names it, one that holds
# each append 2 s (deadlines), a gossip seed and a node still catching up (+discover), and a
# secure one (TLS with a certificate from a CA made for the run, users with passwords); and
# a port nothing listens on.  Prints TAP.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
prog=${top_builddir:-.}/tests/kurrentdb/test-kurrentdb-client
# shellcheck source=tests/kurrentdb/standin.sh
. "$top_srcdir/tests/kurrentdb/standin.sh"
# shellcheck source=tests/lib/certs.sh
. "$top_srcdir/tests/lib/certs.sh"

pv_kdb_need "$prog"
pids=()
outs=()
certs=$(mktemp -d "${TMPDIR:-/tmp}/pv-kdb-certs.XXXXXX") || exit 1
cleanup()
{
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	rm -f "${outs[@]}"
	rm -rf "$certs"
}
trap cleanup EXIT
start()
{
	pv_kdb_pid=
	pv_kdb_out=
	pv_kdb_start "$@" || { echo "Bail out! the KurrentDB stand-in did not start"; exit 1; }
	pids+=("$pv_kdb_pid")
	outs+=("$pv_kdb_out")
}
stats=$(mktemp "${TMPDIR:-/tmp}/pv-kdb-stats.XXXXXX") || exit 1
old_stats=$(mktemp "${TMPDIR:-/tmp}/pv-kdb-stats.XXXXXX") || exit 1
outs+=("$stats" "$old_stats" "$stats.tmp" "$old_stats.tmp")
start --stats "$stats"
leader=$pv_kdb_port
start --no-sessions --stats "$old_stats"
old=$pv_kdb_port
start --follower "127.0.0.1:$leader"
follower=$pv_kdb_port
start --append-delay-ms 2000
slow=$pv_kdb_port
dead=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# A gossip seed: a follower whose own "not leader" answers name a dead node, and whose
# gossip names a dead leader first, then the live one.
start --follower "127.0.0.1:$dead" --gossip-member "127.0.0.1:$dead:Leader:dead" \
	--gossip-member "127.0.0.1:$leader:Leader"
seed=$pv_kdb_port
start --gossip-state CatchingUp
catching_up=$pv_kdb_port
pv_test_certs "$certs" || { echo "Bail out! openssl: $(tail -n 3 "$certs/openssl.log")"; exit 1; }
start --tls "$certs/server.pem" "$certs/server.key"
secure=$pv_kdb_port

PV_TEST_KDB_LEADER="kurrentdb://127.0.0.1:$leader?tls=false" \
	PV_TEST_KDB_FOLLOWER="kurrentdb://127.0.0.1:$follower?tls=false" \
	PV_TEST_KDB_SLOW="kurrentdb://127.0.0.1:$slow?tls=false" \
	PV_TEST_KDB_DEAD="kurrentdb://127.0.0.1:$dead?tls=false" \
	PV_TEST_KDB_DISCOVER="kurrentdb+discover://127.0.0.1:$dead,127.0.0.1:$seed?tls=false" \
	PV_TEST_KDB_NO_NODE="kurrentdb+discover://127.0.0.1:$catching_up?tls=false" \
	PV_TEST_KDB_TLS="127.0.0.1:$secure" PV_TEST_KDB_TLS_CA="$certs/ca.pem" \
	PV_TEST_KDB_STATS="$stats" PV_TEST_KDB_OLD="kurrentdb://127.0.0.1:$old?tls=false" \
	PV_TEST_KDB_OLD_STATS="$old_stats" \
	"$prog"
