#!/bin/bash
# The kurrentdb backend's own cases (tests/kurrentdb/test-kurrentdb-client.c) against three
# KurrentDB gRPC stand-ins on 127.0.0.1: a leader, a follower that names it, and one that holds
# each append 2 s (deadlines); and a port nothing listens on.  Prints TAP.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
prog=${top_builddir:-.}/tests/kurrentdb/test-kurrentdb-client
# shellcheck source=tests/kurrentdb/standin.sh
. "$top_srcdir/tests/kurrentdb/standin.sh"

pv_kdb_need "$prog"
pids=()
outs=()
cleanup()
{
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	rm -f "${outs[@]}"
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
start
leader=$pv_kdb_port
start --follower "127.0.0.1:$leader"
follower=$pv_kdb_port
start --append-delay-ms 2000
slow=$pv_kdb_port
dead=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

PV_TEST_KDB_LEADER="kurrentdb://127.0.0.1:$leader?tls=false" \
	PV_TEST_KDB_FOLLOWER="kurrentdb://127.0.0.1:$follower?tls=false" \
	PV_TEST_KDB_SLOW="kurrentdb://127.0.0.1:$slow?tls=false" \
	PV_TEST_KDB_DEAD="kurrentdb://127.0.0.1:$dead?tls=false" \
	"$prog"
