#!/bin/bash
# The console's rebuild by replay, in tmux at 80x24 with a Cosmos DB of the test's own: r
# rebuilds one election and R every one on a worker of their own, with a progress line
# (elections, a bar, events done/total, events/s, elapsed, ETA) while keys stay answered.
# Esc cancels: with Cosmos DB paused (SIGSTOP) once the rebuild has saved its first election,
# the run is certainly still going when Esc arrives; resumed (SIGCONT), it stops after the
# election in hand and says so; R again resumes where it stopped.  Cosmos DB unreachable stops
# a rebuild at once with one message naming the server.  Then `photovote-admin rebuild --all`
# itself on the same terminal: its progress line redrawn in place, Ctrl-C, and the run that
# resumes.
set -u
# shellcheck source=lib.sh
. "$top_srcdir/tests/admin/lib.sh"

if ! command -v tmux >/dev/null; then
	echo "1..0 # SKIP tmux missing (tests/install-deps.sh installs it)"
	exit 0
fi
echo "1..22"
if ! adm_setup crebuild; then
	echo "# servers unavailable"
	exit 77
fi
w=$pvp_work
adm_private_cosmos

n=40
pvp_generate g --elections $n --voters 3 --seed 11
pvp_append "$w/g.events"
events=$(wc -l <"$w/g.events")
first=$(sort "$w/g.elections" | head -1)
saved()
{
	pvp_sql "SELECT elections_done + elections_failed FROM rebuild_progress
		WHERE target = 'Election@$PHOTOVOTE_EVENTSTORE_BACKEND:$PHOTOVOTE_COSMOS_DATABASE/elections'"
}

# step_until_saved: Cosmos DB is paused; it runs 50 ms at a time until the rebuild has saved an
# election (then stays paused), so the run is certainly inside a later one however fast the
# machine (polling a running rebuild, a loaded machine saw it at 39 of 40).  Sets k.
step_until_saved()
{
	local deadline=$((SECONDS + 90))
	k=
	while ((SECONDS < deadline)); do
		k=$(saved)
		[[ -n $k ]] && ((k >= 1)) && return 0
		kill -CONT "$cosmos_pid"
		sleep 0.05
		kill -STOP "$cosmos_pid"
	done
	return 1
}

s=c1
adm_tmux_start $s 80 24
adm_on $s "Streams ($n)" 30 >/dev/null

# One election, Cosmos DB paused while it starts: the progress line says so, keys work.
kill -STOP "$cosmos_pid"
adm_keys $s r
pvp_check "r: a progress line while the rebuild starts, and Esc:cancel on the bottom line" \
	eval "adm_on_re $s '^rebuild: starting \\(event store, PostgreSQL, Cosmos DB\\), 0:[0-9]{2}' 15 &&
		adm_on $s 'Esc:cancel rebuild'"
adm_keys $s '?'
pvp_check "... keys are answered meanwhile (help opens)" adm_on $s "Keys on the Streams screen" 10
adm_keys $s q
kill -CONT "$cosmos_pid"
pvp_check "... ends with the result: the election, its events, the Cosmos DB requests" \
	adm_on_re $s "^rebuilt $first \\([0-9]+ events, [1-9][0-9]* Cosmos DB requests\\)" 60
pvp_check "... and the progress line goes" adm_off $s "Esc:cancel rebuild" 10

# Every election; paused once the first is saved: it is then inside an election.
kill -STOP "$cosmos_pid"
adm_keys $s R
step_until_saved
echo "# paused Cosmos DB with ${k:-no} elections saved"
re="^rebuild ([0-9]+)/$n \\[[# ]+\\] [0-9]+/$events events [0-9]+/s [0-9]+:[0-9]{2} ETA [0-9?:]+ *$"
pvp_check "R: the progress line: elections, a bar, events done/total, events/s, elapsed, ETA" \
	adm_on_re $s "$re" 15
shown=$(adm_screen $s | sed -nE "s|$re|\\1|p")
# The line may lag the saved position by one report (at most every 200 ms): shown <= saved.
pvp_check "... fits 80 columns, short of the end (${shown:-?} of $n shown, ${k:-?} saved)" \
	eval "[[ -n '$shown' ]] && ((shown < n)) &&
		adm_screen $s | grep -E '^rebuild ' | awk '{ exit length(\$0) > 80 }'"
adm_keys $s 4
pvp_check "... keys are answered while it runs: the projection screen opens and reads" \
	eval "adm_on $s 'photovote-admin  Projection' 10 && adm_on $s 'head of the feed:' 15"
adm_keys $s 1
adm_keys $s Escape
pvp_check "Esc: cancelling, after the election in hand" \
	eval "adm_on $s 'cancelling the rebuild: it stops after the election in hand' 10 &&
		adm_on_re $s '^cancelling [0-9]+/$n ' 10"
kill -CONT "$cosmos_pid"
cre="rebuild cancelled after ([0-9]+) of $n elections; R resumes it"
pvp_check "... then it says it was cancelled and that R resumes it" adm_on_re $s "$cre" 60
m=$(adm_screen $s | sed -nE "s|.*$cre.*|\\1|p")
pvp_check "... where it stopped (${m:-?} of $n) is what it saved, before the end" \
	eval "[[ -n '$m' ]] && ((m >= k && m >= shown && m < n)) && [[ \$(saved) == '$m' ]]"
pvp_check "... and the screens went on: still on the streams screen" adm_on $s "Streams ($n)" 5

adm_keys $s R
pvp_check "R again resumes: every election rebuilt, resumed after the $m saved" \
	adm_on_re $s "^rebuilt $n of $n elections, resumed after $m: [0-9]+ events/s, [0-9]+ Cosmos DB" 90
pvp_check "... and nothing is saved any more" test -z "$(saved)"
adm_keys $s q
adm_exited $s 10
pvp_check "q quits: exit status 0" test "$(cat "$w/$s.rc" 2>/dev/null)" = 0

# Cosmos DB unreachable: one message naming it, at once.
port=$(adm_closed_port)
s=c2
adm_tmux_start $s 80 24 "PHOTOVOTE_COSMOS_ENDPOINT=http://127.0.0.1:$port"
adm_on $s "Streams ($n)" 30 >/dev/null
adm_keys $s R
pvp_check "Cosmos DB unreachable: R stops with one message naming the server" \
	eval "adm_on_re $s '^rebuild: Cosmos DB at http://127.0.0.1:$port: ' 30 &&
		test \$(adm_screen $s | grep -o 'Cosmos DB at' | wc -l) = 1 &&
		adm_off $s 'Esc:cancel rebuild' 5"
adm_keys $s s
adm_on $s "streams sorted by" 10 >/dev/null
adm_keys $s r
pvp_check "... r too" adm_on_re $s "^rebuild: Cosmos DB at http://127.0.0.1:$port: " 30
adm_keys $s q
adm_exited $s 10

# The subcommand on a terminal (stderr is the tmux pane): one progress line redrawn in place.
# Cosmos DB is paused once the first election is saved, so the line is read mid-run.
s=c4
rm -f "$w/$s.rc"
kill -STOP "$cosmos_pid"
adm_tm new-session -d -s $s -x 80 -y 24 \
	"env TERM=xterm LANG=C.UTF-8 '$adm' rebuild --all --restart; echo \$? >'$w/$s.rc'; exec sleep 600"
step_until_saved
echo "# paused Cosmos DB with ${k:-no} elections saved"
pre="^([0-9]+)/$n elections [0-9]+/$events events [0-9]+/s [0-9]+:[0-9]{2} ETA [0-9?:]+ *$"
pvp_check "rebuild --all on a terminal: a progress line (elections, events done/total, events/s, elapsed, ETA)" \
	adm_on_re $s "$pre" 15
pvp_check "... one line, redrawn in place, within 79 columns" \
	eval "test \$(adm_screen $s | grep -cE '$pre') = 1 &&
		adm_screen $s | grep -E '$pre' | awk '{ exit length(\$0) > 79 }'"
adm_keys $s C-c
kill -CONT "$cosmos_pid"
adm_exited $s 60
pvp_check "Ctrl-C: exit status 130" test "$(cat "$w/$s.rc" 2>/dev/null)" = 130
# Lines longer than the pane wrap: read them joined.
joined() { adm_tm capture-pane -p -J -t "$1"; }
pvp_check "... the summary starts on a line of its own, then the way to resume" \
	eval "joined $s | grep -qE '^[0-9]+ elections rebuilt, 0 failed, [1-9][0-9]* left \\(' &&
		joined $s | grep -qE '^photovote-admin: rebuild: cancelled after [0-9]+ of $n elections; run it again to resume\$' ||
		{ joined $s | sed 's/^/#   | /'; false; }"
s=c5
rm -f "$w/$s.rc"
adm_tm new-session -d -s $s -x 80 -y 24 \
	"env TERM=xterm LANG=C.UTF-8 '$adm' rebuild --all; echo \$? >'$w/$s.rc'; exec sleep 600"
adm_exited $s 90
pvp_check "run again: exit 0, resumed, every election rebuilt" \
	eval "test \"\$(cat '$w/$s.rc' 2>/dev/null)\" = 0 &&
		joined $s | grep -qE '^[0-9]+ elections rebuilt, 0 failed, 0 left, resumed \\(' ||
		{ joined $s | sed 's/^/#   | /'; false; }"
pvp_check "... its last progress line stays above the summary (the line ended, not overwritten)" \
	adm_on_re $s "^$n/$n elections $events/$events events " 5
exit 0
