#!/bin/bash
# The secure KurrentDB stand-in (--tls: HTTP/2 over TLS by ALPN, a certificate from a CA made
# for this run, users with passwords) kept honest by the official Node client: every case of
# official-client.js over TLS with the admin user's credentials, then a wrong password and no
# credentials refused as its documentation says.  Prints TAP.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=tests/kurrentdb/standin.sh
. "$top_srcdir/tests/kurrentdb/standin.sh"
# shellcheck source=tests/lib/certs.sh
. "$top_srcdir/tests/lib/certs.sh"

pv_kdb_need
certs=$(mktemp -d "${TMPDIR:-/tmp}/pv-kdb-certs.XXXXXX") || exit 1
trap 'pv_kdb_stop; rm -rf "$certs"' EXIT
pv_test_certs "$certs" || { echo "Bail out! openssl: $(tail -n 3 "$certs/openssl.log")"; exit 1; }
pv_kdb_start --tls "$certs/server.pem" "$certs/server.key" ||
	{ echo "Bail out! the KurrentDB stand-in did not start"; exit 1; }
dir=$(pv_kdb_dir) || exit 1
at="127.0.0.1:$pv_kdb_port?tlsCAFile=$certs/ca.pem"
cd "$dir" && timeout 120 node "$pv_kdb_src/official-client.js" "kurrentdb://admin:changeit@$at" \
	"kurrentdb://admin:wrong@$at" "kurrentdb://$at"
