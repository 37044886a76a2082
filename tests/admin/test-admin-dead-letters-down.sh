#!/bin/bash
# photovote-admin dead-letters requeue while RabbitMQ goes down under it (a private broker,
# stopped half-way and started again): the requeue exits 1 naming the broker, and after the
# restart every dead letter is in the dead-letter queue or on the appender's queue, none lost;
# a second requeue then moves the rest.  Only RabbitMQ is needed.
set -u
# shellcheck source=../servers/servers.sh
. "$top_srcdir/tests/servers/servers.sh"
# shellcheck source=../lib/worker-tests.sh
. "$top_srcdir/tests/lib/worker-tests.sh"

echo "1..7"
if ! pv_servers_need_private rabbitmq; then
	echo "# servers unavailable"
	exit 77
fi
w=$(mktemp -d "${TMPDIR:-/tmp}/pvadm-down.XXXXXX")
pv_on_exit "rm -rf $w"
adm=$top_builddir/admin/photovote-admin
tool=$top_builddir/tests/admin/pv-dlq-tool
export PHOTOVOTE_AMQP_HOST=127.0.0.1 PHOTOVOTE_AMQP_PORT=$PV_TEST_AMQP_PORT
export PHOTOVOTE_AMQP_USER=guest PHOTOVOTE_AMQP_PASSWORD=guest PHOTOVOTE_AMQP_VHOST=/
export PHOTOVOTE_AMQP_EXCHANGE=pvadm.down.$$.events PHOTOVOTE_AMQP_QUEUE=pvadm.down.$$.appender
export PHOTOVOTE_AMQP_DEAD_LETTER_EXCHANGE=pvadm.down.$$.dead
export PHOTOVOTE_AMQP_DEAD_LETTER_QUEUE=pvadm.down.$$.dead
q=$PHOTOVOTE_AMQP_QUEUE
dlq=$PHOTOVOTE_AMQP_DEAD_LETTER_QUEUE
n=5000

# Enough dead letters that the requeue (a confirm round trip each) is still running when the
# broker stops.
python3 -c 'import sys
for i in range(int(sys.argv[1])):
    print("{\"event_id\":\"00000000-0000-4000-8000-%012d\",\"type\":\"ElectionCreated\",\"data\":{\"name\":\"E\",\"election_id\":\"01BX5ZZKBKACTAV9WEVGEMMW%02d\"},\"metadata\":{\"user\":\"o@example.org\"}}" % (i, i % 100))' \
	"$n" >"$w/cmds"
python3 -c 'import sys
print("\n".join("00000000-0000-4000-8000-%012d" % i for i in range(int(sys.argv[1]))))' \
	"$n" >"$w/all-ids"
"$tool" publish <"$w/cmds" && "$tool" dead-letter "$n"
pv_tap_check "$n dead letters" test "$("$tool" depth "$dlq")" = "$n"

"$adm" dead-letters requeue >"$w/out" 2>"$w/err" &
pid=$!
deadline=$((SECONDS + 60))
while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)) &&
	(($("$tool" depth "$q" 2>/dev/null || echo 0) < 200)); do
	sleep 0.05
done
pv_server_stop rabbitmq
wait "$pid"
rc=$?
echo "# requeue: $(cat "$w/out")"
pv_tap_check "broker stopped half-way: the requeue exits 1" test "$rc" = 1
pv_tap_check "broker stopped half-way: the message names the broker, and what was done" eval \
	'grep -q "^photovote-admin: dead-letters requeue: RabbitMQ at 127.0.0.1:$PV_TEST_AMQP_PORT: [^:]" "$w/err" &&
	grep -q "^[0-9]* dead letter(s) requeued before the failure$" "$w/out"'
sed 's/^/#   /' "$w/err"
pv_server_start rabbitmq

# ids QUEUE: the message ids QUEUE holds (a peek).
ids()
{
	"$tool" dump "$1" keep | python3 -c 'import json, sys
print("\n".join(json.loads(l)["properties"]["message_id"] for l in sys.stdin))'
}
# all_there FILE...: together the files hold every id, none other; prints the duplicates.
all_there()
{
	sort "$@" >"$w/both"
	echo "# $(wc -l <"$w/both") messages for $n ids"
	sort -u "$w/both" | cmp -s - "$w/all-ids"
}
ids "$dlq" >"$w/dead"
ids "$q" >"$w/moved"
echo "# after the restart: $(wc -l <"$w/moved") requeued, $(wc -l <"$w/dead") dead letters"
pv_tap_check "after the restart: every dead letter in one queue or the other, none lost" \
	all_there "$w/dead" "$w/moved"
"$adm" dead-letters requeue >"$w/out" 2>"$w/err"
rc=$?
pv_tap_check "the requeue again: exit 0" test "$rc" = 0
echo "# requeue: $(cat "$w/out")"
ids "$q" >"$w/moved"
pv_tap_check "then every one is on the appender's queue" all_there "$w/moved"
pv_tap_check "and the dead-letter queue is empty" test "$("$tool" depth "$dlq")" = 0
exit 0
