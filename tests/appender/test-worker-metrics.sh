#!/bin/bash
# Both workers' Prometheus metrics, scraped with curl after a known workload: a whole election
# through photovote-appender (its appended and rejected verdicts as gen-election.py expects, one
# poison message dead-lettered), then photovote-projector projecting what was appended (events,
# the delay histograms, Cosmos DB requests by status, lag 0, parked 0).  Only GET /metrics is
# served; the listener is off unless configured.
set -u
# shellcheck source=lib.sh
. "$top_srcdir/tests/appender/lib.sh"

echo "1..19"
if ! pva_setup metrics || ! pv_servers_need cosmos; then
	echo "# servers unavailable"
	exit 77
fi
command -v curl >/dev/null || { echo "# curl missing"; exit 77; }

free_port() { pv_free_port; }

# metric URL NAME: the value of the sample NAME (with its labels, as exposed), or nothing.
metric()
{
	curl -s -m 5 "$1/metrics" | awk -v n="$2" '$1 == n { print $2 }'
}

# metric_is URL NAME VALUE: the sample equals VALUE (numerically); says what it saw when not.
metric_is()
{
	local got
	got=$(metric "$1" "$2")
	if [[ -n $got ]] && awk -v a="$got" -v b="$3" 'BEGIN { exit !(a == b) }'; then
		return 0
	fi
	echo "# $2: ${got:-missing}, want $3"
	return 1
}

# metric_above URL NAME VALUE
metric_above()
{
	local got
	got=$(metric "$1" "$2")
	if [[ -n $got ]] && awk -v a="$got" -v b="$3" 'BEGIN { exit !(a > b) }'; then
		return 0
	fi
	echo "# $2: ${got:-missing}, want more than $3"
	return 1
}

pva_generate 1
total=$(wc -l <"$pva_work/messages")
appended=$(grep -c ' appended$' "$pva_work/expected")
rejected=$(grep -c ' rejected ' "$pva_work/expected")
port=$(free_port) || exit 1
A=http://127.0.0.1:$port

pva_start PHOTOVOTE_APPENDER_METRICS_LISTEN=127.0.0.1:$port
pva_check "appender: metrics served before any message (messages 0)" \
	pva_eventually 30 metric_is "$A" photovote_appender_messages_total 0
pva_check "commands published" pva_publish
echo 'this is { not json' | "$pva_tool" publish >/dev/null
pva_check "every command gets a verdict" pva_wait_verdicts "$total" 60
pva_check "appender: messages_total counts every message and the poison ($((total + 1)))" \
	pva_eventually 30 metric_is "$A" photovote_appender_messages_total $((total + 1))
pva_check "appender: verdicts appended = $appended" \
	metric_is "$A" 'photovote_appender_verdicts_total{status="appended"}' "$appended"
pva_check "appender: verdicts rejected = $rejected" \
	metric_is "$A" 'photovote_appender_verdicts_total{status="rejected"}' "$rejected"
pva_check "appender: verdicts dead_letter = 1" \
	metric_is "$A" 'photovote_appender_verdicts_total{status="dead_letter"}' 1
pva_check "appender: batch sizes and append and audit latencies observed" \
	eval 'metric_above "$A" photovote_appender_batch_size_messages_count 0 &&
		metric_above "$A" "photovote_appender_step_duration_seconds_count{step=\"append\"}" 0 &&
		metric_above "$A" "photovote_appender_step_duration_seconds_count{step=\"audit\"}" 0 &&
		metric_is "$A" photovote_appender_broker_connected 1'
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$A/other")
pva_check "appender: another path answers 404" test "$code" = 404
pva_stop

# [appender] batch_wait_ms: two messages 0.2 s apart are one batch when a batch waits 1 s for
# more, and two batches when it takes only what has arrived.
for wait in 1000 0; do
	port=$(free_port) || exit 1
	A=http://127.0.0.1:$port
	pva_start PHOTOVOTE_APPENDER_METRICS_LISTEN=127.0.0.1:$port PHOTOVOTE_APPENDER_BATCH_WAIT_MS=$wait
	pva_eventually 30 metric_is "$A" photovote_appender_messages_total 0 >/dev/null
	echo 'first { not json' | "$pva_tool" publish >/dev/null
	sleep 0.2
	echo 'second { not json' | "$pva_tool" publish >/dev/null
	want=1
	((wait == 0)) && want=2
	pva_check "appender: batch_wait_ms $wait: two messages 0.2 s apart make $want batch(es)" \
		eval 'pva_eventually 30 metric_is "$A" photovote_appender_messages_total 2 &&
			metric_is "$A" photovote_appender_batch_size_messages_count $want &&
			metric_is "$A" photovote_appender_batch_size_messages_sum 2'
	pva_stop
done

# The projector projects what was appended.
export PHOTOVOTE_COSMOS_ENDPOINT=$PV_TEST_COSMOS_URL
export PHOTOVOTE_COSMOS_KEY=c2VjcmV0LWtleS1mb3ItdGhlLXN0YW5kLWlu
export PHOTOVOTE_COSMOS_DATABASE=pvm-$$ PHOTOVOTE_COSMOS_EMULATOR_QUIRKS=true
export PHOTOVOTE_PROJECTOR_POLL_WAIT_MS=300
port=$(free_port) || exit 1
P=http://127.0.0.1:$port
PHOTOVOTE_PROJECTOR_METRICS_LISTEN=127.0.0.1:$port "$top_builddir/workers/photovote-projector" \
	>>"$pva_work/projector.log" 2>&1 &
PROJECTOR_PID=$!
pv_on_exit "kill $PROJECTOR_PID 2>/dev/null; wait $PROJECTOR_PID 2>/dev/null"
pva_check "projector: events_total = the $appended appended events" \
	pva_eventually 60 metric_is "$P" photovote_projector_events_total "$appended"
pva_check "projector: checkpoint at the last position, lag 0 events" \
	pva_eventually 10 eval 'metric_is "$P" photovote_projector_checkpoint_position $((appended - 1)) &&
		metric_is "$P" photovote_projector_lag_events 0'
pva_check "projector: parked elections 0" \
	pva_eventually 10 metric_is "$P" photovote_projector_parked_elections 0
pva_check "projector: a delay since acceptance observed for every event" \
	metric_is "$P" 'photovote_projector_visible_delay_seconds_count{since="accepted"}' "$appended"
pva_check "projector: a delay since storing observed for every event" \
	metric_is "$P" 'photovote_projector_visible_delay_seconds_count{since="stored"}' "$appended"
pva_check "projector: Cosmos DB requests counted by status (201 created documents)" \
	metric_above "$P" 'photovote_cosmos_requests_total{code="201"}' 0
curl -s -m 5 "$P/metrics" >"$pva_work/projector.metrics"
pva_check "projector: the exposition types every family" \
	eval '[[ $(grep -c "^# TYPE photovote_" "$pva_work/projector.metrics") -ge 11 ]]'
echo "# projector metrics:"
grep -v '^#\|_bucket' "$pva_work/projector.metrics" | sed 's/^/#   /'
kill -TERM "$PROJECTOR_PID"
wait "$PROJECTOR_PID"
pva_check "projector: SIGTERM with the listener running exits 0" test $? = 0
if ((pv_tap_failed)); then
	echo "# --- projector.log ---"
	tail -n 40 "$pva_work/projector.log" | sed 's/^/#   /'
fi
exit $pv_tap_failed
