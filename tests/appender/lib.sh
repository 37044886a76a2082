# shellcheck shell=bash
# Shared by the appender tests: servers, a private database and private broker names per test,
# the appender in the background, and checks of the stream and audit log against the verdicts
# gen-election.py expects.  Source after setting top_srcdir/top_builddir (the test harness
# exports them).

: "${top_srcdir:?}" "${top_builddir:?}"
# shellcheck source=../servers/servers.sh
. "$top_srcdir/tests/servers/servers.sh"
# shellcheck source=../lib/worker-tests.sh
. "$top_srcdir/tests/lib/worker-tests.sh"

pva_tool=$top_builddir/tests/appender/pv-appender-tool
pva_appender=$top_builddir/workers/photovote-appender
pva_gen=$top_srcdir/tests/appender/gen-election.py
APPENDER_PID=

pva_ok() { pv_tap_ok "$@"; }
pva_check() { pv_tap_check "$@"; }
pva_sql() { pv_tap_sql "$@"; }

# pva_setup NAME [private]: servers (private ones, which the test may stop, with "private"), a
# fresh database, private exchange and queue names, and a work folder $pva_work.  May be called
# again with another NAME for a clean slate on the same servers.
pva_setup()
{
	local name=$1 db
	if [[ ${2:-} == private ]]; then
		pv_servers_need_private postgres rabbitmq || return 1
	else
		pv_servers_need postgres rabbitmq || return 1
	fi
	db=pva_${name}_$$
	pv_worker_database "$db" || return 1
	pva_work=$(mktemp -d "${TMPDIR:-/tmp}/pva-$name.XXXXXX")
	pv_on_exit "pva_teardown $db $pva_work"
	export PHOTOVOTE_AMQP_HOST=127.0.0.1 PHOTOVOTE_AMQP_PORT=$PV_TEST_AMQP_PORT
	export PHOTOVOTE_AMQP_USER=guest PHOTOVOTE_AMQP_PASSWORD=guest PHOTOVOTE_AMQP_VHOST=/
	export PHOTOVOTE_AMQP_EXCHANGE=pva.$name.$$.events PHOTOVOTE_AMQP_QUEUE=pva.$name.$$.appender
	export PHOTOVOTE_AMQP_DEAD_LETTER_EXCHANGE=pva.$name.$$.dead
	export PHOTOVOTE_AMQP_DEAD_LETTER_QUEUE=pva.$name.$$.dead
	export PHOTOVOTE_EVENTSTORE_BACKEND=${PVA_BACKEND:-postgres}
	if [[ $PHOTOVOTE_EVENTSTORE_BACKEND == esdb ]]; then
		pva_standin || return 1
	fi
	if [[ $PHOTOVOTE_EVENTSTORE_BACKEND == kurrentdb ]]; then
		pv_worker_kurrentdb || return 1
	fi
	export PHOTOVOTE_LOG_LEVEL=${PVA_LOG_LEVEL:-info}
	unset PHOTOVOTE_FAULT
}

# pva_standin: the EventStoreDB stand-in on a free port, stopped at exit.
pva_standin() { pv_worker_standin "$pva_work"; }

# pva_teardown DB WORK: runs at exit (pv_on_exit), once per pva_setup.
pva_teardown()
{
	pva_stop >/dev/null 2>&1
	pv_worker_teardown "$1" "$2" appender.log
}

# pva_start [VAR=VALUE...]: starts the appender in the background (applying the migrations).
pva_start()
{
	env "$@" "$pva_appender" --migrate "$top_srcdir/sql" >>"$pva_work/appender.log" 2>&1 &
	APPENDER_PID=$!
}

# pva_stop: SIGTERM, then waits; returns the appender's exit status.
pva_stop()
{
	local rc
	[[ -n $APPENDER_PID ]] || return 0
	kill -TERM "$APPENDER_PID" 2>/dev/null
	wait "$APPENDER_PID"
	rc=$?
	APPENDER_PID=
	return $rc
}

pva_verdicts()
{
	pva_sql "SELECT count(*) FROM audit_log" 2>/dev/null || echo 0
}

# pva_wait_verdicts N [SECONDS]: until the audit log holds N rows; false on timeout or when
# the appender died.
pva_wait_verdicts()
{
	local want=$1 deadline=$((SECONDS + ${2:-60}))
	while ((SECONDS < deadline)); do
		(($(pva_verdicts) >= want)) && return 0
		if [[ -n $APPENDER_PID ]] && ! kill -0 "$APPENDER_PID" 2>/dev/null; then
			return 1
		fi
		sleep 0.2
	done
	return 1
}

# pva_eventually SECONDS COMMAND...: true as soon as COMMAND is (tried every 0.2 s), false
# when it still is not after SECONDS: for what the appender does in the background.
pva_eventually()
{
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 0.2
	done
}

# pva_queue_is pending|dead-count N: the appender's queue, or the dead-letter queue, holds N
# ready messages.
pva_queue_is() { [[ $("$pva_tool" "$1" 2>/dev/null) == "$2" ]]; }

# pva_expected_stream ELECTION: the event ids the stream must hold, in order.
pva_expected_stream()
{
	awk -v e="$1" '
		FILENAME ~ /messages$/ { split($0, a, "\"election_id\":\""); id = substr(a[2], 1, 26)
		                         split($0, b, "\"event_id\":\""); ev[FNR] = substr(b[2], 1, 36)
		                         el[FNR] = id; next }
		$2 == "appended" && el[FNR] == e { print $1 }' \
		"$pva_work/messages" "$pva_work/expected"
}

# pva_check_streams: every election's stream holds exactly its accepted events, in order,
# numbered from 0, and the audit log agrees on each number.
pva_check_streams()
{
	local e got want audit
	while read -r e; do
		got=$("$pva_tool" stream "$e" | awk '{ print $2 }') || return 1
		want=$(pva_expected_stream "$e")
		if [[ $got != "$want" ]]; then
			echo "# stream Election-$e differs:"
			diff <(echo "$want") <(echo "$got") | sed 's/^/#   /'
			return 1
		fi
		got=$("$pva_tool" stream "$e" | awk '{ print $1, $2 }')
		audit=$(pva_sql "SELECT number || ' ' || event_id FROM audit_log
			WHERE stream = 'Election-$e' AND status = 'appended' ORDER BY number")
		if [[ $got != "$audit" ]]; then
			echo "# audit numbers of Election-$e differ from the stream"
			return 1
		fi
		[[ $(awk 'NR != $1 + 1' <<<"$got") == "" ]] || return 1
	done <"$pva_work/elections"
}

# pva_check_verdicts: every expected verdict is in the audit log, with its rule.
pva_check_verdicts()
{
	local got
	got=$(pva_sql "SELECT event_id || ' ' || status || coalesce(' ' || rule, '')
		FROM audit_log WHERE kind IS DISTINCT FROM 'malformed'" | sort)
	if [[ $got != "$(sort "$pva_work/expected")" ]]; then
		echo "# verdicts differ (- expected, + audit log):"
		diff <(sort "$pva_work/expected") <(echo "$got") | head -20 | sed 's/^/#   /'
		return 1
	fi
}

pva_generate()
{
	python3 "$pva_gen" "$pva_work/messages" "$pva_work/expected" "$pva_work/elections" "${1:-1}"
}

pva_publish()
{
	"$pva_tool" publish <"${1:-$pva_work/messages}"
}
