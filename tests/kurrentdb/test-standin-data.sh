#!/bin/bash
# The KurrentDB stand-in's --data FILE (tests/kurrentdb/standin-data.js, with the official Node
# client): the log survives a kill -9 and a restart with the same revisions, ids and $all
# positions, as the real server keeps its database; the chaos test restarts it so.  Prints TAP.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=tests/kurrentdb/standin.sh
. "$top_srcdir/tests/kurrentdb/standin.sh"

pv_kdb_need
dir=$(pv_kdb_dir) || { echo "Bail out! npm ci of the KurrentDB stand-in failed"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/pv-kdb-data.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
cd "$dir" && timeout 180 node "$pv_kdb_src/standin-data.js" "$work"
