#!/bin/bash
# The event store conformance suite on the postgres backend, in a fresh
# migrated database (fresh-db.sh); prints the suite's TAP.
set -u
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/conformance/fresh-db.sh"
PV_TEST_ES_BACKEND=postgres "$builddir/tests/conformance/test-eventstore"
