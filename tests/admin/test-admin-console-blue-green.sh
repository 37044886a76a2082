#!/bin/bash
# Blue-green from the console, in tmux at 80x24, with the live projector running and photovote.fcgi
# behind lighttpd serving the reads: on the projection screen (4) the read model's containers
# are listed; B builds every election into a new container (asked first, with a progress line),
# S switches the API's reads and the projector to it (asked first; the projector lets go of the
# old one), D drops the newest retired one (asked first) but never the configured container.  Any key but y leaves everything as it was.
# An election written after the switch is projected into the new container and read through
# the API; the new container holds what a rebuild from scratch writes.
set -u
# shellcheck source=lib.sh
. "$top_srcdir/tests/admin/lib.sh"

if ! command -v tmux >/dev/null; then
	echo "1..0 # SKIP tmux missing (tests/install-deps.sh installs it)"
	exit 0
fi
echo "1..17"
if ! adm_setup cbluegreen || ! pvp_web; then
	echo "# servers unavailable"
	exit 77
fi
w=$pvp_work

pvp_generate a --elections 6 --voters 3 --seed 5
pvp_generate b --elections 1 --voters 2 --seed 9
pvp_append "$w/a.events"
pvp_start
pvp_wait_checkpoint $(($(wc -l <"$w/a.events") - 1)) >/dev/null

s=bg
adm_tmux_start $s 80 24
adm_on $s "Streams (6)" 30 >/dev/null
adm_keys $s 4
pvp_check "the projection screen lists the containers: the configured one, active" \
	eval "adm_on $s 'containers:' 15 && adm_on_re $s '^  elections +active +\\(configured\\)' 5"
pvp_check "... and B, S and D on the bottom line, within 80 columns" \
	eval "adm_on $s 'B:new  S:switch  D:drop' 5 && [[ \$(adm_line $s 24 | wc -m) -le 81 ]]"

adm_keys $s S
pvp_check "S with no container built: says so, nothing asked" \
	adm_on $s "no container is ready to switch to: B builds one" 5
adm_keys $s B
pvp_check "B asks first, naming the new container" \
	adm_on_re $s "Build every election into new container elections-[0-9]{8}-[0-9]{6}\\? y/n" 5
adm_keys $s n
pvp_check "... n: nothing done, no container recorded" \
	eval "adm_on $s 'nothing done' 5 && test -z \"\$(pvp_sql 'SELECT container FROM read_model_containers')\""
adm_keys $s B
adm_on $s "Build every election into new container" 5 >/dev/null
adm_keys $s y
head=$(($(wc -l <"$w/a.events") - 1))
pvp_check "... y: it builds every election into it, then says it is ready at the head and that S switches" \
	adm_on_re $s "container elections-[0-9]{8}-[0-9]{6} is ready at position $head; S switches to it" 90
green=$(pvp_sql "SELECT container FROM read_model_containers WHERE state = 'ready'")
echo "# the new container: ${green:-none}"
pvp_check "... recorded as ready; the reads and the projector stay on elections" \
	eval "[[ -n '$green' ]] && test \"\$(adm_state_of elections)\" = '' &&
		adm_on_re $s '^  $green +ready ' 15"

adm_keys $s S
pvp_check "S asks first, naming both containers" \
	adm_on $s "Switch reads and projector to $green (now elections)? y/n" 5
adm_keys $s y
pvp_check "... y: the live projector lets go, the read model is served from the new one" \
	adm_on $s "now served from $green; D drops elections" 90
pvp_check "... recorded: $green active, elections retired; the screen shows it" \
	eval "test \"\$(adm_state_of $green)\" = active && test \"\$(adm_state_of elections)\" = retired &&
		adm_on_re $s '^  $green +active ' 15 && adm_on_re $s '^  elections +retired ' 15"

# After the switch: a new election goes into the new container, and the API reads it.
pvp_append "$w/b.events"
eid=$(head -n 1 "$w/b.elections")
last=$(($(wc -l <"$w/a.events") + $(wc -l <"$w/b.events") - 1))
pvp_check "an election written after the switch is projected into $green" \
	adm_wait_position "$green" "$last"
code=$(pvp_get "elections/$eid" "$w/after.json")
pvp_check "... and read through the API (200)" test "$code" = 200

adm_keys $s D
pvp_check "D: the retired container is the configured one, which is kept: says so, nothing asked" \
	adm_on $s "no retired container to drop (the configured one, elections, is kept)" 5

# A second build and switch retire the first new container, which D then drops.
adm_keys $s B
adm_on_re $s "Build every election into new container elections-[0-9]{8}-[0-9]{6}\\? y/n" 5 >/dev/null
adm_keys $s y
adm_on_re $s "is ready at position [0-9]+; S switches to it" 90 >/dev/null
green2=$(pvp_sql "SELECT container FROM read_model_containers WHERE state = 'ready'")
adm_keys $s S
adm_on $s "Switch reads and projector to $green2 (now $green)? y/n" 5 >/dev/null
adm_keys $s y
pvp_check "a second container built and switched to: $green retired" \
	eval "adm_on $s 'now served from $green2; D drops $green' 90 &&
		test \"\$(adm_state_of $green)\" = retired"
adm_keys $s D
pvp_check "D asks first, naming the retired container" \
	adm_on $s "Drop container $green and all its documents for good? y/n" 5
adm_keys $s y
pvp_check "... y: dropped, and gone from the list" \
	eval "adm_on $s 'container $green dropped' 60 && test -z \"\$(adm_state_of $green)\" &&
		adm_off $s '  $green ' 15"
adm_keys $s q
adm_keys $s q
adm_exited $s 10
pvp_check "q quits: exit status 0" test "$(cat "$w/$s.rc" 2>/dev/null)" = 0
exit 0
