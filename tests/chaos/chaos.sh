#!/bin/bash
# The chaos test: the whole stack on private servers, a fixed rate of realistic commands and
# seeded random faults, then the checks (tests/chaos/chaos.py says which).  TAP on stdout.
#
#   tests/chaos/chaos.sh [--backend postgres|esdb|kurrentdb] [--duration SECONDS]
#                        [--rate REQ_PER_S] [--seed N] [--min-faults N] [--kinds K1,K2,...]
#                        [--keep]
#
# This script owns the servers (tests/servers/servers.sh: PostgreSQL, RabbitMQ, the Cosmos DB
# stand-in, private to this run, since the faults stop them) and serves chaos.py's requests to
# stop, kill and start them over two FIFOs; chaos.py runs everything else (the EventStoreDB
# stand-in, lighttpd, two photovote.fcgi, two appenders, the projector), the load and the
# checks.  Every process either side signals is one it started, by its PID.  With kurrentdb it
# also installs the KurrentDB stand-in's Node packages (tests/kurrentdb/standin.sh) for chaos.py.
#
# In `make check` (tests/chaos/chaos-postgres.sh, chaos-esdb.sh, chaos-kurrentdb.sh) the run is
# short (PV_CHAOS_DURATION seconds, default 90, at PV_CHAOS_RATE writes/s, default 20); under
# the sanitizer build 60 s at 10 writes/s.
# The long run: tests/chaos/chaos-long.sh (docs/chaos.md).
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/_build}"
export top_srcdir top_builddir

for prog in fcgi/photovote.fcgi fcgi/photovote-token workers/photovote-appender \
	workers/photovote-projector admin/photovote-admin tests/projector/pv-projector-tool \
	tests/appender/pv-appender-tool; do
	if [[ ! -x $top_builddir/$prog ]]; then
		echo "1..0 # SKIP $prog is not built"
		exit 77
	fi
done
if ! command -v lighttpd >/dev/null 2>&1 && [[ ! -x /usr/sbin/lighttpd ]]; then
	echo "1..0 # SKIP lighttpd is not installed"
	exit 77
fi

backend=postgres
prev=
for arg in "$@"; do
	[[ $prev == --backend ]] && backend=$arg
	[[ $arg == --backend=* ]] && backend=${arg#--backend=}
	prev=$arg
done
if [[ $backend == kurrentdb ]]; then
	if ! command -v node >/dev/null 2>&1; then
		echo "1..0 # SKIP node is needed for the KurrentDB stand-in"
		exit 77
	fi
	# shellcheck source=../kurrentdb/standin.sh
	. "$top_srcdir/tests/kurrentdb/standin.sh"
	PV_KDB_DIR=$(pv_kdb_dir) || { echo "Bail out! npm ci of the KurrentDB stand-in failed"; exit 1; }
	export PV_KDB_DIR
fi

# shellcheck source=../servers/servers.sh
. "$top_srcdir/tests/servers/servers.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/pv-chaos.XXXXXX")
keep=0
for arg in "$@"; do [[ $arg == --keep ]] && keep=1; done
pv_on_exit '[[ $keep == 1 || $status != 0 ]] && echo "# work folder kept: $work" || rm -rf "$work"'
status=1

if ! pv_servers_need_private postgres rabbitmq cosmos >"$work/servers.log" 2>&1; then
	echo "1..0 # SKIP the servers did not start ($(tail -n 1 "$work/servers.log"))"
	status=0
	exit 77
fi

# The event-store stand-in (esdb, kurrentdb) comes back on the port it started on, as a server
# keeps its address: one below the ephemeral range, which no outgoing connection can take while
# the stand-in is down.
if ! PV_CHAOS_STORE_PORT=$(pv_free_port); then
	echo "Bail out! no free port for the event-store stand-in"
	exit 1
fi
export PV_CHAOS_STORE_PORT

# ctl VERB SERVER: one request of chaos.py.  Prints the leading pid afterwards (or -).
ctl()
{
	local verb=$1 name=$2 d pid home p
	case $verb:$name in
	stop:postgres | stop:rabbitmq | stop:cosmos) pv_server_stop "$name" ;;
	start:postgres | start:rabbitmq | start:cosmos) pv_server_start "$name" ;;
	immediate:postgres)
		# The server's crash path: no checkpoint, recovery from the WAL at the next start.
		d=$(pv_server_dir postgres)
		(cd "$d" && _pv_pg_as "$PV_TEST_PG_BINDIR/pg_ctl" -D "$d/data" -m immediate -w \
			-t 30 stop) && pv_server_stop postgres
		;;
	kill:rabbitmq)
		# kill -9 of the node: the leading script's group and the Erlang VM, which names our
		# private HOME on its command line.
		pid=$(pv_server_pid rabbitmq)
		home=$(pv_server_dir rabbitmq)/home
		kill -KILL -- "-$pid" 2>/dev/null
		for p in $(pgrep -f -- "-home $home "); do
			kill -KILL "$p" 2>/dev/null
		done
		pv_server_stop rabbitmq
		;;
	*) echo "chaos: unknown request $verb $name" >&2; return 2 ;;
	esac
}

# The short run's length and rate; options given win (the last occurrence counts).
defaults=(--duration "${PV_CHAOS_DURATION:-90}" --rate "${PV_CHAOS_RATE:-20}")
if grep -q '^PV_CFLAGS = .*-fsanitize' "$top_builddir/Makefile" 2>/dev/null; then
	# ASan and UBSan make every program several times slower; two CPUs are shared with the
	# rest of the suite.  A shorter run at half the rate still injects every kind of fault.
	defaults=(--duration "${PV_CHAOS_DURATION:-60}" --rate "${PV_CHAOS_RATE:-10}")
	echo "# sanitizer build: ${defaults[*]} (the plain build runs the full short run)"
fi

mkfifo "$work/ctl.req" "$work/ctl.ack" || exit 1
python3 "$top_srcdir/tests/chaos/chaos.py" --work "$work" "${defaults[@]}" "$@" &
driver=$!
pv_on_exit 'kill -TERM $driver 2>/dev/null; wait $driver 2>/dev/null'
# Read-write opens do not block, whether or not the driver opened its ends yet.
exec 3<>"$work/ctl.req" 4<>"$work/ctl.ack"
line=
while kill -0 "$driver" 2>/dev/null; do
	# A read that times out keeps what it read of a line in part (on a busy machine the
	# second can run out in the middle of one): add it up until the newline comes.
	if ! IFS= read -r -t 1 part <&3; then
		line+=$part
		continue
	fi
	read -r verb name <<<"$line$part"
	line=
	{
		echo "==== $(date -u +%T.%N) $verb $name"
		ctl "$verb" "$name"
	} >>"$work/servers.log" 2>&1
	rc=$?
	echo "$rc" >&4
done
wait "$driver"
status=$?
exit $status
