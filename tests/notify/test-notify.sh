#!/bin/bash
# Readiness (units of Type=notify): photovote.fcgi, photovote-appender and
# photovote-projector say READY=1 on $NOTIFY_SOCKET only once the
# connections they work with are up, and STOPPING=1 when SIGTERM stops
# them.  Each program runs twice: with the server it needs on a port where
# nothing listens (no READY=1 within WAIT_DOWN seconds, still running) and
# with the test's servers (READY=1).  notify-listen.py plays systemd.
: "${top_srcdir:?run from make check or set top_srcdir}"
: "${top_builddir:?run from make check or set top_builddir}"
set -u
# shellcheck source=tests/servers/servers.sh
. "$top_srcdir/tests/servers/servers.sh"
# shellcheck source=tests/lib/worker-tests.sh
. "$top_srcdir/tests/lib/worker-tests.sh"

WAIT_DOWN=3
WAIT_UP=60
B=$top_builddir
DB=pv_notify_$$
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pv-notify.XXXXXX") || exit 1
pv_on_exit "pv_worker_teardown $DB $WORK program.log"

if ! pv_servers_need postgres rabbitmq cosmos; then
	echo "1..0 # SKIP the test servers did not start"
	exit 0
fi
pv_worker_database "$DB" || {
	echo "Bail out! cannot create the database $DB"
	exit 1
}
export PHOTOVOTE_AMQP_HOST=127.0.0.1 PHOTOVOTE_AMQP_USER=guest PHOTOVOTE_AMQP_PASSWORD=guest
export PHOTOVOTE_AMQP_EXCHANGE=pvn.$$.events PHOTOVOTE_AMQP_QUEUE=pvn.$$.appender
export PHOTOVOTE_AMQP_DEAD_LETTER_EXCHANGE=pvn.$$.dead PHOTOVOTE_AMQP_DEAD_LETTER_QUEUE=pvn.$$.dead
export PHOTOVOTE_AMQP_CONNECT_TIMEOUT=1
export PHOTOVOTE_COSMOS_KEY=c2VjcmV0LWtleS1mb3ItdGhlLXN0YW5kLWlu
export PHOTOVOTE_COSMOS_DATABASE=pvn-$$ PHOTOVOTE_COSMOS_CONTAINER=elections
export PHOTOVOTE_COSMOS_EMULATOR_QUIRKS=true PHOTOVOTE_COSMOS_TIMEOUT_MS=1000
# No configuration file: the defaults and the variables above.
export PHOTOVOTE_CONFIG=/dev/null
# Port 1: nothing listens there, a connection is refused at once.
DOWN_AMQP=1
DOWN_COSMOS=http://127.0.0.1:1

listener=
prog=
stop_all()
{
	[ -z "$prog" ] || { kill "$prog" 2>/dev/null; wait "$prog" 2>/dev/null; }
	[ -z "$listener" ] || { kill "$listener" 2>/dev/null; wait "$listener" 2>/dev/null; }
	prog='' listener=''
}
pv_on_exit stop_all

# start NAME COMMAND...: the listener, then COMMAND in the background with
# NOTIFY_SOCKET set; its messages go to $WORK/NAME.notify.
start()
{
	local name=$1 deadline
	shift
	rm -f "$WORK/notify.sock"
	: >"$WORK/$name.notify"
	# Emptied here, not by the background job's own redirection: that one
	# runs when the job gets to it, and until then the loop below read the
	# previous listener's "listening" and let the program start before the
	# socket was bound (sd_notify: ENOENT, in a CI run under sanitizers).
	: >"$WORK/listener.out"
	python3 "$top_srcdir/tests/notify/notify-listen.py" "$WORK/notify.sock" \
		"$WORK/$name.notify" >>"$WORK/listener.out" &
	listener=$!
	# Up to 60 s: on a loaded machine Python alone has taken over 10 s to
	# start, and a program started before the socket exists cannot notify.
	deadline=$((SECONDS + 60))
	while ! grep -q listening "$WORK/listener.out" && ((SECONDS < deadline)); do
		sleep 0.1
	done
	if ! grep -q listening "$WORK/listener.out"; then
		echo "# the notify listener did not start within 60 s (waited $((SECONDS - deadline + 60)) s;" \
			"load: $(cut -d' ' -f1-3 /proc/loadavg))"
		sed 's/^/# listener: /' "$WORK/listener.out"
	fi
	NOTIFY_SOCKET=$WORK/notify.sock "$@" >>"$WORK/program.log" 2>&1 &
	prog=$!
}

# said NAME LINE SECONDS: LINE arrives within SECONDS.
said()
{
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		grep -qx "$2" "$WORK/$1.notify" && return 0
		kill -0 "$prog" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# down NAME COMMAND...: running, not ready, after WAIT_DOWN seconds.
down()
{
	local name=$1
	shift
	start "$name-down" "$@"
	sleep "$WAIT_DOWN"
	if kill -0 "$prog" 2>/dev/null && ! grep -qx READY=1 "$WORK/$name-down.notify"; then
		pv_tap_ok 0 "$name: not ready while its server is down (still running)"
	else
		pv_tap_ok 1 "$name: not ready while its server is down (still running)"
		sed 's/^/# /' "$WORK/$name-down.notify"
	fi
	stop_all
}

# up NAME COMMAND...: READY=1 with the servers up, then STOPPING=1 and exit
# 0 on SIGTERM.
up()
{
	local name=$1 rc
	shift
	start "$name-up" "$@"
	pv_tap_check "$name: READY=1 once connected" said "$name-up" READY=1 "$WAIT_UP"
	kill -TERM "$prog"
	wait "$prog"
	rc=$?
	prog=
	grep -qx STOPPING=1 "$WORK/$name-up.notify" && [ "$rc" = 0 ]
	pv_tap_ok $? "$name: STOPPING=1 on SIGTERM, exit 0 (got $rc)"
	stop_all
}

echo "1..9"
sql=$top_srcdir/sql

PHOTOVOTE_AMQP_PORT=$DOWN_AMQP down photovote.fcgi \
	"$B/fcgi/photovote.fcgi" --listen "$WORK/fcgi.sock"
PHOTOVOTE_AMQP_PORT=$PV_TEST_AMQP_PORT up photovote.fcgi \
	"$B/fcgi/photovote.fcgi" --listen "$WORK/fcgi.sock"

PHOTOVOTE_AMQP_PORT=$DOWN_AMQP down photovote-appender \
	"$B/workers/photovote-appender" --migrate "$sql"
PHOTOVOTE_AMQP_PORT=$PV_TEST_AMQP_PORT up photovote-appender \
	"$B/workers/photovote-appender" --migrate "$sql"

PHOTOVOTE_COSMOS_ENDPOINT=$DOWN_COSMOS down photovote-projector \
	"$B/workers/photovote-projector" --migrate "$sql"
PHOTOVOTE_COSMOS_ENDPOINT=$PV_TEST_COSMOS_URL up photovote-projector \
	"$B/workers/photovote-projector" --migrate "$sql"

[ "$pv_tap_failed" = 0 ]
