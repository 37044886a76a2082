#!/bin/bash
# The console's Home and End on every terminal operators use: under TERM=xterm,
# xterm-256color, screen, tmux and linux, each raw sequence a terminal sends for Home
# (ESC [ 1 ~, ESC [ 7 ~, ESC [ H, ESC O H) and End (ESC [ 4 ~, ESC [ 8 ~, ESC [ F, ESC O F)
# moves to the first or last event of the list, and none is taken for Esc ("back") followed
# by stray keys.  Also tmux's own Home/End keys (terminfo's for the pane), PgUp/PgDn and g/G.
set -u
# shellcheck source=lib.sh
. "$top_srcdir/tests/admin/lib.sh"

if ! command -v tmux >/dev/null; then
	echo "1..0 # SKIP tmux missing (tests/install-deps.sh installs it)"
	exit 0
fi
terms=(xterm xterm-256color screen tmux linux)
echo "1..$((${#terms[@]} + 1))"
if ! adm_setup keys; then
	echo "# servers unavailable"
	exit 77
fi
w=$pvp_work
adm_seed "$w/seed"
pvp_append "$w/seed"

# at N: the event list's selected line is event N (the detail says so), then back to the list.
at()
{
	adm_keys "$1" Enter
	adm_on "$1" "#$2" 5 >/dev/null || { echo "# $3: not at event $2"; return 1; }
	adm_keys "$1" Escape
	adm_on "$1" "3 events" 5 >/dev/null || { echo "# $3: the list did not come back"; return 1; }
}
keys_on()
{
	local n=$1 seq
	adm_on "$n" "Election-$adm_e1" 15 >/dev/null || return 1
	adm_keys "$n" Enter
	adm_on "$n" "3 events" >/dev/null || return 1
	for seq in '\033[4~' '\033[1~' '\033[8~' '\033[7~' '\033[F' '\033[H' '\033OF' '\033OH'; do
		adm_raw "$n" "$seq"
		case $seq in
		*4~ | *8~ | *F) at "$n" 2 "$seq" || return 1 ;;
		*) at "$n" 0 "$seq" || return 1 ;;
		esac
	done
	adm_keys "$n" End
	at "$n" 2 "tmux End" || return 1
	adm_keys "$n" Home
	at "$n" 0 "tmux Home" || return 1
	adm_keys "$n" q q
	adm_exited "$n" 5
}
for t in "${terms[@]}"; do
	n=k${t//[^a-z0-9]/}
	adm_tmux_start "$n" 80 24 "TERM=$t"
	pvp_check "TERM=$t: the raw Home and End sequences, and tmux's, move in the list" keys_on "$n"
done
n=kpg
adm_tmux_start $n 80 24
other_keys()
{
	adm_on $n "Election-$adm_e1" 15 >/dev/null && adm_keys $n Enter &&
		adm_on $n "3 events" >/dev/null || return 1
	adm_keys $n G && at $n 2 G && adm_keys $n g && at $n 0 g &&
		adm_keys $n NPage && at $n 2 PgDn && adm_keys $n PPage && at $n 0 PgUp &&
		adm_keys $n j && at $n 1 j && adm_keys $n Down && at $n 2 Down &&
		adm_keys $n k && at $n 1 k && adm_keys $n Up && at $n 0 Up
}
pvp_check "G g PgDn PgUp j Down k Up" other_keys
exit 0
