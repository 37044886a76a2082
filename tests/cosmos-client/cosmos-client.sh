#!/bin/bash
# The Cosmos DB client against the stand-in: over HTTP, over TLS with the
# run's CA, and through fault-proxy.py (429, 5xx, dropped connections,
# timeouts) in front of the HTTP stand-in.  Prints TAP (cmocka's).
set -u

srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${top_builddir:-.}
if [[ ! -f $srcdir/tests/servers/servers.sh ]]; then
	echo "1..0 # SKIP tests/servers/servers.sh is missing"
	exit 0
fi
# shellcheck source=tests/servers/servers.sh
. "$srcdir/tests/servers/servers.sh"
pv_servers_need cosmos cosmos-tls >&2 || { echo "Bail out! no Cosmos DB stand-in"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pv-cosmos-client.XXXXXX") || exit 1
pv_on_exit "rm -rf '$tmp'"
python3 "$srcdir/tests/cosmos-client/fault-proxy.py" "$PV_TEST_COSMOS_URL" "$tmp/port" \
	2>"$tmp/proxy.log" &
proxy_pid=$!
pv_on_exit "kill $proxy_pid 2>/dev/null; wait $proxy_pid 2>/dev/null"
for _ in $(seq 100); do
	[[ -s $tmp/port ]] && break
	kill -0 "$proxy_pid" 2>/dev/null || break
	sleep 0.05
done
if [[ ! -s $tmp/port ]]; then
	echo "Bail out! the fault proxy did not start"
	cat "$tmp/proxy.log" >&2
	exit 1
fi
PV_TEST_COSMOS_PROXY_URL=http://127.0.0.1:$(cat "$tmp/port")
export PV_TEST_COSMOS_PROXY_URL

"$builddir/tests/cosmos-client/cosmos-client-test"
rc=$?
if ((rc != 0)); then
	echo "# fault proxy log (last lines):"
	tail -n 20 "$tmp/proxy.log" | sed 's/^/# /'
fi
exit $rc
