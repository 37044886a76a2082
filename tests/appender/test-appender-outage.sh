#!/bin/bash
# Transient failures: PostgreSQL (event store and audit log) down while commands wait, then
# RabbitMQ restarted under the appender.  Nothing is lost or doubled, the appender carries on
# by itself when the servers return, and it logs one warning per outage, not one per message.
set -u
# shellcheck source=lib.sh
. "$top_srcdir/tests/appender/lib.sh"

echo "1..9"
if ! pva_setup outage private; then
	echo "# servers unavailable"
	exit 77
fi

wait_log()
{
	local pattern=$1 count=$2 deadline=$((SECONDS + ${3:-60}))
	while ((SECONDS < deadline)); do
		(($(grep -c -- "$pattern" "$pva_work/appender.log") >= count)) && return 0
		sleep 0.2
	done
	return 1
}

pva_start
wait_log "consuming" 1 30

# PostgreSQL down while commands arrive.
pva_generate 2
cp "$pva_work/messages" "$pva_work/all-messages"
cp "$pva_work/expected" "$pva_work/all-expected"
cp "$pva_work/elections" "$pva_work/all-elections"
total=$(wc -l <"$pva_work/messages")
pv_server_stop postgres
pva_publish
wait_log 'retrying with backoff' 1 30
sleep 1
pva_check "the appender noticed the outage and holds the commands" \
	test "$(grep -c 'retrying with backoff' "$pva_work/appender.log")" = 1
pv_server_start postgres
pva_check "after PostgreSQL returns, every command has its verdict" pva_wait_verdicts "$total" 60
pva_check "one warning for the PostgreSQL outage" \
	test "$(grep -c 'event store or audit log.*retrying with backoff' "$pva_work/appender.log")" = 1
pva_check "the end of the outage is logged" wait_log "event store or audit log: back after" 1 5

# RabbitMQ restarted under the appender; then more commands.
pv_server_stop rabbitmq
sleep 2
# The port, polled from before the start until the broker accepts a connection.
(
	until (exec 3<>"/dev/tcp/127.0.0.1/$PV_TEST_AMQP_PORT") 2>/dev/null; do sleep 0.01; done
	date +%s.%N >"$pva_work/accepting"
) &
poller=$!
pv_server_start rabbitmq
wait $poller
pva_check "the appender consumes again after the broker restart" wait_log "consuming" 2 60
# Its log line's time (UTC, ms) against the broker's for its listener (a poll on a loaded
# machine notices late), or the poll's when the broker's log does not say.
back=$(grep "consuming" "$pva_work/appender.log" | sed -n '2s/ .*//p')
accepting=$(cat "$pva_work/accepting")
listener=$(grep "started TCP listener on 127.0.0.1:$PV_TEST_AMQP_PORT" \
	"$(pv_server_dir rabbitmq)/log/$PV_TEST_AMQP_NODE.log" 2>/dev/null | tail -1 | cut -c1-32)
[[ -n $listener ]] && listener=$(date -d "$listener" +%s.%N 2>/dev/null) && accepting=$listener
gap=$(awk -v a="$accepting" -v b="$(date -d "$back" +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
echo "# broker accepting connections -> the appender consuming again: $gap s"
if grep -q '^PV_CFLAGS = .*-fsanitize' "${top_builddir:-.}/Makefile" 2>/dev/null; then
	# Several times slower under ASan: the figure is printed, the bound is the plain run's.
	pv_tap_ok 0 "the appender consumes again within 1 s of the broker accepting connections # SKIP timing of a sanitizer build"
else
	pva_check "the appender consumes again within 1 s of the broker accepting connections" \
		awk -v g="$gap" 'BEGIN { exit !(g < 1) }'
fi
pva_generate 2
cat "$pva_work/messages" >>"$pva_work/all-messages"
cat "$pva_work/expected" >>"$pva_work/all-expected"
cat "$pva_work/elections" >>"$pva_work/all-elections"
total=$((total + $(wc -l <"$pva_work/messages")))
mv "$pva_work/all-messages" "$pva_work/messages"
mv "$pva_work/all-expected" "$pva_work/expected"
mv "$pva_work/all-elections" "$pva_work/elections"
pva_publish <(tail -n $((total / 2)) "$pva_work/messages")
pva_check "commands after the broker restart get their verdicts" pva_wait_verdicts "$total" 60
pva_check "verdicts as expected, none doubled" pva_check_verdicts
pva_check "streams hold each accepted event once, in order" pva_check_streams
pva_stop
exit 0
