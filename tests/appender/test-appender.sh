#!/bin/bash
# photovote-appender against real PostgreSQL and RabbitMQ, with the event store backend of
# PVA_BACKEND (postgres by default; esdb: the EventStoreDB stand-in): whole elections through the
# queue, verdicts in the audit log, accepted events in the stream in order, poison messages in
# the dead-letter queue with their reason, redelivered duplicates stored once, SIGHUP is
# survived, SIGTERM exits 0.
set -u
# shellcheck source=lib.sh
. "$top_srcdir/tests/appender/lib.sh"

echo "1..13"
if ! pva_setup main; then
	echo "# servers unavailable"
	exit 77
fi
pva_generate 3
total=$(wc -l <"$pva_work/messages")

pva_start
pva_check "commands published with confirms" pva_publish
pva_check "every command gets a verdict ($total)" pva_wait_verdicts "$total" 60
pva_check "verdicts and rules as expected" pva_check_verdicts
pva_check "streams hold exactly the accepted events, in order" pva_check_streams
all_streams()
{
	local e
	while read -r e; do "$pva_tool" stream "$e" || return 1; done <"$pva_work/elections"
}
all_streams >"$pva_work/streams-before"
pva_check "rejected commands are not in any stream" test "$(pva_sql "SELECT event_id FROM
	audit_log WHERE status = 'rejected'" | grep -c -F -f - "$pva_work/streams-before")" = 0

# Poison: not JSON, an unknown type, no election id (the last two carry a valid event id and
# get a "malformed" verdict so the API does not say "pending" forever).
bogus=$(python3 -c 'import uuid; print(uuid.uuid4())')
noelection=$(python3 -c 'import uuid; print(uuid.uuid4())')
{
	echo 'this is { not json'
	echo '{"event_id":"'"$bogus"'","type":"Bogus","data":{"election_id":"01ARZ3NDEKTSV4RRFFQ69G5FAV"},"metadata":{"user":"a@b.c","admin":false,"at":"2024-01-01T00:00:00Z"}}'
	echo '{"event_id":"'"$noelection"'","type":"ElectionCreated","data":{"name":"x"},"metadata":{"user":"a@b.c","admin":false,"at":"2024-01-01T00:00:00Z"}}'
} >"$pva_work/poison"
pva_publish "$pva_work/poison"
pva_wait_verdicts $((total + 2)) 30
sleep 0.5
"$pva_tool" dead-letters >"$pva_work/dead"
pva_check "poison messages end in the dead-letter queue with their reason" \
	test "$(wc -l <"$pva_work/dead")" = 3 -a \
	"$(grep -c 'not JSON' "$pva_work/dead")" = 1 -a \
	"$(grep -c 'unknown event type' "$pva_work/dead")" = 1 -a \
	"$(grep -c 'election_id' "$pva_work/dead")" -ge 1
pva_check "malformed commands with an event id are recorded as rejected" test \
	"$(pva_sql "SELECT count(*) FROM audit_log WHERE kind = 'malformed'
		AND event_id IN ('$bogus', '$noelection')")" = 2

# SIGHUP reopens the logs and nothing else: the appender lives on and handles the
# duplicates below.
kill -HUP "$APPENDER_PID"
sleep 0.5
pva_check "SIGHUP: the appender keeps running" kill -0 "$APPENDER_PID"

# Duplicates (a publisher that retried, a redelivery): nothing stored twice, nothing changed.
pva_publish
sleep 2
all_streams >"$pva_work/streams-after"
pva_check "republished commands are not stored twice" \
	cmp -s "$pva_work/streams-before" "$pva_work/streams-after"
pva_check "every republished command was acked" test \
	"$(pva_verdicts)" = $((total + 2)) -a "$("$pva_tool" pending)" = 0
pva_check "verdicts unchanged after the duplicates" pva_check_verdicts

pva_stop
rc=$?
pva_check "SIGTERM: exit status 0" test "$rc" = 0
pva_check "the log names no unexpected failure" \
	test "$(grep -c -i 'fatal\|sanitizer\|runtime error' "$pva_work/appender.log")" = 0
exit 0
