#!/bin/bash
# photovote-projector against real PostgreSQL and the Cosmos DB stand-in, with the event store
# of PVP_BACKEND (postgres by default; esdb: the EventStoreDB stand-in): whole elections
# generated straight into the store are projected into documents that give exactly the domain's
# fold; replays and rebuilds change nothing, and so does writing with one writer; a deleted election has no document; a projector
# killed with SIGKILL at several points and restarted ends with documents identical to those
# of a projection made in one go; a second projector waits for the lock and takes over;
# Cosmos DB answering 503 for a while delays the projection but skips nothing; SIGHUP is
# survived, SIGTERM exits 0.
set -u
# shellcheck source=lib.sh
. "$top_srcdir/tests/projector/lib.sh"

echo "1..23"
if ! pvp_setup main; then
	echo "# servers unavailable"
	exit 77
fi
pvp_generate a --elections 4 --voters 6 --deleted 1
mapfile -t elections <"$pvp_work/a.elections"
deleted=${elections[0]}
live=("${elections[@]:1}")
total=$(wc -l <"$pvp_work/a.events")
pvp_check "generated events appended to the store ($total)" pvp_append "$pvp_work/a.events"

pvp_check "--once projects the whole feed and exits 0" pvp_once
pvp_check "checkpoint at the last feed position" test "$(pvp_checkpoint)" = $((total - 1))
pvp_check "documents give the domain's fold in every view" pvp_same_as_fold "${live[@]}"
pvp_check "a deleted election has no document" test -z "$("$pvp_tool" docs "$deleted")"

# Replays: from the start of the feed, then an election rebuilt from its stream.
pvp_docs "$pvp_work/docs-1" "${elections[@]}"
pvp_sql "UPDATE projector_checkpoints SET position = -1"
: >"$pvp_work/projector.log"
pvp_once
pvp_docs "$pvp_work/docs-2" "${elections[@]}"
pvp_check "a replay of the whole feed changes no document" \
	cmp -s "$pvp_work/docs-1" "$pvp_work/docs-2"
pvp_check "a replay writes no document" \
	grep -q "; 0 head writes, 0 part writes" \
	"$pvp_work/projector.log"
# bench-projector.sh reads these two figures from the report line.
pvp_check "the report line counts Cosmos DB requests and the seconds spent folding and writing" \
	grep -Eq "; [0-9]+ Cosmos DB requests; [0-9]+\.[0-9]{2} s folding and writing$" \
	"$pvp_work/projector.log"
# One writer ([projector] writers = 1, each election after the other) into a database of its
# own: the same documents as the default four.
one=$PHOTOVOTE_COSMOS_DATABASE-one
PHOTOVOTE_COSMOS_DATABASE=$one pvp_once PHOTOVOTE_PROJECTOR_WRITERS=1
PHOTOVOTE_COSMOS_DATABASE=$one pvp_docs "$pvp_work/docs-one" "${elections[@]}"
pvp_check "one writer gives the same documents as four" \
	cmp -s "$pvp_work/docs-1" "$pvp_work/docs-one"
"$pvp_tool" rebuild "${live[0]}" && "$pvp_tool" rebuild "$deleted"
pvp_docs "$pvp_work/docs-3" "${elections[@]}"
pvp_check "a rebuild by replay gives the same documents" \
	cmp -s "$pvp_work/docs-1" "$pvp_work/docs-3"

# Live: the projector survives SIGHUP (it reopens the logs), follows the feed as events
# arrive, then stops on SIGTERM.
# The signal goes once the projector says it started (its handlers are set by then): sent
# earlier, SIGHUP's default action would end it, as it would any program still starting.
started=$(grep -c 'projector: started' "$pvp_work/projector.log")
pvp_start
for ((i = 0; i < 300; i++)); do
	(($(grep -c 'projector: started' "$pvp_work/projector.log") > started)) && break
	sleep 0.1
done
kill -HUP "$PROJECTOR_PID"
sleep 0.5
pvp_check "SIGHUP: the projector keeps running" kill -0 "$PROJECTOR_PID"
pvp_generate b --elections 2 --voters 4
mapfile -t more <"$pvp_work/b.elections"
pvp_append "$pvp_work/b.events"
total=$((total + $(wc -l <"$pvp_work/b.events")))
pvp_check "a running projector follows new events" pvp_wait_checkpoint $((total - 1)) 60
pvp_check "... into documents that give the fold" pvp_same_as_fold "${more[@]}"
# A stream deleted by hand: a rebuild (photovote-admin rebuild) removes its documents; created
# anew (its numbers go on), the running projector starts that election again at the new
# ElectionCreated instead of folding it into the old one.
again=${more[0]}
"$top_builddir/tests/appender/pv-appender-tool" delete-stream "$again" ||
	echo "# delete-stream failed"
"$pvp_tool" rebuild "$again"
pvp_check "a stream deleted by hand: a rebuild removes its documents" \
	test -z "$("$pvp_tool" docs "$again")"
jq -cn --arg id "$(cat /proc/sys/kernel/random/uuid)" --arg e "$again" \
	--arg at "$(date -u +%Y-%m-%dT%H:%M:%S.000Z)" \
	'{event_id: $id, type: "ElectionCreated", data: {election_id: $e, name: "Second life"},
	  metadata: {user: "new@example.org", admin: false, at: $at}}' |
	"$pvp_tool" append 2>/dev/null
total=$((total + 1))
pvp_check "a stream deleted by hand and created anew: the election starts again" \
	eval 'pvp_wait_checkpoint $((total - 1)) 60 && pvp_same_as_fold "$again" &&
		[[ $("$pvp_tool" view "$again" owner | jq -r .name) == "Second life" ]]'
start=$SECONDS
pvp_stop
rc=$?
pvp_check "SIGTERM: exit status 0, promptly" test "$rc" = 0 -a $((SECONDS - start)) -le 3

# SIGKILL at several points (after document writes, after a checkpoint), restarted each time,
# into a second Cosmos DB database; the result must equal the projection made in one go.
all=("${elections[@]}" "${more[@]}")
pvp_docs "$pvp_work/one-go" "${all[@]}"
killdb=$PHOTOVOTE_COSMOS_DATABASE-killed
kills=0
for fault in after_write:3 after_write:10 after_checkpoint:1 after_write:25 after_write:2; do
	pvp_once PHOTOVOTE_COSMOS_DATABASE="$killdb" PHOTOVOTE_PROJECTOR_BATCH_SIZE=16 \
		PHOTOVOTE_FAULT="$fault"
	[[ $? == 137 ]] && kills=$((kills + 1))
done
pvp_once PHOTOVOTE_COSMOS_DATABASE="$killdb" PHOTOVOTE_PROJECTOR_BATCH_SIZE=16
pvp_check "the projector was killed mid-stream ($kills of 5 runs)" test "$kills" -ge 4
PHOTOVOTE_COSMOS_DATABASE=$killdb pvp_docs "$pvp_work/killed" "${all[@]}"
pvp_check "killed and restarted: documents identical to a projection in one go" \
	cmp -s "$pvp_work/one-go" "$pvp_work/killed"

# One active projector: a second waits, and takes over when the first dies.
pvp_start
first=$PROJECTOR_PID
sleep 1
pvp_start
second=$PROJECTOR_PID
sleep 1.5
pvp_check "a second projector waits for the feed lock" \
	grep -q "another projector holds feed .*; waiting to take over" "$pvp_work/projector.log"
kill -KILL "$first"
wait "$first" 2>/dev/null
pvp_generate c --elections 1 --voters 3
mapfile -t third <"$pvp_work/c.elections"
pvp_append "$pvp_work/c.events"
total=$((total + $(wc -l <"$pvp_work/c.events")))
pvp_check "the waiting projector takes over and projects" pvp_wait_checkpoint $((total - 1)) 30
PROJECTOR_PID=$second

# Cosmos DB down for a while (503 from a fault proxy): nothing is checkpointed past what is
# written, and the projection catches up afterwards.
pvp_stop
python3 "$top_srcdir/tests/cosmos-client/fault-proxy.py" "$PV_TEST_COSMOS_URL" \
	"$pvp_work/proxy-port" 2>"$pvp_work/proxy.log" &
proxy=$!
pv_on_exit "kill $proxy 2>/dev/null; wait $proxy 2>/dev/null"
for _ in $(seq 100); do [[ -s $pvp_work/proxy-port ]] && break; sleep 0.05; done
proxy_url=http://127.0.0.1:$(cat "$pvp_work/proxy-port")
pvp_start PHOTOVOTE_COSMOS_ENDPOINT="$proxy_url"
sleep 0.5
curl -s -X POST --data '[{"status": 503, "times": 100000}]' "$proxy_url/__proxy/faults" >/dev/null
pvp_generate d --elections 2 --voters 3
mapfile -t fourth <"$pvp_work/d.elections"
before=$(pvp_checkpoint)
pvp_append "$pvp_work/d.events"
total=$((total + $(wc -l <"$pvp_work/d.events")))
sleep 3
pvp_check "Cosmos DB down: the checkpoint does not move" test "$(pvp_checkpoint)" = "$before"
curl -s -X POST "$proxy_url/__proxy/reset" >/dev/null
pvp_check "Cosmos DB back: the projection catches up, skipping nothing" \
	eval 'pvp_wait_checkpoint $((total - 1)) 30 && pvp_same_as_fold "${fourth[@]}" "${third[@]}"'
pvp_stop
pvp_check "the log names no unexpected failure" \
	test "$(grep -c -i 'fatal\|sanitizer\|runtime error\|does not fold' "$pvp_work/projector.log")" = 0
exit 0
