#!/bin/sh
# The shared event-store conformance suite on the esdb backend, against the
# EventStoreDB stand-in (tests/esdb-standin/esdb-standin.py) on a free port
# of 127.0.0.1.  Extra arguments go to the stand-in (e.g.
# --header-generation es).  Prints the suite's TAP.
set -u
srcdir=${top_srcdir:-$(dirname "$0")/../..}
builddir=${top_builddir:-.}
prog=$builddir/tests/conformance/test-eventstore

if [ ! -x "$prog" ]; then
	echo "1..0 # SKIP $prog is not built"
	exit 0
fi
if ! command -v python3 >/dev/null 2>&1; then
	echo "1..0 # SKIP python3 is needed for the EventStoreDB stand-in"
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pv-esdb.XXXXXX") || exit 1
pid=
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

python3 "$srcdir/tests/esdb-standin/esdb-standin.py" "$@" 0 >"$tmp/out" 2>"$tmp/err" &
pid=$!
port=
for _ in $(seq 1 100); do
	port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$tmp/out")
	[ -n "$port" ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$port" ]; then
	echo "Bail out! the EventStoreDB stand-in did not start: $(cat "$tmp/err")"
	exit 1
fi

PV_TEST_ES_BACKEND=esdb
PV_TEST_ES_URL=http://127.0.0.1:$port
PV_TEST_ES_USER="admin"
PV_TEST_ES_PASSWORD=changeit
PV_TEST_ES_CA=
export PV_TEST_ES_BACKEND PV_TEST_ES_URL PV_TEST_ES_USER PV_TEST_ES_PASSWORD PV_TEST_ES_CA

"$prog"
