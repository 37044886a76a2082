#!/bin/bash
# ./run-local on KurrentDB, as docs/configuration.md tells an operator to run it: the event store
# a KurrentDB gRPC stand-in (tests/kurrentdb), reached through gossip
# (PHOTOVOTE_ESDB_URL=kurrentdb+discover://127.0.0.1:PORT?tls=false).  run-local --demo-and-exit
# prints the demo election's results, says which event store it used, leaves nothing running,
# and the demo's events are in the stand-in, read back with the official client
# (dump-streams.js), not with the backend under test.  Bounded: 300 s.
# shellcheck disable=SC2317  # functions run by check/trap
set -u
: "${top_srcdir:?run from make check or set top_srcdir}" "${top_builddir:?}"

. "$top_srcdir/tests/lib/tap.sh"
# jqe FILTER [ARGS...]: jq -e, quietly.
jqe()
{
	jq -e "$@" >/dev/null
}
for cmd in lighttpd curl jq psql node flock setsid; do
	command -v "$cmd" >/dev/null 2>&1 || { echo "1..0 # SKIP $cmd missing"; exit 0; }
done
[[ -x $top_builddir/workers/photovote-projector ]] ||
	{ echo "1..0 # SKIP photovote-projector not built"; exit 0; }
# One run-local test at a time: run-local's RabbitMQ has fixed distribution ports, and two
# run-locals starting at once race for the same free ones.  flock -o: run-local's servers
# do not inherit the lock.
if [[ -z ${PV_RUN_LOCAL_LOCKED:-} ]]; then
	PV_RUN_LOCAL_LOCKED=1 exec flock -o -w 1200 "${TMPDIR:-/tmp}/pv-run-local-tests.lock" \
		bash "$0" "$@"
fi
# shellcheck source=tests/kurrentdb/standin.sh
. "$top_srcdir/tests/kurrentdb/standin.sh"

var=$(mktemp -d "${TMPDIR:-/tmp}/pv-run-local-kdb.XXXXXX") || exit 1
chmod 755 "$var"
out=$var.out
cleanup()
{
	if ((_failed)); then
		echo "# --- run-local output (last lines) ---"
		tail -n 60 "$out" 2>/dev/null | sed 's/^/# /'
	fi
	pv_kdb_stop
	# Whatever a failed run left: its processes name the folder.
	pkill -KILL -f -- "$var/" 2>/dev/null
	rm -rf "$var" "$out"
}
trap cleanup EXIT
pv_kdb_start || { echo "Bail out! the KurrentDB stand-in did not start"; exit 1; }
dir=$(pv_kdb_dir) || { echo "Bail out! npm ci of the stand-in failed"; exit 1; }
builddir=$(cd "$top_builddir" && pwd)
export PHOTOVOTE_LOCAL_VAR=$var PHOTOVOTE_LOCAL_BUILDDIR=$builddir
export PHOTOVOTE_LOCAL_HTTP_PORT=18090
export PHOTOVOTE_ESDB_URL="kurrentdb+discover://127.0.0.1:$pv_kdb_port?tls=false"
unset PHOTOVOTE_LOCAL_EXIT

echo "1..6"
timeout 300 "$top_srcdir/run-local" --demo-and-exit --no-install --no-build >"$out" 2>&1
rc=$?
check "run-local --demo-and-exit on KurrentDB exits 0 (got $rc)" test "$rc" = 0
check "it names the event store it used" \
	grep -Eq "event store +kurrentdb at kurrentdb\+discover://127\.0\.0\.1:$pv_kdb_port" "$out"
check "the backend found its node through gossip" \
	grep -q "gossip from 127.0.0.1:$pv_kdb_port: 1 member(s); using 127.0.0.1:$pv_kdb_port" "$out"
check "the output prints the results" \
	grep -q '1\. Northern lights: mean 5 over 2 ratings (sum 10)' "$out"
election=$(jq -r .election_id "$var/demo-results.json" 2>/dev/null)
dump=$( (cd "$dir" && node "$pv_kdb_src/dump-streams.js" \
	"kurrentdb://127.0.0.1:$pv_kdb_port?tls=false" "Election-$election") 2>&1)
check "the demo election's events are in KurrentDB (read with the official client)" \
	jqe -s --arg s "Election-$election" 'length >= 10 and all(.stream == $s) and
		(map(.number | tonumber) == [range(0; length)]) and
		any(.type == "BallotCast") and any(.type == "ElectionClosed")' <<<"$dump" ||
	echo "# $(head -c 600 <<<"$dump")"
check "nothing is left running after --demo-and-exit" \
	eval '! pgrep -f -- "$var/" >/dev/null || { sleep 2; ! pgrep -f -- "$var/" >/dev/null; }'
exit $((_failed > 0))
