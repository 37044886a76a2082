#!/bin/bash
# The KurrentDB stand-in kept honest by the official Node client
# (@kurrent/kurrentdb-client, pinned in tests/kurrentdb/package-lock.json):
# appends with each kind of expected revision, wrong-version details, reads
# forwards and backwards, delete and tombstone, $all filtered reads and a
# filtered $all subscription; and discovery through gossip (kurrentdb+discover://) from a
# second stand-in, a follower whose gossip names the first as its leader.  Prints TAP.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=tests/kurrentdb/standin.sh
. "$top_srcdir/tests/kurrentdb/standin.sh"

pv_kdb_need
seed_pid=
trap 'pv_kdb_stop; [[ -n $seed_pid ]] && kill "$seed_pid" 2>/dev/null && wait "$seed_pid"; rm -f "$seed_out"' EXIT
dead=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pv_kdb_start || { echo "Bail out! the KurrentDB stand-in did not start"; exit 1; }
leader=$pv_kdb_port
leader_pid=$pv_kdb_pid leader_out=$pv_kdb_out
# The seed: its "not leader" answers name a port nothing listens on.
pv_kdb_start --follower "127.0.0.1:$dead" --gossip-member "127.0.0.1:$leader:Leader" ||
	{ echo "Bail out! the KurrentDB stand-in did not start"; exit 1; }
seed=$pv_kdb_port seed_pid=$pv_kdb_pid seed_out=$pv_kdb_out
pv_kdb_pid=$leader_pid pv_kdb_out=$leader_out
dir=$(pv_kdb_dir) || exit 1
cd "$dir" && PV_KDB_DISCOVER="kurrentdb+discover://127.0.0.1:$seed?tls=false" \
	timeout 120 node "$pv_kdb_src/official-client.js" "kurrentdb://127.0.0.1:$leader?tls=false"
