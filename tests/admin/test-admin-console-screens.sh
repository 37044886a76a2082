#!/bin/bash
# The console's other screens in tmux at 80x24 (TERM=xterm): the audit log (2) newest first,
# filtered with f (status=, user=), a row's detail with its rule and reason escaped; an event's
# audit row in its detail (verdict, user, source, correlation id, received, recorded); the dead
# letters (3) with reason and age, one inspected (headers and body escaped), requeued one and
# purged all only after a confirmation that names how many, n refusing; the projection (4):
# head, checkpoint, lag in events and seconds, the parked elections; NO_COLOR honoured.
set -u
# shellcheck source=lib.sh
. "$top_srcdir/tests/admin/lib.sh"

if ! command -v tmux >/dev/null; then
	echo "1..0 # SKIP tmux missing (tests/install-deps.sh installs it)"
	exit 0
fi
echo "1..19"
if ! adm_setup screens; then
	echo "# servers unavailable"
	exit 77
fi
w=$pvp_work
e1=$adm_e1
tool=$top_builddir/tests/admin/pv-dlq-tool
adm_seed "$w/seed"
pvp_append "$w/seed"
pvp_once
# Two verdicts as the appender records them: event 2 appended, a third command rejected, its
# reason holding an escape sequence.
pvp_sql "INSERT INTO audit_log (event_id, stream, number, type, user_name, source,
	correlation_id, accepted, received, recorded, status)
	VALUES ('00000000-0000-4000-8000-000000000002', 'Election-$e1', 1, 'ElectionNameChanged',
	'o@example.org', 'api', 'corr-42', now() - interval '3 s', now() - interval '2 s',
	now() - interval '1 s', 'appended');
	INSERT INTO audit_log (event_id, stream, type, user_name, source, correlation_id, received,
	recorded, status, kind, rule, reason)
	VALUES ('00000000-0000-4000-8000-000000000099', 'Election-$e1', 'BallotCast', 'mallory',
	'api', 'corr-43', now(), now(), 'rejected', 'state', 'election_not_open',
	E'not open \\033[2J yet')" >/dev/null
# One event the projector has not seen: a lag of 1 event.
e3=01BX5ZZKBKACTAV9WEVGEMMVS1
echo '{"event_id":"00000000-0000-4000-8000-000000000031","type":"ElectionCreated","data":{"name":"Later","election_id":"'"$e3"'"},'"$adm_meta"'}' \
	>"$w/later"
pvp_append "$w/later"
# Three dead letters, set aside the appender's way (no appender runs).
for i in 21 22 23; do
	echo '{"event_id":"00000000-0000-4000-8000-0000000000'$i'","type":"BallotCast","data":{"election_id":"'"$e1"'","note":"x\u001b[1my"},'"$adm_meta"'}'
done >"$w/cmds"
"$tool" publish <"$w/cmds" && "$tool" dead-letter 3
adm_wait_status dead_letters 3 15 >/dev/null

s=sc
adm_tmux_start $s 80 24 NO_COLOR=1
adm_on $s "Election-$e1" 15 >/dev/null
adm_keys $s 2
pvp_check "2: the audit log, newest first" eval \
	"adm_on $s 'Audit log (2, newest first)' &&
		[[ \$(adm_screen $s | grep -oE '(rejected|appended)' | head -2 | tr '\n' ' ') == 'rejected appended ' ]]"
pvp_check "... a rejection's rule, an append's number" eval \
	"adm_on $s 'mallory         election_not_o' && adm_on $s 'o@example.org   #1'"
adm_keys $s Enter
pvp_check "Enter: the row's detail, its reason escaped" eval \
	"adm_on $s 'reason:         not open \\x1b[2J yet' && adm_on $s 'correlation id: corr-43'"
adm_keys $s Escape f
adm_keys $s -l 'status=appended'
adm_keys $s Enter
pvp_check "f status=appended: only the appended row" eval \
	"adm_on $s 'where status=appended' && adm_off $s 'mallory'"
adm_keys $s f C-u
adm_keys $s BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace
adm_keys $s -l 'user=mallory'
adm_keys $s Enter
pvp_check "f user=mallory: only mallory's" eval \
	"adm_on $s 'where user=mallory' && adm_on $s 'mallory' && adm_off $s 'o@example.org'"
adm_keys $s f
adm_keys $s BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace
adm_keys $s -l 'colour=red'
adm_keys $s Enter
pvp_check "an unknown filter key is refused, naming the keys" adm_on $s 'no audit filter "colour"'
# The event's audit row, from the streams.
adm_keys $s 1
adm_on $s "Election-$e1" >/dev/null
adm_keys $s Enter
adm_on $s "3 events" >/dev/null
adm_keys $s j Enter
pvp_check "an event's detail shows its audit row: verdict, user, source, correlation id, times" eval \
	"adm_keys $s G; adm_on $s 'verdict:        appended' && adm_on $s 'user:           o@example.org' &&
		adm_on $s 'source:         api' && adm_on $s 'correlation id: corr-42' &&
		adm_on $s 'received:       20' && adm_on $s 'recorded:       20'"
# Dead letters.
adm_keys $s 3
pvp_check "3: the dead letters, with age and reason" eval \
	"adm_on $s 'Dead letters (3 in the queue)' &&
		adm_screen $s | grep -qE '^[0-9]+[smhd] +00000000-0000-4000-8000-000000000021  BallotCast'"
adm_keys $s Enter
pvp_check "Enter: one dead letter, headers and body escaped" eval \
	"adm_on $s 'x-photovote-reason: ' && adm_on $s '\"note\": \"x\\u001B[1my\"'"
adm_keys $s p
pvp_check "p asks first, naming how many and which" \
	adm_on $s "Purge 1 dead letter (id 00000000-0000-4000-8000-000000000021) for good? y/n"
adm_keys $s n
pvp_check "... n: nothing done" eval "adm_on $s 'nothing done' && adm_wait_status dead_letters 3 5"
adm_keys $s Escape
adm_on $s "Dead letters (3" >/dev/null
adm_keys $s j Enter
adm_on $s "message id:     00000000-0000-4000-8000-000000000022" >/dev/null
adm_keys $s r
pvp_check "r on the second, inspected: asks to requeue 1, named" \
	adm_on $s "Requeue 1 dead letter (id 00000000-0000-4000-8000-000000000022)? y/n"
adm_keys $s y
pvp_check "... y: it is requeued, 2 left, and the list shows the queue as it is now" eval \
	"adm_on $s '1 dead letter(s) requeued, 2 left in the queue' 15 &&
		adm_on $s 'Dead letters (2 in the queue)' 10 && adm_off $s '00000000-0000-4000-8000-000000000022' &&
		adm_wait_status dead_letters 2 10 && adm_wait_status appender_queue_ready 1 10"
adm_keys $s P
pvp_check "P asks to delete all, naming how many" \
	adm_on $s "Purge all 2 dead letters for good? y/n" 15
adm_keys $s y
pvp_check "... y: purged, the queue empty" eval \
	"adm_on $s '2 dead letter(s) purged, 0 left in the queue' 15 && adm_wait_status dead_letters 0 10"
# Projection.
adm_keys $s 4
pvp_check "4: the projection: head, checkpoint, lag in events and seconds, parked elections" eval \
	"adm_on $s 'head of the feed:   3' && adm_on $s 'checkpoint:         2' &&
		adm_on_re $s '^lag: +1 events, [0-9]+ s\$' && adm_on $s 'oldest waiting:' &&
		adm_on $s 'parked elections:   1' && adm_on $s '$e1 event 0'"
pvp_check "... and the projector's last progress: checkpoint written, heartbeat" eval \
	"adm_on_re $s '^checkpoint written: 20[0-9-]+T[0-9:]+Z \\([0-9]+ s ago\\)' &&
		adm_on_re $s '^last heartbeat: +(never|20[0-9-]+T)'"
pvp_check "NO_COLOR: no colour on the screen" eval \
	"! adm_tm capture-pane -e -p -t $s | grep -qE $'\\e\\\\[[0-9;]*3[0-7]m'"
adm_keys $s q
adm_exited $s 5
# With colours: a rejection in red (on the terminal's own background).
s=col
adm_tmux_start $s 80 24 TERM=xterm-256color
adm_on $s "Election-$e1" 15 >/dev/null
adm_keys $s 2
adm_on $s "mallory" 10 >/dev/null
# The selection is reverse video: move it to the appended row.
adm_keys $s j
sleep 0.3
pvp_check "colours: the rejected row in red, the appended one plain" eval \
	"adm_tm capture-pane -e -p -t $s | grep 'mallory' | grep -qE $'\\e\\\\[([0-9;]*;)?31(;[0-9;]*)?m' &&
		! adm_tm capture-pane -e -p -t $s | grep 'o@example.org' | grep -qE $'\\e\\\\[([0-9;]*;)?31(;[0-9;]*)?m'"
adm_keys $s q
adm_exited $s 5
exit 0
