#!/bin/bash
# photovote-projector outliving its servers, on private PostgreSQL and Cosmos DB servers (so they
# may be stopped): PostgreSQL (event store and checkpoints) stopped while the projector works and
# started again; then with the esdb backend, the EventStoreDB stand-in hung (SIGSTOP) and
# answering 500 for a while.  Each time the projector stays alive, names the outage in its log,
# takes its lock again and ends with documents identical to those of a projection made in one go
# (no event skipped).
set -u
# shellcheck source=lib.sh
. "$top_srcdir/tests/projector/lib.sh"

echo "1..14"
if ! pv_servers_need_private postgres cosmos || ! pvp_setup outage private; then
	echo "# servers unavailable"
	exit 77
fi

# pvp_log_since LINE PATTERN: the projector log from line LINE on matches PATTERN.
pvp_log_since()
{
	tail -n +"$1" "$pvp_work/projector.log" | grep -q -- "$2"
}

pvp_log_lines()
{
	wc -l <"$pvp_work/projector.log"
}

# pvp_same_as_one_go NAME ELECTION...: the documents equal those of a projection made in one go
# (--once into a database of its own) of the whole feed.
pvp_same_as_one_go()
{
	local name=$1
	shift
	pvp_once PHOTOVOTE_COSMOS_DATABASE="$PHOTOVOTE_COSMOS_DATABASE-one-go" || return 1
	pvp_docs "$pvp_work/$name-live" "$@" || return 1
	PHOTOVOTE_COSMOS_DATABASE=$PHOTOVOTE_COSMOS_DATABASE-one-go \
		pvp_docs "$pvp_work/$name-one-go" "$@" || return 1
	[[ -s $pvp_work/$name-one-go ]] && cmp -s "$pvp_work/$name-one-go" "$pvp_work/$name-live"
}

# pvp_more NAME [gen-events.py options]: generates and appends events, adds the elections to
# $elections and the count to $total.
pvp_more()
{
	local name=$1
	shift
	pvp_generate "$name" "$@" || return 1
	mapfile -t -O "${#elections[@]}" elections <"$pvp_work/$name.elections"
	total=$((total + $(wc -l <"$pvp_work/$name.events")))
	pvp_append "$pvp_work/$name.events"
}

# --- PostgreSQL (the postgres event store and the checkpoints) goes away and comes back.
elections=()
total=0
pvp_more a --elections 2 --voters 4
pvp_start
pvp_check "postgres backend: the projector catches up" pvp_wait_checkpoint $((total - 1)) 30
mark=$(($(pvp_log_lines) + 1))
pvp_more b --elections 3 --voters 8
pv_server_stop postgres
sleep 3
pvp_check "PostgreSQL down: the projector stays alive" kill -0 "$PROJECTOR_PID"
pv_server_start postgres
pvp_more c --elections 2 --voters 4
pvp_check "PostgreSQL back: the projector catches up" pvp_wait_checkpoint $((total - 1)) 40
pvp_check "the log names the outage and the recovery" \
	eval 'pvp_log_since "$mark" "PostgreSQL.*retrying with backoff" &&
		pvp_log_since "$mark" "back after"'
pvp_check "the feed lock is taken again and the checkpoint read again" \
	pvp_log_since "$mark" "active for feed Election@postgres:"
pvp_stop
pvp_check "SIGTERM after the outage: exit status 0" test $? = 0
pvp_check "documents identical to a projection in one go" \
	pvp_same_as_one_go postgres "${elections[@]}"

# --- The EventStoreDB stand-in hangs (SIGSTOP, so it keeps its in-memory data), then answers
# 500 for a while.
export PHOTOVOTE_EVENTSTORE_BACKEND=esdb PHOTOVOTE_COSMOS_DATABASE=$PHOTOVOTE_COSMOS_DATABASE-esdb
export PHOTOVOTE_EVENTSTORE_TIMEOUT_MS=1000
pvp_standin
standin=$!
standin_url=$PHOTOVOTE_EVENTSTORE_URL
pv_on_exit "kill -CONT $standin 2>/dev/null"
elections=()
total=0
pvp_more e --elections 2 --voters 4
pvp_start
pvp_check "esdb backend: the projector catches up" pvp_wait_checkpoint $((total - 1)) 30
mark=$(($(pvp_log_lines) + 1))
pvp_more f --elections 3 --voters 8
kill -STOP "$standin"
sleep 4
pvp_check "event store hung: the projector stays alive and says so" \
	eval 'kill -0 "$PROJECTOR_PID" && pvp_log_since "$mark" "Timeout was reached\\|timed out"'
kill -CONT "$standin"
pvp_check "event store back: the projector catches up" pvp_wait_checkpoint $((total - 1)) 30

# The next 6 requests fail with 500: only the projector talks to the stand-in now.
mark=$(($(pvp_log_lines) + 1))
curl -sf -o /dev/null --data '{"fail_next": 6, "status": 500}' "$standin_url/_standin/faults"
for _ in $(seq 200); do
	curl -sf "$standin_url/_standin/faults" | grep -q '"fail_next": 0' && break
	sleep 0.1
done
pvp_check "event store answering 500: the projector retries through it and says so" \
	eval 'kill -0 "$PROJECTOR_PID" &&
		pvp_log_since "$mark" "event store: .*500.*retrying with backoff"'
pvp_more g --elections 2 --voters 4
pvp_check "event store healthy again: the projector catches up" \
	pvp_wait_checkpoint $((total - 1)) 30
pvp_stop
pvp_check "documents identical to a projection in one go (esdb)" \
	pvp_same_as_one_go esdb "${elections[@]}"
# PostgreSQL's own FATAL messages are expected above; an error-level line of the projector is not.
pvp_check "the log names no unexpected failure" \
	test "$(grep -c -i 'photovote-projector error \|sanitizer\|runtime error\|does not fold' \
		"$pvp_work/projector.log")" = 0
exit 0
