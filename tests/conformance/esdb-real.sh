#!/bin/sh
# The shared event-store conformance suite on the esdb backend against a
# real EventStoreDB/KurrentDB (AtomPub enabled, projections running, e.g.
# started with --dev or --run-projections=all --start-standard-projections
# --enable-atom-pub-over-http).  Set:
#   PHOTOVOTE_TEST_ESDB_URL       e.g. https://127.0.0.1:2113
#   PHOTOVOTE_TEST_ESDB_USER      default admin
#   PHOTOVOTE_TEST_ESDB_PASSWORD  default changeit
#   PHOTOVOTE_TEST_ESDB_CA        CA bundle for TLS (optional)
# Without the URL the test is skipped: EventStoreDB is not packaged for
# Debian and cannot be installed on the build machines.
set -u
if [ -z "${PHOTOVOTE_TEST_ESDB_URL:-}" ]; then
	echo "1..0 # SKIP PHOTOVOTE_TEST_ESDB_URL not set (no real EventStoreDB)"
	exit 0
fi
builddir=${top_builddir:-.}
prog=$builddir/tests/conformance/test-eventstore
if [ ! -x "$prog" ]; then
	echo "1..0 # SKIP $prog is not built"
	exit 0
fi

PV_TEST_ES_BACKEND=esdb
PV_TEST_ES_URL=$PHOTOVOTE_TEST_ESDB_URL
PV_TEST_ES_USER=${PHOTOVOTE_TEST_ESDB_USER:-admin}
PV_TEST_ES_PASSWORD=${PHOTOVOTE_TEST_ESDB_PASSWORD:-changeit}
PV_TEST_ES_CA=${PHOTOVOTE_TEST_ESDB_CA:-}
export PV_TEST_ES_BACKEND PV_TEST_ES_URL PV_TEST_ES_USER PV_TEST_ES_PASSWORD PV_TEST_ES_CA
exec "$prog"
