#!/bin/bash
# Benchmark of photovote-projector (issue 6): events projected per second into the Cosmos DB
# stand-in and Cosmos DB requests per event, next to a naive projection measured in the same run
# on the same servers and the same events:
#   batched  the projector as shipped: a feed page of [projector] batch_size events, each
#            election's events folded together and written once (changed parts, then the head
#            with If-Match), elections kept in an LRU cache of their last written state;
#   naive    photovote-projector --naive: one event per page and no cache, so every event reads
#            its election's documents (head and parts), folds one event and writes them back;
#   upsert loop  the baseline of the projector's Cosmos DB requests per second: the documents the
#            batched projection wrote, upserted into an empty database by as many threads as the
#            projector has writers ([projector] writers), each with a client of its own and
#            nothing else to do (pv-projector-tool upsert-loop): what the stand-in serves when
#            it is the only limit.
#
# A script, not a test: run it from a build folder after `make check` (or
# `make workers/photovote-projector tests/projector/pv-projector-tool`):
#
#   top_srcdir=.. top_builddir=. ../tests/bench/bench-projector.sh [ELECTIONS [VOTERS]]
#
# ELECTIONS (default 20) elections of VOTERS (default 50) voters each are generated
# (tests/projector/gen-events.py, interleaved) straight into the postgres event store; both
# projections start from an empty Cosmos DB database.  PostgreSQL and the Cosmos DB stand-in
# (HTTP) are the test servers (tests/servers).  Prints Markdown tables, a line of CPU per
# request for the projector and the loop, and the CPUs the 0.7 target would take at this
# run's CPU per request.
: "${top_srcdir:?set top_srcdir (the source tree)}"
: "${top_builddir:?set top_builddir (the build tree)}"
set -u
# shellcheck source=../projector/lib.sh
. "$top_srcdir/tests/projector/lib.sh"
# shellcheck source=cpu.sh
. "$top_srcdir/tests/bench/cpu.sh"

ELECTIONS=${1:-20}
VOTERS=${2:-50}
pvp_setup bench >/dev/null || { echo "servers unavailable" >&2; exit 1; }
pvp_generate bench --elections "$ELECTIONS" --voters "$VOTERS" --seed 1
events=$(wc -l <"$pvp_work/bench.events")
pvp_append "$pvp_work/bench.events" 2>/dev/null || exit 1
pvp_analyze || exit 1

# timed NAME COMMAND...: runs COMMAND with the machine's CPU snapshots around it
# ($pvp_work/NAME.cpu0, .cpu1) and its wall, user and system seconds and peak resident
# kilobytes in $pvp_work/NAME.time (GNU time; it has exited by the second snapshot, which
# counts only the living).
timed()
{
	local name=$1 rc
	shift
	cpu_snapshot "$pvp_work/$name.cpu0"
	/usr/bin/time -f '%e %U %S %M' -o "$pvp_work/$name.time" "$@"
	rc=$?
	cpu_snapshot "$pvp_work/$name.cpu1"
	return $rc
}

# own_ms NAME COUNT: the timed run NAME's own CPU milliseconds (user + system) per unit of COUNT.
own_ms()
{
	awk -v n="$2" '{ printf "%.3f", ($2 + $3) * 1000 / n }' "$pvp_work/$1.time"
}

# cpu_line NAME WHAT COUNT: "WHAT: CPU ms per Cosmos DB request: ..." for a timed run that sent
# COUNT requests; the other processes' share is kept in $pvp_work/NAME.cpu (cpu_report's line).
cpu_line()
{
	cpu_report "$pvp_work/$1.cpu0" "$pvp_work/$1.cpu1" "$3" >"$pvp_work/$1.cpu"
	echo "$2: CPU ms per Cosmos DB request: $2 itself $(own_ms "$1" "$3");" \
		"$(cat "$pvp_work/$1.cpu");" \
		"peak RSS $(awk '{ printf "%.1f MB", $4 / 1024 }' "$pvp_work/$1.time")"
}

# run NAME [projector options]: one projection into a Cosmos DB database of its own; prints
# "seconds events requests applying": applying, the seconds it spent folding and writing
# pages (the rest: starting, and reading the feed while not writing).
run()
{
	local name=$1 line
	shift
	: >"$pvp_work/$name.log"
	PHOTOVOTE_COSMOS_DATABASE=pvb-$name-$$ timed "$name" "$pvp_projector" --once "$@" \
		>>"$pvp_work/$name.log" 2>&1 || return 1
	line=$(grep 'events folded' "$pvp_work/$name.log" | tail -n 1)
	printf '%s %s %s %s\n' "$(cut -d' ' -f1 "$pvp_work/$name.time")" \
		"$(sed -n 's/.*: \([0-9]*\) events folded.*/\1/p' <<<"$line")" \
		"$(sed -n 's/.*; \([0-9]*\) Cosmos DB requests.*/\1/p' <<<"$line")" \
		"$(sed -n 's/.*; \([0-9.]*\) s folding and writing.*/\1/p' <<<"$line")"
}

read -r bs bn br ba < <(run batched) || exit 1
read -r ns nn nr _ < <(run naive --naive) || exit 1
PHOTOVOTE_COSMOS_DATABASE=pvb-loop-$$ timed loop "$pvp_tool" upsert-loop "pvb-batched-$$" \
	>"$pvp_work/loop.out" 2>>"$pvp_work/loop.log" || { cat "$pvp_work/loop.log" >&2; exit 1; }
read -r lr _ _ ls _ writers _ <"$pvp_work/loop.out"
echo "Projector: $ELECTIONS elections x $VOTERS voters = $events events," \
	"postgres event store, Cosmos DB stand-in over HTTP, $(nproc) CPUs"
echo
echo "| projection | events folded | seconds | events/s | Cosmos DB requests | requests/event |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for r in "batched $bn $bs $br" "naive $nn $ns $nr"; do
	read -r name n s q <<<"$r"
	printf '| %s | %d | %.2f | %.0f | %d | %.3f |\n' "$name" "$n" "$s" \
		"$(echo "$n / $s" | bc -l)" "$q" "$(echo "$q / $n" | bc -l)"
done
echo
echo "| Cosmos DB requests/s | batched projection | upsert loop, $writers threads ($lr documents) | ratio |"
echo "| --- | ---: | ---: | ---: |"
printf '| | %.0f | %.0f | %.2f |\n' "$(echo "$br / $bs" | bc -l)" "$(echo "$lr / $ls" | bc -l)" \
	"$(echo "($br / $bs) / ($lr / $ls)" | bc -l)"
echo
# The batched projection's seconds split: folding and writing pages, and the rest (starting,
# reading the feed).
printf 'batched projection: %.2f of %.2f s folding and writing pages, %.0f Cosmos DB requests/s meanwhile (%.2f of the loop)\n' \
	"$ba" "$bs" "$(echo "$br / $ba" | bc -l)" "$(echo "($br / $ba) / ($lr / $ls)" | bc -l)"
# Where each one's CPU went (the loop's figure counts its read of the documents, a few queries).
cpu_line batched photovote-projector "$br"
cpu_line loop pv-projector-tool "$lr"
# The target's budget (issue 19: at least 0.7 of the loop's requests per second): the CPUs this
# run's machine CPU per request would take at that rate, and what is left of it without the
# projector's own share (the stand-in, PostgreSQL, the kernel).  Over the machine's CPUs, the
# target is out of reach with this work per request, and without the projector, whatever the
# projector does.
awk -v r="$lr" -v s="$ls" -v m="$(cpu_group "$pvp_work/batched.cpu" machine)" \
	-v u="$(own_ms batched "$br")" -v c="$(nproc)" 'BEGIN {
	t = 0.7 * r / s
	printf "budget at 0.7 of the loop (%.0f requests/s): %.3f machine CPU-ms per request would" \
		" take %.2f CPUs of %d; without the projector'"'"'s own %.3f, %.2f\n",
		t, m, t * m / 1000, c, u, t * (m - u) / 1000 }'
