#!/bin/bash
# photovote-appender against real PostgreSQL and RabbitMQ, with the event store backend of
# PVA_BACKEND (postgres by default; esdb: the EventStoreDB stand-in): whole elections through the
# queue, verdicts in the audit log, accepted events in the stream in order, poison messages in
# the dead-letter queue with their reason, redelivered duplicates stored once, SIGHUP is
# survived, SIGTERM exits 0.
set -u
# shellcheck source=lib.sh
. "$top_srcdir/tests/appender/lib.sh"

echo "1..15"
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

# A stream deleted by hand (soft), the appender stopped meanwhile (its cache would still
# know the election): the next ElectionCreated for its id brings the stream back, numbered on
# from its last event (as EventStoreDB does), and what follows is judged against the new
# election alone: the old owner is a stranger to it.
pva_stop
again=$(head -n 1 "$pva_work/elections")
last=$("$pva_tool" stream "$again" | tail -n 1 | cut -d' ' -f1)
old_owner=owner-${again,,}@example.org
"$pva_tool" delete-stream "$again" || echo "# delete-stream failed"
pva_start
python3 - "$again" "$old_owner" >"$pva_work/again" <<'PY'
import json, sys, time, uuid
eid, old_owner = sys.argv[1:]
at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
for kind, user, data in (
        ("ElectionCreated", "new@example.org", {"name": "Second life"}),
        ("CompetitionAdded", "new@example.org",
         {"competition_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "name": "Portraits"}),
        ("ElectionNameChanged", old_owner, {"name": "Mine again"})):
    print(json.dumps({"event_id": str(uuid.uuid4()), "type": kind,
                      "data": dict(election_id=eid, **data),
                      "metadata": {"user": user, "admin": False, "at": at}},
                     separators=(",", ":")))
PY
mapfile -t again_ids < <(jq -r .event_id "$pva_work/again")
pva_publish "$pva_work/again"
pva_wait_verdicts $((total + 5)) 30
pva_check "a deleted stream comes back with the next ElectionCreated, numbered on from $last" \
	test "$("$pva_tool" stream "$again")" = \
	"$((last + 1)) ${again_ids[0]} ElectionCreated
$((last + 2)) ${again_ids[1]} CompetitionAdded"
pva_check "its verdicts: appended at those numbers; the old owner is a stranger" \
	test "$(pva_sql "SELECT concat_ws(' ', status, number, rule) FROM audit_log
		WHERE event_id IN ('${again_ids[0]}', '${again_ids[1]}', '${again_ids[2]}')
		ORDER BY received, number NULLS LAST")" = \
	"appended $((last + 1))
appended $((last + 2))
rejected not_owner"

pva_stop
rc=$?
pva_check "SIGTERM: exit status 0" test "$rc" = 0
pva_check "the log names no unexpected failure (nor a channel the broker closed)" \
	test "$(grep -c -i 'fatal\|sanitizer\|runtime error\|closed the channel' \
		"$pva_work/appender.log")" = 0
exit 0
