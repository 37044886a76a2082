#!/bin/bash
# The postgres backend's own promises (reconnect, lock timeout, storage),
# in a fresh migrated database (fresh-db.sh); prints TAP.
set -u
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/conformance/fresh-db.sh"
"$builddir/tests/conformance/test-pg-backend"
