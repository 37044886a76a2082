#!/bin/bash
# photovote-projector catching up a backlog (PostgreSQL, the Cosmos DB stand-in, the postgres
# event store): a backlog that comes in several feed reads is folded read by read and each
# election is written once at the end; pending elections that fill the cache
# ([projector] cache_elections) are written sooner, to the same documents; a projector killed
# with SIGKILL while it writes a backlog's elections, restarted, ends with the same documents;
# a stop (SIGTERM) while it writes them checkpoints nothing.
set -u
# shellcheck source=lib.sh
. "$top_srcdir/tests/projector/lib.sh"

echo "1..9"
if ! pvp_setup catchup; then
	echo "# servers unavailable"
	exit 77
fi
pvp_generate a --elections 12 --voters 40 --seed 5
mapfile -t elections <"$pvp_work/a.elections"
total=$(wc -l <"$pvp_work/a.events")
reads=$(((total + 255) / 256))
pvp_check "generated events appended to the store ($total, $reads reads of 256)" \
	eval 'pvp_append "$pvp_work/a.events" && test "$reads" -ge 4'

# report DATABASE: the projector's last report line for that run.
report() { grep 'events folded' "$pvp_work/$1.log" | tail -n 1; }

# once NAME [VAR=VALUE...]: --once into the Cosmos DB database NAME, reads of 256 events, its
# log in $pvp_work/NAME.log; returns the projector's exit status.
once()
{
	local name=$1
	shift
	env PHOTOVOTE_COSMOS_DATABASE="$PHOTOVOTE_COSMOS_DATABASE-$name" \
		PHOTOVOTE_PROJECTOR_BATCH_SIZE=256 "$@" "$pvp_projector" --once \
		>>"$pvp_work/$name.log" 2>&1
}

once whole
pvp_check "$reads reads, one page: each of the 12 elections written once" \
	eval 'report whole | grep -q "$total events folded, .*; 12 head writes, .*; 1 pages;"'
PHOTOVOTE_COSMOS_DATABASE=$PHOTOVOTE_COSMOS_DATABASE-whole pvp_check \
	"... into documents that give the domain's fold" pvp_same_as_fold "${elections[@]}"
PHOTOVOTE_COSMOS_DATABASE=$PHOTOVOTE_COSMOS_DATABASE-whole pvp_docs "$pvp_work/whole.docs" \
	"${elections[@]}"

# One writer caching 4 elections may hold 8 pending: written as soon as a read brings them.
once small PHOTOVOTE_PROJECTOR_WRITERS=1 PHOTOVOTE_PROJECTOR_CACHE_ELECTIONS=4
heads=$(report small | sed -n 's/.*; \([0-9]*\) head writes.*/\1/p')
pages=$(report small | sed -n 's/.*; \([0-9]*\) pages;.*/\1/p')
pvp_check "cache_elections 4: written after each read ($pages pages, $heads head writes)" \
	eval 'test "$pages" = "$reads" && test "$heads" -gt 12'
PHOTOVOTE_COSMOS_DATABASE=$PHOTOVOTE_COSMOS_DATABASE-small pvp_docs "$pvp_work/small.docs" \
	"${elections[@]}"
pvp_check "... the same documents" cmp -s "$pvp_work/whole.docs" "$pvp_work/small.docs"

# SIGKILL in the middle of a backlog's writes, twice, then a run to the end.
kills=0
for fault in after_write:5 after_write:30; do
	once killed PHOTOVOTE_FAULT="$fault"
	[[ $? == 137 ]] && kills=$((kills + 1))
done
pvp_check "killed while writing a backlog's elections ($kills of 2 runs), nothing checkpointed" \
	eval 'test "$kills" = 2 &&
	      test -z "$(pvp_checkpoint "$PHOTOVOTE_COSMOS_DATABASE-killed")"'
once killed
PHOTOVOTE_COSMOS_DATABASE=$PHOTOVOTE_COSMOS_DATABASE-killed pvp_docs "$pvp_work/killed.docs" \
	"${elections[@]}"
pvp_check "restarted: the checkpoint at the end, the same documents as in one go" \
	eval 'test "$(pvp_checkpoint "$PHOTOVOTE_COSMOS_DATABASE-killed")" = $((total - 1)) &&
	      cmp -s "$pvp_work/whole.docs" "$pvp_work/killed.docs"'

# SIGTERM (from the projector itself, after its 5th document write: the first election of the
# flush) while it writes the backlog: it stops after that write, exit 0, and checkpoints
# nothing, for the page is not all written.
once stopped PHOTOVOTE_FAULT=term_after_write:5
rc=$?
pvp_check "SIGTERM while writing a backlog: exit 0, nothing checkpointed" \
	eval 'test "$rc" = 0 && test -z "$(pvp_checkpoint "$PHOTOVOTE_COSMOS_DATABASE-stopped")" &&
	      grep -q "sending myself SIGTERM at term_after_write" "$pvp_work/stopped.log"'
once stopped
PHOTOVOTE_COSMOS_DATABASE=$PHOTOVOTE_COSMOS_DATABASE-stopped pvp_docs "$pvp_work/stopped.docs" \
	"${elections[@]}"
pvp_check "restarted after the stop: the same documents" \
	cmp -s "$pvp_work/whole.docs" "$pvp_work/stopped.docs"
