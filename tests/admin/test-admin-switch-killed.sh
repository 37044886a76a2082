#!/bin/bash
# A blue-green switch cut off half-way, and the programs around it killed: `rebuild --switch
# green` is killed with SIGKILL while it waits for the projector (paused with SIGSTOP) to let
# go of the live container, then the projector is killed with SIGKILL while green is
# 'switching' and started again.  Meanwhile the old container is still served and stands
# still, and no projector writes either container; running the switch again finishes it, the
# projector goes on in green with every event appended meanwhile, the API reads green, and
# green equals a rebuild from scratch.
set -u
# shellcheck source=lib.sh
. "$top_srcdir/tests/admin/lib.sh"

echo "1..14"
if ! adm_setup switchkilled || ! pvp_web; then
	echo "# servers unavailable"
	exit 77
fi
w=$pvp_work

pvp_generate a --elections 8 --voters 5 --deleted 1
pvp_generate b --elections 6 --voters 4 --seed 5
pvp_append "$w/a.events"
pvp_start
adm_wait_position elections $(($(wc -l <"$w/a.events") - 1))
adm_run "rebuild --all --into green: exit 0" 0 "$adm" rebuild --all --into green

# An election the API reads now (not the deleted one), and its answer.
for e in $(cat "$w/a.elections"); do
	[[ $(pvp_get "elections/$e" "$w/before") == 200 ]] && break
done

# The projector paused: it cannot let go of its lock, so the switch waits for it.
kill -STOP "$PROJECTOR_PID"
pv_on_exit "kill -CONT $PROJECTOR_PID 2>/dev/null"
"$adm" rebuild --switch green >"$w/switch1.out" 2>&1 &
switch=$!
for _ in $(seq 150); do
	[[ $(adm_state_of green) == switching ]] && break
	sleep 0.1
done
pvp_check "the switch waits for the paused projector: green is 'switching'" \
	test "$(adm_state_of green)" = switching
kill -KILL "$switch"
wait "$switch" 2>/dev/null
pvp_check "killed half-way: green stays 'switching', the configured container still served" \
	test "$(adm_state_of green)" = switching -a -z "$(adm_state_of elections)"
code=$(pvp_get "elections/$e" "$w/got")
pvp_check "the API still reads the old container: 200, the same answer" \
	eval 'test "$code" = 200 && cmp -s "$w/before" "$w/got"'

# The projector resumed, then killed while green is 'switching', and started again: it waits.
kill -CONT "$PROJECTOR_PID"
pvp_append "$w/b.events"
for _ in $(seq 100); do
	grep -q 'moves to another container; letting go' "$w/projector.log" && break
	sleep 0.1
done
pvp_check "the resumed projector lets go of the old container" \
	grep -q 'moves to another container; letting go' "$w/projector.log"
old_at=$(adm_position_of elections) green_at=$(adm_position_of green)
waits() { grep -c 'being switched to another container; waiting' "$w/projector.log"; }
before=$(waits)
kill -KILL "$PROJECTOR_PID"
wait "$PROJECTOR_PID" 2>/dev/null
pvp_start
for _ in $(seq 100); do
	(($(waits) > before)) && break
	sleep 0.1
done
pvp_check "killed and started again, the projector waits for the switch" test "$(waits)" -gt "$before"
sleep 1
pvp_check "meanwhile neither container moves" \
	test "$(adm_position_of elections)" = "$old_at" -a "$(adm_position_of green)" = "$green_at"

# The switch run again finishes what the killed one began.
adm_run "rebuild --switch green again: exit 0" 0 "$adm" rebuild --switch green
pvp_check "green is active, elections retired" \
	test "$(adm_state_of green)" = active -a "$(adm_state_of elections)" = retired
total=$(($(wc -l <"$w/a.events") + $(wc -l <"$w/b.events")))
pvp_check "the restarted projector goes on in green with every event" \
	adm_wait_position green $((total - 1))
e=$(head -n 1 "$w/b.elections")
code=$(pvp_get "elections/$e" "$w/got")
[[ $code == 200 ]] || echo "# GET /elections/$e: $code $(head -c 300 "$w/got")"
pvp_check "the API reads green: an election appended during the switch" test "$code" = 200
pvp_check "the old container stood still" test "$(adm_position_of elections)" = "$old_at"

pvp_stop
adm_check_same_as_scratch green "$w/a.elections" "$w/b.elections"
exit 0
