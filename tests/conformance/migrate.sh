#!/bin/bash
# The migration runner against the run's PostgreSQL (or a private one):
# tests/conformance/test-migrate makes and drops its own databases.
set -u

srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${top_builddir:-.}
if [[ ! -f $srcdir/tests/servers/servers.sh ]]; then
	echo "1..0 # SKIP tests/servers/servers.sh is missing"
	exit 0
fi
# shellcheck source=../servers/servers.sh
. "$srcdir/tests/servers/servers.sh"
pv_servers_need postgres >&2 || { echo "Bail out! no PostgreSQL server"; exit 1; }

PV_TEST_SQLDIR=$srcdir/sql "$builddir/tests/conformance/test-migrate"
