#!/bin/bash
# Two photovote-appenders at once, real PostgreSQL and RabbitMQ, the backend of PVA_BACKEND:
#
#   1. one queue (1 partition, single active consumer): the second appender is a standby; the
#      active one is killed with SIGKILL half way and the standby finishes the queue;
#   2. two partition queues behind the consistent-hash exchange: each election's commands land
#      in one partition, each partition has one active consumer, every verdict as expected;
#   3. a real race: each appender has its own queue and the same store and audit log; for every
#      election one ballot goes to each appender at the same moment, both for the same voter:
#      exactly one is accepted, the other rejected (already_voted), none stored twice.
# In every part: one verdict per event, streams hold exactly the accepted events in order.
set -u
# shellcheck source=lib.sh
. "$top_srcdir/tests/appender/lib.sh"

echo "1..17"
pva_setup two_one || { echo "# servers unavailable"; exit 77; }
SECOND_PID=
pv_on_exit '[[ -n $SECOND_PID ]] && kill -TERM $SECOND_PID 2>/dev/null && wait $SECOND_PID'

# start_second [VAR=VALUE...]: a second appender, its log next to the first's.
start_second()
{
	env "$@" "$pva_appender" --migrate "$top_srcdir/sql" >>"$pva_work/appender2.log" 2>&1 &
	SECOND_PID=$!
}
stop_second()
{
	local rc
	kill -TERM "$SECOND_PID" 2>/dev/null
	wait "$SECOND_PID"
	rc=$?
	SECOND_PID=
	return $rc
}
# wait_log FILE TEXT: until the file holds the text (30 s: slow under ASan).
wait_log()
{
	for _ in $(seq 300); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# Part 1: one queue, an active appender and a standby.
pva_generate 20
total=$(wc -l <"$pva_work/messages")
# The active one kills itself (SIGKILL) before its second ack, the standby takes over.  Its
# batches are small, so that there is a second ack: with the default batch_size, a queue
# published before its first batch went in one batch and one ack, and it never died.
pva_start PHOTOVOTE_FAULT=before_ack:2 PHOTOVOTE_APPENDER_BATCH_SIZE=20
wait_log "$pva_work/appender.log" consuming
start_second
wait_log "$pva_work/appender2.log" consuming
pva_publish
# 60 s at most: an appender that does not die fails the check below, it does not hang the run.
for _ in $(seq 600); do
	kill -0 "$APPENDER_PID" 2>/dev/null || break
	sleep 0.1
done
hung=no
kill -KILL "$APPENDER_PID" 2>/dev/null && hung=yes
wait "$APPENDER_PID" 2>/dev/null
rc=$?
[[ $hung == yes ]] && rc="alive after 60 s (killed by the test)"
APPENDER_PID=
echo "# 1 partition: the active appender died (status $rc) after $(pva_verdicts) of $total verdicts"
pva_check "1 partition: the active appender was killed before its second ack" test "$rc" = 137
pva_check "1 partition: the standby finishes the queue after the active one died" \
	pva_wait_verdicts "$total" 60
pva_check "1 partition: verdicts as expected, one per event" pva_check_verdicts
pva_check "1 partition: streams hold exactly the accepted events, in order" pva_check_streams
pva_check "1 partition: nothing left in the queue" pva_eventually 10 pva_queue_is pending 0
pva_check "1 partition: the standby exits 0 on SIGTERM" stop_second

# Part 2: two partition queues.
pva_setup two_parts
export PHOTOVOTE_AMQP_PARTITIONS=2
pva_generate 20
total=$(wc -l <"$pva_work/messages")
pva_publish
queue_counts()
{
	pv_rabbitmq_cli rabbitmqctl -q list_queues name messages 2>/dev/null |
		awk -v q="$PHOTOVOTE_AMQP_QUEUE." 'index($1, q) == 1 { print $2 }'
}
counts=$(queue_counts | tr '\n' ' ')
echo "# messages per partition: $counts"
# shellcheck disable=SC2086
set -- $counts
pva_check "2 partitions: the commands are spread over both queues" \
	test "${1:-0}" -gt 0 -a "${2:-0}" -gt 0 -a $((${1:-0} + ${2:-0})) = "$total"
pva_start
start_second
pva_check "2 partitions: every command gets a verdict" pva_wait_verdicts "$total" 60
pva_check "2 partitions: verdicts as expected, one per event" pva_check_verdicts
pva_check "2 partitions: streams hold exactly the accepted events, in order" pva_check_streams
active=$(pv_rabbitmq_cli rabbitmqctl -q list_consumers queue_name active 2>/dev/null |
	awk -v q="$PHOTOVOTE_AMQP_QUEUE." 'index($1, q) == 1 && $2 == "true" { print $1 }' |
	sort | uniq -c | awk '{ print $1 }' | tr '\n' ' ')
echo "# active consumers per partition queue: $active"
pva_check "2 partitions: one active consumer per partition queue" test "$active" = "1 1 "
pva_stop
rc=$?
stop_second
pva_check "2 partitions: both appenders exit 0 on SIGTERM" test "$rc" = 0 -a $? = 0
unset PHOTOVOTE_AMQP_PARTITIONS

# Part 3: a real race, through two queues.
pva_setup two_race
n=40
python3 "$top_srcdir/tests/appender/gen-race.py" "$pva_work" "$n"
cp "$pva_work/elections" "$pva_work/elections.race"
qa=$PHOTOVOTE_AMQP_QUEUE.a qb=$PHOTOVOTE_AMQP_QUEUE.b
xa=$PHOTOVOTE_AMQP_EXCHANGE.a xb=$PHOTOVOTE_AMQP_EXCHANGE.b
# Debug logs name each version conflict, i.e. each race the check lost and ran again.
pva_start PHOTOVOTE_AMQP_QUEUE="$qa" PHOTOVOTE_AMQP_EXCHANGE="$xa" PHOTOVOTE_LOG_LEVEL=debug
start_second PHOTOVOTE_AMQP_QUEUE="$qb" PHOTOVOTE_AMQP_EXCHANGE="$xb" PHOTOVOTE_LOG_LEVEL=debug
wait_log "$pva_work/appender.log" consuming && wait_log "$pva_work/appender2.log" consuming
PHOTOVOTE_AMQP_QUEUE=$qa PHOTOVOTE_AMQP_EXCHANGE=$xa pva_publish "$pva_work/setup"
pva_wait_verdicts $((3 * n)) 30
PHOTOVOTE_AMQP_QUEUE=$qa PHOTOVOTE_AMQP_EXCHANGE=$xa pva_publish "$pva_work/warm-a" &
publisher=$!
PHOTOVOTE_AMQP_QUEUE=$qb PHOTOVOTE_AMQP_EXCHANGE=$xb pva_publish "$pva_work/warm-b"
wait "$publisher"
pva_wait_verdicts $((5 * n)) 30
PHOTOVOTE_AMQP_QUEUE=$qa PHOTOVOTE_AMQP_EXCHANGE=$xa pva_publish "$pva_work/x" &
publisher=$!
PHOTOVOTE_AMQP_QUEUE=$qb PHOTOVOTE_AMQP_EXCHANGE=$xb pva_publish "$pva_work/y"
wait "$publisher"
pva_check "race: every command gets a verdict" pva_wait_verdicts $((7 * n)) 60
pva_check "race: exactly one ballot per voter accepted, the other already_voted" test \
	"$(pva_sql "SELECT count(*) FROM (SELECT stream FROM audit_log WHERE type = 'BallotCreated'
		GROUP BY stream HAVING count(*) FILTER (WHERE status = 'appended') = 1
		AND count(*) FILTER (WHERE rule = 'already_voted') = 1) s")" = "$n"
race_streams()
{
	local e
	while read -r e; do
		[[ $("$pva_tool" stream "$e" | awk '$3 == "BallotCreated"' | wc -l) == 1 ]] ||
			return 1
		[[ $("$pva_tool" stream "$e" | awk 'NR != $1 + 1' | wc -l) == 0 ]] || return 1
	done <"$pva_work/elections.race"
}
pva_check "race: each stream holds one ballot, numbered without gaps" race_streams
pva_check "race: the audit log agrees with the streams on every number" test \
	"$(pva_sql "SELECT count(*) FROM audit_log WHERE status = 'appended'")" = $((6 * n))
echo "# race: $(cat "$pva_work/appender.log" "$pva_work/appender2.log" |
	grep -c 'expected version') version conflicts, checked again"
pva_stop
rc=$?
stop_second
pva_check "race: both appenders exit 0 and log no failure" test "$rc" = 0 -a $? = 0 -a \
	"$(cat "$pva_work/appender.log" "$pva_work/appender2.log" |
		grep -c -i 'fatal\|sanitizer\|runtime error')" = 0
exit 0
