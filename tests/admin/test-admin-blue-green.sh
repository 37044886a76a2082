#!/bin/bash
# Blue-green rebuild under live load, against real PostgreSQL, the Cosmos DB stand-in, the
# projector and photovote.fcgi behind lighttpd: while events are appended and the API is read
# throughout, `rebuild --all --into green` builds a second container and catches up, and
# `rebuild --switch green` moves the API's reads and the projector to it.  Not one read fails,
# no election's version goes back, no event is missed (the projector follows on in green), the
# switch survives restarts of the projector and of photovote.fcgi, the old container is kept
# until `rebuild --drop`, and green equals a rebuild from scratch.
set -u
# shellcheck source=lib.sh
. "$top_srcdir/tests/admin/lib.sh"

echo "1..18"
if ! adm_setup bluegreen || ! pvp_web; then
	echo "# servers unavailable"
	exit 77
fi
w=$pvp_work

# Before: elections projected into the configured container "elections".
pvp_generate a --elections 12 --voters 6 --deleted 1
pvp_generate b --elections 12 --voters 6 --seed 7
pvp_generate c --elections 4 --voters 3 --seed 11
cat "$w/a.elections" "$w/b.elections" >"$w/ids"
pvp_append "$w/a.events"
pvp_start
adm_wait_position elections $(($(wc -l <"$w/a.events") - 1))

# Load: b's events appended a few at a time, reads of a's and b's elections, throughout.
split -n l/60 "$w/b.events" "$w/b.part."
(
	for f in "$w"/b.part.*; do
		pvp_append "$f" || echo "append $f failed" >>"$w/writer.err"
		sleep 0.3
	done
) &
writer=$!
python3 "$top_srcdir/tests/admin/bg-reader.py" "$PVP_BASE" "$PVP_AUTH" "$w/ids" "$w/stop" \
	"$w/reads" &
reader=$!

adm_run "rebuild --all --into green while events arrive: exit 0" 0 \
	"$adm" rebuild --all --into green
pvp_check "... says the container is ready and how to switch" \
	grep -q '^container green is ready at feed position .*rebuild --switch green$' "$w/out"
pvp_check "... green is 'ready', the live container untouched" \
	test "$(adm_state_of green)" = ready -a -z "$(adm_state_of elections)"
adm_run "rebuild --switch green while events arrive and the API is read: exit 0" 0 \
	"$adm" rebuild --switch green
pvp_check "... while the writer was still appending" kill -0 "$writer"
pvp_check "... green is active, elections retired (kept)" \
	test "$(adm_state_of green)" = active -a "$(adm_state_of elections)" = retired
old_at=$(adm_position_of elections)
wait "$writer"
total=$(($(wc -l <"$w/a.events") + $(wc -l <"$w/b.events")))
pvp_check "the projector follows on in green: every event" adm_wait_position green $((total - 1))
sleep 1
touch "$w/stop"
wait "$reader"
sed 's/^/#   /' "$w/reads"
pvp_check "reads throughout: none failed, no version went back" \
	grep -q '^reads [1-9][0-9]* failed 0 regressions 0$' "$w/reads"
pvp_check "the projector logged the switch" grep -q 'served from green now' "$w/projector.log"
pvp_check "status follows the switch: green's feed, no lag" \
	eval 'test "$(adm_status_field projector_feed)" = "$(adm_feed_of green)" &&
		test "$(adm_status_field projector_lag)" = 0'
pvp_check "the old container stands still after the switch" \
	test "$(adm_position_of elections)" = "$old_at"

# Restarts: the projector and photovote.fcgi both stay on green.
pvp_stop
pvp_start
pvp_append "$w/c.events"
total=$((total + $(wc -l <"$w/c.events")))
pvp_check "after a restart the projector writes green" adm_wait_position green $((total - 1))
kill "$(cat "$w/lighttpd.pid")" 2>/dev/null
sleep 0.5
pvp_web >"$w/web.out" 2>&1 || sed 's/^/#   pvp_web: /' "$w/web.out"
e=$(head -n 1 "$w/c.elections")
code=$(pvp_get "elections/$e" "$w/got")
[[ $code == 200 ]] || echo "# GET /elections/$e: $code $(head -c 300 "$w/got")"
pvp_check "after a restart the API reads green (an election only green has)" test "$code" = 200

# green equals a rebuild from scratch.
pvp_stop
adm_check_same_as_scratch green "$w/a.elections" "$w/b.elections" "$w/c.elections"

# Drop: not the configured container, without --yes nothing; then the old one goes.
adm_run "rebuild --drop of the configured container: exit 1" 1 \
	"$adm" rebuild --drop elections --yes
adm_run "rebuild --drop without --yes: exit 2, nothing dropped" 2 \
	env PHOTOVOTE_COSMOS_CONTAINER=green "$adm" rebuild --drop elections
adm_run "rebuild --drop elections once the configuration names green: exit 0" 0 \
	env PHOTOVOTE_COSMOS_CONTAINER=green "$adm" rebuild --drop elections --yes
exit 0
