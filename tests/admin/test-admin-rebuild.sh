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

echo "1..15"
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
exit 0
