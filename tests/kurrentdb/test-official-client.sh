#!/bin/bash
# The KurrentDB stand-in kept honest by the official Node client
# (@kurrent/kurrentdb-client, pinned in tests/kurrentdb/package-lock.json):
# appends with each kind of expected revision, wrong-version details, reads
# forwards and backwards, delete and tombstone, $all filtered reads and a
# filtered $all subscription.  Prints TAP.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=tests/kurrentdb/standin.sh
. "$top_srcdir/tests/kurrentdb/standin.sh"

pv_kdb_need
trap pv_kdb_stop EXIT
pv_kdb_start || { echo "Bail out! the KurrentDB stand-in did not start"; exit 1; }
dir=$(pv_kdb_dir) || exit 1
cd "$dir" && timeout 120 node "$pv_kdb_src/official-client.js" \
	"kurrentdb://127.0.0.1:$pv_kdb_port?tls=false"
