#!/bin/bash
# The shared event-store conformance suite on the kurrentdb backend (gRPC),
# against the KurrentDB stand-in (tests/kurrentdb/kurrentdb-standin.js) on a
# free port of 127.0.0.1.  Prints the suite's TAP.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${top_builddir:-.}
prog=$builddir/tests/conformance/test-eventstore
# shellcheck source=tests/kurrentdb/standin.sh
. "$top_srcdir/tests/kurrentdb/standin.sh"

pv_kdb_need "$prog"
trap pv_kdb_stop EXIT
trap 'exit 1' INT TERM HUP
pv_kdb_start || { echo "Bail out! the KurrentDB stand-in did not start"; exit 1; }

PV_TEST_ES_BACKEND=kurrentdb
PV_TEST_ES_URL="kurrentdb://127.0.0.1:$pv_kdb_port?tls=false"
PV_TEST_ES_USER=admin
PV_TEST_ES_PASSWORD=changeit
PV_TEST_ES_CA=
export PV_TEST_ES_BACKEND PV_TEST_ES_URL PV_TEST_ES_USER PV_TEST_ES_PASSWORD PV_TEST_ES_CA

"$prog"
