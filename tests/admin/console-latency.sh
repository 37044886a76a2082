#!/bin/bash
# How fast photovote-admin's console answers keys, measured on a pseudo-terminal
# (tests/admin/console-keys.py: from the key's write to the screen's answer): with every
# server up, then with a Cosmos DB of its own paused (SIGSTOP) while r waits on a rebuild.
# The target is 50 ms per key whatever the servers do; this prints the figures, it asserts
# nothing (the timed bound the suite checks is test-admin-console-paused.sh's 1 s).
#   cd _build && top_srcdir=.. top_builddir=. ../tests/admin/console-latency.sh [KEYS]
set -u
# shellcheck source=lib.sh
. "$top_srcdir/tests/admin/lib.sh"

keys=${1:-50}
adm_setup latency || exit 1
pv_servers_need_private cosmos || exit 1
export PHOTOVOTE_COSMOS_ENDPOINT=$PV_TEST_COSMOS_URL PHOTOVOTE_COSMOS_TIMEOUT_MS=120000
cosmos_pid=$(pv_server_pid cosmos)
pv_on_exit "kill -CONT $cosmos_pid 2>/dev/null"
echo '{"event_id":"00000000-0000-4000-8000-000000000011","type":"ElectionCreated","data":{"name":"Plain","election_id":"01BX5ZZKBKACTAV9WEVGEMMVRZ"},'"$adm_meta"'}' \
	>"$pvp_work/seed"
pvp_append "$pvp_work/seed" >/dev/null
echo "servers up:"
python3 "$top_srcdir/tests/admin/console-keys.py" "$adm" "$keys"
echo "Cosmos DB paused (SIGSTOP) while r waits on a rebuild:"
kill -STOP "$cosmos_pid"
python3 "$top_srcdir/tests/admin/console-keys.py" "$adm" "$keys" r
kill -CONT "$cosmos_pid"
