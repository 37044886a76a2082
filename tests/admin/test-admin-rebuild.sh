#!/bin/bash
# photovote-admin rebuild against real PostgreSQL and the Cosmos DB stand-in, with the event
# store of PVADM_BACKEND (postgres by default; esdb: the EventStoreDB stand-in): documents
# deleted or corrupted behind the projector's back are restored equal to the projector's own;
# rebuild --all into an empty container equals a projection made in one go; rebuilds while
# the projector runs and events arrive leave the documents equal to a projection in one go;
# Cosmos DB down exits 1 naming it.
set -u
# shellcheck source=lib.sh
. "$top_srcdir/tests/admin/lib.sh"

echo "1..25"
if ! adm_setup rebuild; then
	echo "# servers unavailable"
	exit 77
fi
w=$pvp_work
doc()
{
	python3 "$top_srcdir/tests/admin/cosmos-doc.py" "$PHOTOVOTE_COSMOS_ENDPOINT" \
		"$PHOTOVOTE_COSMOS_DATABASE" "$@"
}

pvp_generate a --elections 4 --voters 5 --deleted 1
mapfile -t elections <"$w/a.elections"
deleted=${elections[0]}
live=("${elections[@]:1}")
pvp_append "$w/a.events"
pvp_once
pvp_docs "$w/projector" "${elections[@]}"
pvp_check "the projector made the documents" pvp_same_as_fold "${live[@]}"

# Damage: a head deleted, a head renamed, a part deleted.
doc delete "${live[0]}" "${live[0]}" &&
	doc rename "${live[1]}" "tampered" &&
	doc delete "${live[2]}" "${live[2]}-voters-1"
pvp_docs "$w/damaged" "${elections[@]}"
pvp_check "the documents were damaged" eval '! cmp -s "$w/projector" "$w/damaged"'
adm_run "rebuild of the deleted head: exit 0" 0 "$adm" rebuild "${live[0]}"
pvp_check "... prints what it did" test "$(cat "$w/out")" = "rebuilt ${live[0]}"
adm_run "rebuild of the renamed head: exit 0" 0 "$adm" rebuild "${live[1]}"
adm_run "rebuild of the election missing a part: exit 0" 0 "$adm" rebuild "${live[2]}"
adm_run "rebuild of a deleted election: exit 0" 0 "$adm" rebuild "$deleted"
pvp_docs "$w/rebuilt" "${elections[@]}"
if ! cmp -s "$w/projector" "$w/rebuilt"; then
	diff <(cut -c1-300 "$w/projector") <(cut -c1-300 "$w/rebuilt") | head -10 | sed 's/^/#   /'
fi
pvp_check "rebuilt documents equal the projector's" cmp -s "$w/projector" "$w/rebuilt"

# rebuild --all into an empty container of another database.
other=$PHOTOVOTE_COSMOS_DATABASE-other
adm_run "rebuild --all into an empty database: exit 0" 0 \
	env PHOTOVOTE_COSMOS_DATABASE="$other" "$adm" rebuild --all
pvp_check "... a summary" \
	grep -q '^4 elections rebuilt, 0 failed, 0 left (.* events/s; .* Cosmos DB requests for .* documents)$' \
	"$w/out"
PHOTOVOTE_COSMOS_DATABASE=$other pvp_docs "$w/all" "${elections[@]}"
pvp_check "... documents equal the projector's" cmp -s "$w/projector" "$w/all"

# While the projector runs: new events arrive and every election is rebuilt, repeatedly.
pvp_start
pvp_generate b --elections 3 --voters 8 --deleted 1
mapfile -t more <"$w/b.elections"
total=$(($(wc -l <"$w/a.events") + $(wc -l <"$w/b.events")))
pvp_append "$w/b.events" &
appending=$!
rebuilds_ok=0
for _ in 1 2 3 4; do
	"$adm" rebuild --all >"$w/concurrent.out" 2>>"$w/concurrent.err" &&
		rebuilds_ok=$((rebuilds_ok + 1))
done
wait "$appending"
[ "$rebuilds_ok" = 4 ] || sed 's/^/#   /' "$w/concurrent.err"
pvp_check "rebuild --all while the projector runs: every run exits 0" test "$rebuilds_ok" = 4
pvp_check "the projector catches up" pvp_wait_checkpoint $((total - 1)) 60
pvp_stop
all=("${elections[@]}" "${more[@]}")
pvp_docs "$w/live" "${all[@]}"
pvp_once PHOTOVOTE_COSMOS_DATABASE="$PHOTOVOTE_COSMOS_DATABASE-one-go"
PHOTOVOTE_COSMOS_DATABASE=$PHOTOVOTE_COSMOS_DATABASE-one-go pvp_docs "$w/one-go" "${all[@]}"
if ! cmp -s "$w/one-go" "$w/live"; then
	diff <(cut -c1-300 "$w/one-go") <(cut -c1-300 "$w/live") | head -10 | sed 's/^/#   /'
fi
pvp_check "... documents equal a projection made in one go" cmp -s "$w/one-go" "$w/live"

port=$(adm_closed_port)
PHOTOVOTE_COSMOS_ENDPOINT=http://127.0.0.1:$port "$adm" rebuild "${live[0]}" >"$w/out" \
	2>"$w/err"
rc=$?
pvp_check "Cosmos DB down: rebuild exits 1 naming it" \
	eval '[[ $rc == 1 ]] && grep -q "Cosmos DB at http://127.0.0.1:$port" "$w/err"'

PHOTOVOTE_COSMOS_ENDPOINT=http://127.0.0.1:$port "$adm" rebuild --all >"$w/out" 2>"$w/err"
rc=$?
pvp_check "Cosmos DB down: rebuild --all exits 1 at once, one line naming the server" \
	eval '[[ $rc == 1 ]] && test "$(wc -l <"$w/err")" = 1 &&
		grep -q "^photovote-admin: rebuild: Cosmos DB at http://127.0.0.1:$port: " "$w/err"'

# Cancel and resume: SIGINT (130) and SIGTERM (143) stop a rebuild of every election after the
# one in hand; run again, it goes on from there; the documents end as a projection in one go.
resume=$PHOTOVOTE_COSMOS_DATABASE-resume
progress_done()
{
	pvp_sql "SELECT elections_done FROM rebuild_progress
		WHERE target = 'Election@$PHOTOVOTE_EVENTSTORE_BACKEND:$resume/elections'"
}
# interrupt SIGNAL DONE: starts rebuild --all into $resume, sends SIGNAL once DONE elections
# are done (saved); its exit status in $rc, its output in $w/out and $w/err.  The rebuild runs
# in 20 ms slices (SIGSTOP, SIGCONT) and is stopped while its progress is read, so the signal
# lands inside the run however fast the machine (polling a running rebuild, a quiet machine saw
# it finish all 40 elections between two looks).
interrupt()
{
	local pid n deadline=$((SECONDS + 60))
	env PHOTOVOTE_COSMOS_DATABASE="$resume" "$adm" rebuild --all >"$w/out" 2>"$w/err" &
	pid=$!
	while ((SECONDS < deadline)); do
		kill -STOP "$pid" 2>/dev/null || break
		n=$(progress_done)
		[[ -n $n ]] && ((n >= $2)) && break
		kill -CONT "$pid"
		sleep 0.02
	done
	kill "-$1" "$pid"
	kill -CONT "$pid" 2>/dev/null
	wait "$pid"
	rc=$?
	echo "# $1 after ${n:-no} elections: exit $rc; $(tr '\n' ' ' <"$w/err" | head -c 300)"
}
pvp_generate r --elections 40 --voters 4 --seed 5
mapfile -t relections <"$w/r.elections"
pvp_append "$w/r.events"
interrupt INT 2
pvp_check "SIGINT: exit 130" test "$rc" = 130
pvp_check "... says where it stopped and that a new run resumes" \
	grep -q '^photovote-admin: rebuild: cancelled after [0-9]* of [0-9]* elections; run it again to resume$' "$w/err"
pvp_check "... no progress line on stderr that is not a terminal" \
	eval '! grep -q $'"'"'\r'"'"' "$w/err"'
before=$(progress_done)
interrupt TERM $((before + 1))
pvp_check "SIGTERM: exit 143, having gone on from the saved position" \
	eval '[[ $rc == 143 ]] && grep -q ", resumed" "$w/out" && (( $(progress_done) > before ))'
adm_run "run again: exit 0" 0 env PHOTOVOTE_COSMOS_DATABASE="$resume" "$adm" rebuild --all
pvp_check "... resumed, and then nothing is saved any more" \
	eval 'grep -q ", resumed" "$w/out" && test -z "$(progress_done)"'
adm_run "rebuild --all --json: exit 0, one JSON object" 0 \
	env PHOTOVOTE_COSMOS_DATABASE="$resume" "$adm" rebuild --all --json
pvp_check "... with the figures" \
	eval 'jq -e ".outcome == \"done\" and .elections_rebuilt > 40 and .cosmos_requests > 0" "$w/out" >/dev/null'
pvp_stop
pvp_once PHOTOVOTE_COSMOS_DATABASE="$PHOTOVOTE_COSMOS_DATABASE-one-go"
all+=("${relections[@]}")
PHOTOVOTE_COSMOS_DATABASE=$PHOTOVOTE_COSMOS_DATABASE-one-go pvp_docs "$w/one-go" "${all[@]}"
PHOTOVOTE_COSMOS_DATABASE=$resume pvp_docs "$w/resumed" "${all[@]}"
pvp_check "the documents of the interrupted and resumed rebuild equal a projection in one go" \
	cmp -s "$w/one-go" "$w/resumed"
exit 0
