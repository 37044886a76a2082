# shellcheck shell=bash
# Shared by the projector tests: servers, a private database, a private Cosmos DB database,
# the projector in the background, events generated straight into the event store, and
# comparisons of the documents with the domain's fold of the streams.  Source after setting
# top_srcdir/top_builddir (the test harness exports them).

: "${top_srcdir:?}" "${top_builddir:?}"
# shellcheck source=../servers/servers.sh
. "$top_srcdir/tests/servers/servers.sh"
# shellcheck source=../lib/worker-tests.sh
. "$top_srcdir/tests/lib/worker-tests.sh"

pvp_tool=$top_builddir/tests/projector/pv-projector-tool
pvp_projector=$top_builddir/workers/photovote-projector
pvp_gen=$top_srcdir/tests/projector/gen-events.py
PROJECTOR_PID=

pvp_ok() { pv_tap_ok "$@"; }
pvp_check() { pv_tap_check "$@"; }
pvp_sql() { pv_tap_sql "$@"; }

# pvp_setup NAME [private]: servers, a fresh PostgreSQL database (migrated), a Cosmos DB
# database of its own, the event store of PVP_BACKEND (postgres by default; esdb: the
# EventStoreDB stand-in) and a work folder $pvp_work.
pvp_setup()
{
	local name=$1 db
	if [[ ${2:-} == private ]]; then
		pv_servers_need_private postgres || return 1
		pv_servers_need cosmos || return 1
	else
		pv_servers_need postgres cosmos || return 1
	fi
	db=pvp_${name}_$$
	pv_worker_database "$db" || return 1
	pvp_work=$(mktemp -d "${TMPDIR:-/tmp}/pvp-$name.XXXXXX")
	pv_on_exit "pvp_teardown $db $pvp_work"
	export PHOTOVOTE_EVENTSTORE_BACKEND=${PVP_BACKEND:-postgres}
	export PHOTOVOTE_COSMOS_ENDPOINT=$PV_TEST_COSMOS_URL
	export PHOTOVOTE_COSMOS_KEY=c2VjcmV0LWtleS1mb3ItdGhlLXN0YW5kLWlu
	export PHOTOVOTE_COSMOS_DATABASE=pvp-$name-$$ PHOTOVOTE_COSMOS_CONTAINER=elections
	export PHOTOVOTE_COSMOS_EMULATOR_QUIRKS=true
	export PHOTOVOTE_PROJECTOR_POLL_WAIT_MS=300
	export PHOTOVOTE_LOG_LEVEL=${PVP_LOG_LEVEL:-info}
	unset PHOTOVOTE_FAULT
	if [[ $PHOTOVOTE_EVENTSTORE_BACKEND == esdb ]]; then
		pvp_standin || return 1
	fi
	if [[ $PHOTOVOTE_EVENTSTORE_BACKEND == kurrentdb ]]; then
		pv_worker_kurrentdb || return 1
	fi
	# Migrations (and an empty first run).
	"$pvp_projector" --migrate "$top_srcdir/sql" --once >>"$pvp_work/projector.log" 2>&1
}

# pvp_standin: the EventStoreDB stand-in on a free port, stopped at exit.
pvp_standin() { pv_worker_standin "$pvp_work"; }

# pvp_teardown DB WORK: runs at exit (pv_on_exit).
pvp_teardown()
{
	pvp_stop >/dev/null 2>&1
	pv_worker_teardown "$1" "$2" projector.log
}

# pvp_start [VAR=VALUE...]: the projector in the background.
pvp_start()
{
	env "$@" "$pvp_projector" >>"$pvp_work/projector.log" 2>&1 &
	PROJECTOR_PID=$!
}

# pvp_stop: SIGTERM, then waits; returns the projector's exit status.
pvp_stop()
{
	local rc
	[[ -n $PROJECTOR_PID ]] || return 0
	kill -TERM "$PROJECTOR_PID" 2>/dev/null
	wait "$PROJECTOR_PID"
	rc=$?
	PROJECTOR_PID=
	return $rc
}

# pvp_once [VAR=VALUE...]: projects what the feed holds and exits; returns its status.
pvp_once()
{
	env "$@" "$pvp_projector" --once >>"$pvp_work/projector.log" 2>&1
}

# pvp_generate NAME [gen-events.py options]: $pvp_work/NAME.events and NAME.elections.
pvp_generate()
{
	local name=$1
	shift
	python3 "$pvp_gen" "$pvp_work/$name.events" "$pvp_work/$name.elections" "$@"
}

pvp_append()
{
	"$pvp_tool" append <"$1"
}

# pvp_analyze: the postgres event store's statistics, which autovacuum gathers in a store that
# grew by its appends.  After a bulk load (pvp_append) they are missing, and PostgreSQL then
# reads a feed page by sorting every event after it (150 ms instead of 1.5 ms a page of 4,096
# at 63,000 events): benchmarks call this before they time a projection.
pvp_analyze()
{
	pvp_sql "ANALYZE es_events, es_streams" >/dev/null
}

# pvp_checkpoint [DATABASE]: the checkpoint of the projection into the Cosmos DB database.
pvp_checkpoint()
{
	pvp_sql "SELECT position FROM projector_checkpoints
		WHERE name = 'Election@$PHOTOVOTE_EVENTSTORE_BACKEND:${1:-$PHOTOVOTE_COSMOS_DATABASE}/elections'"
}

# pvp_wait_checkpoint POSITION [SECONDS]: until the running projector checkpointed POSITION.
pvp_wait_checkpoint()
{
	local want=$1 deadline=$((SECONDS + ${2:-60})) got
	while ((SECONDS < deadline)); do
		got=$(pvp_checkpoint)
		[[ -n $got ]] && ((got >= want)) && return 0
		if [[ -n $PROJECTOR_PID ]] && ! kill -0 "$PROJECTOR_PID" 2>/dev/null; then
			return 1
		fi
		sleep 0.2
	done
	echo "# checkpoint ${got:-none}, waited for $want"
	return 1
}

# pvp_same_as_fold ELECTION...: the documents give exactly the domain's fold of each stream, in
# every view and the results.
pvp_same_as_fold()
{
	local e v
	for e in "$@"; do
		for v in full owner public results; do
			"$pvp_tool" fold "$e" "$v" >"$pvp_work/want" || return 1
			if ! "$pvp_tool" view "$e" "$v" >"$pvp_work/got" ||
				! cmp -s "$pvp_work/want" "$pvp_work/got"; then
				echo "# election $e, view $v differs from the fold"
				diff <(head -c 600 "$pvp_work/want") <(head -c 600 "$pvp_work/got") |
					sed 's/^/#   /'
				return 1
			fi
		done
	done
}

# pvp_docs FILE ELECTION...: every document of the elections, sorted, into FILE.
pvp_docs()
{
	local out=$1 e
	shift
	: >"$out"
	for e in "$@"; do
		"$pvp_tool" docs "$e" >>"$out" || return 1
	done
}

# pvp_web: photovote.fcgi behind lighttpd on a free loopback port, reading this test's
# PostgreSQL and Cosmos DB database (the broker only for its health check); stopped at exit.
# Sets PVP_BASE and PVP_AUTH (a bearer token of an administrator, who sees the owner's view).
pvp_web()
{
	command -v lighttpd >/dev/null || return 1
	pv_servers_need rabbitmq || return 1
	export PHOTOVOTE_AMQP_PORT=$PV_TEST_AMQP_PORT PHOTOVOTE_AMQP_EXCHANGE=pvp.$$.events
	export PHOTOVOTE_AMQP_QUEUE=pvp.$$.appender PHOTOVOTE_AMQP_DEAD_LETTER_EXCHANGE=pvp.$$.dead
	export PHOTOVOTE_AMQP_DEAD_LETTER_QUEUE=pvp.$$.dead
	# Everything else comes from the environment; the programs want a file.
	: >"$pvp_work/pv.conf"
	chmod 644 "$pvp_work/pv.conf"
	export PHOTOVOTE_CONFIG=$pvp_work/pv.conf
	PVP_AUTH="Authorization: Bearer $("$top_builddir/fcgi/photovote-token" create \
		root@example.org --admin)" || return 1
	chmod 755 "$pvp_work"
	pv_lighttpd_fcgi "$pvp_work" "$top_builddir/fcgi/photovote.fcgi" || return 1
	PVP_BASE=http://127.0.0.1:$PV_LIGHTTPD_PORT/api
	# /readyz: the servers photovote.fcgi needs (the projector is this test's business).
	pv_wait_ready "$PVP_BASE" "$pvp_work/readyz.out" "$PV_LIGHTTPD_PID" && return 0
	tail -n 20 "$pvp_work/lighttpd-error.log" "$pvp_work/lighttpd.out" 2>/dev/null |
		sed 's/^/#   /'
	return 1
}

# pvp_get PATH FILE: GET $PVP_BASE/PATH as the administrator into FILE; prints the status.
pvp_get()
{
	curl -s -m 60 -H "$PVP_AUTH" -o "$2" -w '%{http_code}' "$PVP_BASE/$1"
}

# pvp_sanitized: true when the programs are built with sanitizers (heavy cases shrink there).
pvp_sanitized()
{
	grep -q '^PV_CFLAGS = .*-fsanitize' "$top_builddir/Makefile" 2>/dev/null
}
