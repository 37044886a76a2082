#!/bin/bash
# /healthz cannot lie and never waits (issue 13).  Private RabbitMQ and Cosmos DB (so they may be
# paused), photovote.fcgi behind nginx, photovote-projector started here.  Each server is paused
# with SIGSTOP in turn, then the projector is paused and killed: /healthz answers within a bound
# every time (under 1 s asserted, the worst time seen printed), 503 naming the failing part, and
# 200 again after SIGCONT or a restart; RabbitMQ's memory alarm blocks the publishing connection
# (connection.blocked) and /healthz says so.  /readyz ignores the projector; /livez stays 200.  With the
# projector gone, events appended to the store show as lag_events.
: "${top_srcdir:?run from make check or set top_srcdir}"
. "$top_srcdir/tests/fcgi/web.sh"

command -v nginx >/dev/null || skip_all "nginx missing"
pv_servers_need postgres || bail "postgres did not start"
pv_servers_need_private rabbitmq cosmos || bail "private rabbitmq or cosmos did not start"
pv_web_setup health token
PROJECTOR=$top_builddir/workers/photovote-projector
PVP_TOOL=$top_builddir/tests/projector/pv-projector-tool
cat >>"$WORK/pv.conf" <<EOF
[cosmos]
endpoint = $PV_TEST_COSMOS_URL
key = c2VjcmV0LWtleS1mb3ItdGhlLXN0YW5kLWlu
database = pvh-$$
emulator_quirks = true
[projector]
poll_wait_ms = 300
heartbeat_ms = 300
EOF
export PHOTOVOTE_CONFIG=$WORK/pv.conf
export PHOTOVOTE_HTTP_HEALTH_INTERVAL_MS=200 PHOTOVOTE_HTTP_HEALTH_STALE_MS=1500
export PHOTOVOTE_HTTP_PROJECTOR_STALE_SECONDS=3
# The rest of the schema (pv_web_setup loaded the tokens' table and the command ids').
for f in "$top_srcdir"/sql/0*.sql; do
	[[ $f == */002_* || $f == */008_command_ids.sql ]] && continue
	psql "$PG_CONNINFO" -q -v ON_ERROR_STOP=1 -f "$f" >/dev/null || bail "$f"
done

PROJECTOR_PID=
start_projector()
{
	"$PROJECTOR" >>"$WORK/projector.log" 2>&1 &
	PROJECTOR_PID=$!
}
start_projector
pv_on_exit 'kill -CONT $PROJECTOR_PID 2>/dev/null; kill $PROJECTOR_PID 2>/dev/null; wait $PROJECTOR_PID 2>/dev/null'
pv_web_start_fcgi "$WORK/fcgi.sock"
pv_web_nginx "$WORK/fcgi.sock"
BASE=$NGINX_BASE/api
pv_web_wait_ready "$BASE" || bail "not ready"

WORST=0
# health PATH: GET it; sets CODE, TIME (seconds) and BODY; keeps the worst time.
health()
{
	local out
	out=$(curl -s -m 10 -o "$WORK/health.json" -w '%{http_code} %{time_total}' "$BASE/$1")
	CODE=${out% *}
	TIME=${out#* }
	BODY=$(cat "$WORK/health.json" 2>/dev/null)
	if awk -v t="$TIME" -v w="$WORST" 'BEGIN { exit !(t > w) }'; then WORST=$TIME; fi
}

# until_health SECONDS CODE JQ: polls /healthz until it answers CODE and the body matches JQ,
# every answer under 1 s; false (printing the last answer) otherwise.
until_health()
{
	local deadline=$((SECONDS + $1)) code=$2 filter=$3
	while ((SECONDS < deadline)); do
		health healthz
		if ! awk -v t="$TIME" 'BEGIN { exit !(t < 1) }'; then
			echo "# /healthz took $TIME s"
			return 1
		fi
		[[ $CODE == "$code" ]] && jq -e "$filter" <<<"$BODY" >/dev/null && return 0
		sleep 0.2
	done
	echo "# last /healthz: $CODE in $TIME s: ${BODY:0:600}"
	return 1
}

check "all up: 200 with every part ok" \
	until_health 20 200 '.status == "ok" and .broker.status == "ok" and .postgres.status == "ok"
		and .cosmos.status == "ok" and .projector.status == "ok"
		and .projector.parked_elections == 0 and .projector.lag_events == 0'
health livez
check "/livez 200" test "$CODE" = 200

# --- RabbitMQ paused: the publishing connection stays open, the broker says nothing.
# The Erlang VM itself (the server's leading process is the rabbitmq-server script).
RABBIT=$(cat "$(pv_server_dir rabbitmq)/rabbitmq.pid" 2>/dev/null)
[[ -n $RABBIT ]] || RABBIT=$(pv_server_pid rabbitmq)
kill -STOP "$RABBIT"
pv_on_exit "kill -CONT $RABBIT 2>/dev/null"
t0=$SECONDS
check "RabbitMQ paused: 503 naming the broker, each answer under 1 s" \
	until_health 15 503 '.status == "failing" and .broker.status == "failing"
		and (.broker.error | test("not answered")) and .postgres.status == "ok"'
echo "# broker reported failing after ~$((SECONDS - t0)) s; worst /healthz so far $WORST s"
health readyz
check "RabbitMQ paused: /readyz 503 too" test "$CODE" = 503
health livez
check "RabbitMQ paused: /livez still 200" test "$CODE" = 200
kill -CONT "$RABBIT"
check "RabbitMQ resumed: 200 again" until_health 30 200 '.broker.status == "ok"'

# --- RabbitMQ's memory alarm: connection.blocked for real.  With the watermark under what the
# node uses, the broker blocks every connection that publishes and tells it so.  The write is
# published into the blocked connection and never confirmed: an honest 503, "published":
# "unknown", with its event id.  Cleared, the broker unblocks and confirms it.
pv_rabbitmq_cli rabbitmqctl set_vm_memory_high_watermark 0.0000001 >"$WORK/alarm.out" 2>&1
pv_on_exit "pv_rabbitmq_cli rabbitmqctl set_vm_memory_high_watermark 0.4 >/dev/null 2>&1"
alarmed() { pv_rabbitmq_cli rabbitmqctl status 2>/dev/null | grep -qi 'memory.*alarm\|alarm.*memory'; }
for _ in $(seq 50); do alarmed && break; sleep 0.2; done
check "memory alarm set on the test broker" alarmed
req POST "$BASE/elections" '{"name":"Blocked","description":"while RabbitMQ blocks"}' \
	application/json -- "${AUTH[@]}"
check "a write while blocked: 503, published unknown, with its event id" eval \
	'[[ $STATUS == 503 ]] &&
	 jq -e ".error.published == \"unknown\" and (.error.event_id | length) > 0" <<<"$BODY" \
		>/dev/null' || echo "# $STATUS ${BODY:0:300}"
blocked_id=$(jq -r .error.event_id <<<"$BODY" 2>/dev/null)
check "/healthz: 503, the broker failing as blocked (connection.blocked), under 1 s" \
	until_health 15 503 '.status == "failing" and .broker.status == "failing"
		and .broker.blocked == true and (.broker.error | test("blocks publishing"))'
health readyz
check "blocked: /readyz 503" test "$CODE" = 503
pv_rabbitmq_cli rabbitmqctl set_vm_memory_high_watermark 0.4 >>"$WORK/alarm.out" 2>&1
check "alarm cleared: 200, the broker no longer blocked" \
	until_health 30 200 '.broker.status == "ok" and .broker.blocked == false'
req POST "$BASE/elections" '{"name":"Unblocked","description":"after the alarm"}' \
	application/json -- "${AUTH[@]}"
check "a write after the alarm: 202" test "$STATUS" = 202
confirmed() { req GET "$BASE/commands/$blocked_id" -- "${AUTH[@]}"; [[ $STATUS != 404 ]]; }
for _ in $(seq 50); do confirmed && break; sleep 0.2; done
check "the write made while blocked was published once unblocked (GET /commands/ID: $STATUS)" \
	confirmed

# --- Cosmos DB paused.
COSMOS=$(pv_server_pid cosmos)
kill -STOP "$COSMOS"
pv_on_exit "kill -CONT $COSMOS 2>/dev/null"
check "Cosmos DB paused: 503 naming Cosmos DB, each answer under 1 s" \
	until_health 15 503 '.cosmos.status == "failing" and .broker.status == "ok"'
health readyz
check "Cosmos DB paused: /readyz 503" test "$CODE" = 503
kill -CONT "$COSMOS"
check "Cosmos DB resumed: 200 again" until_health 30 200 '.status == "ok"'

# --- The projector stalled (SIGSTOP) while every server is up.
kill -STOP "$PROJECTOR_PID"
check "projector stalled: 503 naming the projector after projector_stale_seconds" \
	until_health 15 503 '.projector.status == "failing" and .broker.status == "ok"
		and .postgres.status == "ok" and .cosmos.status == "ok" and .projector.lag_seconds > 3'
health readyz
check "projector stalled: /readyz 200 (the API itself can serve)" \
	eval '[[ $CODE == 200 ]] && jq -e ".projector.status == \"failing\"" <<<"$BODY" >/dev/null'
kill -CONT "$PROJECTOR_PID"
check "projector resumed: 200 again" until_health 20 200 '.projector.status == "ok"'

# --- The projector killed, events appended behind its back: lag in events.
kill -KILL "$PROJECTOR_PID"
wait "$PROJECTOR_PID" 2>/dev/null
python3 "$top_srcdir/tests/projector/gen-events.py" "$WORK/lag.events" "$WORK/lag.elections" \
	--elections 1 --voters 3 >/dev/null || bail "gen-events"
PHOTOVOTE_POSTGRES_CONNINFO=$PG_CONNINFO "$PVP_TOOL" append <"$WORK/lag.events" ||
	bail "append events"
events=$(wc -l <"$WORK/lag.events")
check "projector killed: 503 naming it, lag_events = the $events events appended since" \
	until_health 15 503 ".projector.status == \"failing\" and .projector.lag_events == $events"
start_projector
check "projector restarted: 200, caught up" \
	until_health 30 200 '.projector.status == "ok" and .projector.lag_events == 0'

echo "# worst /healthz answer: $WORST s"
check "every /healthz answer under 1 s (worst $WORST s)" \
	awk -v w="$WORST" 'BEGIN { exit !(w < 1) }'
pv_web_done
