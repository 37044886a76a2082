# shellcheck shell=bash
# What the worker tests share (tests/appender/lib.sh, tests/projector/lib.sh):
# TAP results, SQL against the test's database, a database of its own, the
# EventStoreDB stand-in, and the clean-up at exit.  Each lib.sh keeps its own
# prefix (pva_, pvp_) for its functions; these are the common parts.

pv_tap_n=0
pv_tap_failed=0

# pv_tap_ok STATUS NAME: one TAP result, "ok" when STATUS is 0.
pv_tap_ok()
{
	pv_tap_n=$((pv_tap_n + 1))
	if [[ $1 == 0 ]]; then
		echo "ok $pv_tap_n - $2"
	else
		echo "not ok $pv_tap_n - $2"
		pv_tap_failed=1
	fi
}

# pv_tap_check NAME COMMAND...: ok when COMMAND succeeds.
pv_tap_check()
{
	local name=$1
	shift
	if "$@"; then pv_tap_ok 0 "$name"; else pv_tap_ok 1 "$name"; fi
}

# pv_tap_sql SQL: runs SQL in the test's database, rows on stdout.
pv_tap_sql()
{
	psql -XAtq -v ON_ERROR_STOP=1 "$PHOTOVOTE_POSTGRES_CONNINFO" -c "$1"
}

# pv_worker_database DB: creates the database DB on the test server and
# points PHOTOVOTE_POSTGRES_CONNINFO at it.
pv_worker_database()
{
	psql -XAtq -v ON_ERROR_STOP=1 "$PV_TEST_PG_CONNINFO" -c "CREATE DATABASE $1" || return 1
	export PHOTOVOTE_POSTGRES_CONNINFO="$PV_TEST_PG_CONNINFO dbname=$1"
}

# pv_worker_standin WORK: the EventStoreDB stand-in on a free port (its output
# in WORK), stopped at exit; exports PHOTOVOTE_EVENTSTORE_URL.
pv_worker_standin()
{
	local work=$1 port i
	python3 "$top_srcdir/tests/esdb-standin/esdb-standin.py" 0 >"$work/standin.out" \
		2>"$work/standin.err" &
	pv_on_exit "kill $! 2>/dev/null; wait $! 2>/dev/null"
	for ((i = 0; i < 100; i++)); do
		port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/standin.out" \
			"$work/standin.err" | head -n 1)
		[[ -n $port ]] && break
		sleep 0.1
	done
	[[ -n $port ]] || return 1
	export PHOTOVOTE_EVENTSTORE_URL=http://127.0.0.1:$port
}

# pv_worker_kurrentdb: the KurrentDB gRPC stand-in on a free port, stopped at exit; exports
# PHOTOVOTE_EVENTSTORE_URL (a kurrentdb:// connection string).  With PV_KDB_STANDIN_STATS set,
# the stand-in writes the calls it answered there (benchmarks).  With PV_KDB_TLS=yes it is a
# secure one (--tls, a CA made for the run) and the string carries the admin user and the CA.
pv_worker_kurrentdb()
{
	local certs= tls=()
	# shellcheck source=../kurrentdb/standin.sh
	. "$top_srcdir/tests/kurrentdb/standin.sh"
	if [[ ${PV_KDB_TLS:-no} == yes ]]; then
		# shellcheck source=certs.sh
		. "$top_srcdir/tests/lib/certs.sh"
		certs=$(mktemp -d "${TMPDIR:-/tmp}/pv-kdb-certs.XXXXXX") || return 1
		pv_on_exit "rm -rf $certs"
		pv_test_certs "$certs" || return 1
		tls=(--tls "$certs/server.pem" "$certs/server.key")
	fi
	pv_kdb_start ${PV_KDB_STANDIN_STATS:+--stats "$PV_KDB_STANDIN_STATS"} "${tls[@]}" || return 1
	pv_on_exit "kill $pv_kdb_pid 2>/dev/null; wait $pv_kdb_pid 2>/dev/null; rm -f $pv_kdb_out"
	if [[ -n $certs ]]; then
		export PHOTOVOTE_EVENTSTORE_URL="kurrentdb://admin:changeit@127.0.0.1:$pv_kdb_port?tlsCAFile=$certs/ca.pem"
	else
		export PHOTOVOTE_EVENTSTORE_URL="kurrentdb://127.0.0.1:$pv_kdb_port?tls=false"
	fi
}

# pv_worker_teardown DB WORK LOG: at exit, after the worker was stopped: the
# tail of WORK/LOG when a check failed, then the database and WORK go.
pv_worker_teardown()
{
	if [[ $pv_tap_failed != 0 && -f $2/$3 ]]; then
		echo "# --- $3 ($2) ---"
		tail -n 40 "$2/$3" | sed 's/^/# /'
	fi
	[[ -n ${PV_TEST_PG_CONNINFO:-} ]] &&
		psql -XAtq "$PV_TEST_PG_CONNINFO" -c "DROP DATABASE IF EXISTS $1" >/dev/null 2>&1
	rm -rf "$2"
}
