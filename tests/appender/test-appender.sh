#!/bin/bash
# photovote-appender against real PostgreSQL and RabbitMQ, with the event store backend of
# PVA_BACKEND (postgres by default; esdb: the EventStoreDB stand-in): whole elections through the
# queue, verdicts in the audit log, accepted events in the stream in order, poison messages in
# the dead-letter queue with their reason, redelivered duplicates stored once, SIGHUP is
# survived, SIGTERM exits 0.
set -u
# shellcheck source=lib.sh
. "$top_srcdir/tests/appender/lib.sh"

echo "1..17"
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
pva_eventually 30 pva_queue_is dead-count 3
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
# All taken from the queue, then a moment for the last ones in hand (nothing to wait for
# when nothing happens).
pva_eventually 30 pva_queue_is pending 0
sleep 1
all_streams >"$pva_work/streams-after"
pva_check "republished commands are not stored twice" \
	cmp -s "$pva_work/streams-before" "$pva_work/streams-after"
pva_check "every republished command was acked" test \
	"$(pva_verdicts)" = $((total + 2)) -a "$("$pva_tool" pending)" = 0
pva_check "verdicts unchanged after the duplicates" pva_check_verdicts

# envelope TYPE USER DATA-JSON: a command as the API publishes it, on one line.
envelope()
{
	jq -cn --arg id "$(cat /proc/sys/kernel/random/uuid)" --arg type "$1" --arg user "$2" \
		--argjson data "$3" --arg at "$(date -u +%Y-%m-%dT%H:%M:%S.000Z)" \
		'{event_id: $id, type: $type, data: $data,
		  metadata: {user: $user, admin: false, at: $at}}'
}
ulid() { python3 -c 'import os; print("01J" + "".join("0123456789ABCDEFGHJKMNPQRSTVWXYZ"[b % 32] for b in os.urandom(23)))'; }
id_of() { jq -r .event_id <<<"$1"; }
verdict_of() { pva_sql "SELECT concat_ws(' ', status, number, rule) FROM audit_log WHERE event_id = '$1'"; }
verdicts=$((total + 2))

# What another writer appended (another appender after a failover, an operator) is not in this
# appender's cache: a command the cache alone would reject (a candidate for a competition it
# has not seen) is judged on the stream and accepted.
e3=$(ulid) comp=$(ulid)
created=$(envelope ElectionCreated owner3@example.org "{\"election_id\":\"$e3\",\"name\":\"Third\"}")
pva_publish <(echo "$created")
pva_wait_verdicts $((verdicts += 1)) 30
envelope CompetitionAdded owner3@example.org \
	"{\"election_id\":\"$e3\",\"competition_id\":\"$comp\",\"name\":\"Behind\"}" |
	"$top_builddir/tests/projector/pv-projector-tool" append 2>/dev/null ||
	echo "# appending behind the appender's back failed"
cand=$(envelope CandidateAdded owner3@example.org \
	"{\"election_id\":\"$e3\",\"competition_id\":\"$comp\",\"candidate_id\":\"$(ulid)\",\"name\":\"Seen\"}")
pva_publish <(echo "$cand")
pva_wait_verdicts $((verdicts += 1)) 30
pva_check "a command is judged on the stream, not on a cache another writer made stale" \
	test "$(verdict_of "$(id_of "$created")"); $(verdict_of "$(id_of "$cand")")" = \
	"appended 0; appended 2"

# A stream deleted by hand (soft) while the appender runs and caches its election: the next
# ElectionCreated for its id brings the stream back, numbered on from its last event (as
# EventStoreDB does), and what follows is judged against the new election alone: the old
# owner is a stranger to it.
again=$(head -n 1 "$pva_work/elections")
last=$("$pva_tool" stream "$again" | tail -n 1 | cut -d' ' -f1)
"$pva_tool" delete-stream "$again" || echo "# delete-stream failed"
{
	envelope ElectionCreated new@example.org "{\"election_id\":\"$again\",\"name\":\"Second life\"}"
	envelope CompetitionAdded new@example.org \
		"{\"election_id\":\"$again\",\"competition_id\":\"$(ulid)\",\"name\":\"Portraits\"}"
	envelope ElectionNameChanged "owner-${again,,}@example.org" \
		"{\"election_id\":\"$again\",\"name\":\"Mine again\"}"
} >"$pva_work/again"
mapfile -t again_ids < <(jq -r .event_id "$pva_work/again")
pva_publish "$pva_work/again"
pva_wait_verdicts $((verdicts += 3)) 30
pva_check "a deleted stream comes back with the next ElectionCreated, numbered on from $last" \
	test "$("$pva_tool" stream "$again")" = \
	"$((last + 1)) ${again_ids[0]} ElectionCreated
$((last + 2)) ${again_ids[1]} CompetitionAdded"
pva_check "its verdicts: appended at those numbers; the old owner is a stranger" \
	test "$(verdict_of "${again_ids[0]}"); $(verdict_of "${again_ids[1]}"); $(verdict_of "${again_ids[2]}")" = \
	"appended $((last + 1)); appended $((last + 2)); rejected not_owner"

# Deleted for good while the appender caches the election: stream_deleted, not the cache's
# verdict (closed), and not retried forever.
gone=$(sed -n 2p "$pva_work/elections")
"$pva_tool" delete-stream "$gone" hard || echo "# delete-stream hard failed"
late=$(envelope ElectionNameChanged "owner-${gone,,}@example.org" \
	"{\"election_id\":\"$gone\",\"name\":\"Too late\"}")
pva_publish <(echo "$late")
pva_wait_verdicts $((verdicts += 1)) 30
pva_check "a stream deleted for good: rejected stream_deleted" \
	test "$(verdict_of "$(id_of "$late")")" = "rejected stream_deleted"

pva_stop
rc=$?
pva_check "SIGTERM: exit status 0" test "$rc" = 0
pva_check "the log names no unexpected failure (nor a channel the broker closed)" \
	test "$(grep -c -i 'fatal\|sanitizer\|runtime error\|closed the channel' \
		"$pva_work/appender.log")" = 0
exit 0
