#!/bin/bash
# Benchmark of `photovote-admin rebuild` (issue 15): a rebuild by replay of every election into
# an empty Cosmos DB database, and a blue-green build (`rebuild --all --into`) beside the live
# container, with the time, events/s and Cosmos DB requests per document written, next to the
# live projector's rate on the same events in the same run (`photovote-projector --once` into an
# empty database: the baseline).  Each event store backend in turn: postgres, and esdb (the
# EventStoreDB stand-in, tests/esdb-standin).
#
# A script, not a test: run it from a build folder after `make check` (or
# `make admin/photovote-admin workers/photovote-projector tests/projector/pv-projector-tool`):
#
#   top_srcdir=.. top_builddir=. ../tests/bench/bench-rebuild.sh [ELECTIONS [VOTERS [BACKENDS]]]
#
# ELECTIONS (default 1000) elections of VOTERS (default 18) voters each (100,449 events with the
# defaults, tests/projector/gen-events.py --seed 1) are appended straight into the event store,
# in rounds of BLOCK (25) events of each election: interleaved as live traffic is (a feed page
# holds about 20 elections), in 4,000 appends rather than 100,000 (one a run of an election,
# which took the postgres store 13 minutes on this machine).
# BACKENDS: "postgres esdb" by default.  Prints a Markdown table and the load average.
: "${top_srcdir:?set top_srcdir (the source tree)}"
: "${top_builddir:?set top_builddir (the build tree)}"
set -u

ELECTIONS=${1:-1000}
VOTERS=${2:-18}
BACKENDS=${3:-postgres esdb}
adm=$top_builddir/admin/photovote-admin

# rebuild NAME DATABASE [options]: photovote-admin rebuild --all --json into that Cosmos DB
# database; prints "seconds events requests documents".
rebuild()
{
	local name=$1 db=$2 out
	shift 2
	out=$(PHOTOVOTE_COSMOS_DATABASE=$db "$adm" rebuild --all --json "$@" \
		2>"$pvp_work/$name.err") || {
		echo "rebuild $name failed: $(cat "$pvp_work/$name.err")" >&2
		return 1
	}
	jq -r '"\(.seconds) \(.events_done) \(.cosmos_requests) \(.documents)"' <<<"$out"
}

# live NAME: the projector from an empty database to the head; prints "seconds events requests".
live()
{
	local name=$1 start end line
	: >"$pvp_work/$name.log"
	start=$(date +%s.%N)
	PHOTOVOTE_COSMOS_DATABASE=pvb-$name-$$ "$pvp_projector" --once \
		>>"$pvp_work/$name.log" 2>&1 || return 1
	end=$(date +%s.%N)
	line=$(grep 'events folded' "$pvp_work/$name.log" | tail -n 1)
	printf '%s %s %s\n' "$(echo "$end - $start" | bc -l)" \
		"$(sed -n 's/.*: \([0-9]*\) events folded.*/\1/p' <<<"$line")" \
		"$(sed -n 's/.*; \([0-9]*\) Cosmos DB requests.*/\1/p' <<<"$line")"
}

row()
{
	local what=$1 s=$2 n=$3 q=$4 d=$5
	printf '| %s | %s | %d | %.1f | %.0f | %d | %s | %s |\n' "$PVP_BACKEND" "$what" "$n" "$s" \
		"$(echo "$n / $s" | bc -l)" "$q" "$d" \
		"$([[ $d == - ]] && echo - || printf '%.2f' "$(echo "$q / $d" | bc -l)")"
}

echo "Rebuild: $ELECTIONS elections x $VOTERS voters, Cosmos DB stand-in over HTTP," \
	"$(nproc) CPUs, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| store | run | events | seconds | events/s | Cosmos DB requests | documents | requests/document |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for backend in $BACKENDS; do
	(
		export PVADM_BACKEND=$backend
		# shellcheck source=../admin/lib.sh
		. "$top_srcdir/tests/admin/lib.sh"
		export PHOTOVOTE_LOG_LEVEL=warning
		pvp_setup "bench$PVP_BACKEND" >/dev/null || { echo "servers unavailable" >&2; exit 1; }
		pvp_generate bench --elections "$ELECTIONS" --voters "$VOTERS" --seed 1
		python3 -c '
import collections, json, sys
runs = collections.OrderedDict()
for line in open(sys.argv[1]):
    runs.setdefault(json.loads(line)["data"]["election_id"], []).append(line)
k = 0
while any(k < len(v) for v in runs.values()):
    for v in runs.values():
        sys.stdout.writelines(v[k:k + 25])
    k += 25' "$pvp_work/bench.events" >"$pvp_work/blocks.events"
		pvp_append "$pvp_work/blocks.events" 2>/dev/null || exit 1
		pvp_analyze || exit 1
		read -r s n q < <(live live) || exit 1
		row "live projector (baseline)" "$s" "$n" "$q" -
		read -r s n q d < <(rebuild scratch "pvb-scratch-$$") || exit 1
		row "rebuild --all (empty database)" "$s" "$n" "$q" "$d"
		read -r s n q d < <(rebuild green "pvb-live-$$" --into green) || exit 1
		row "rebuild --all --into green" "$s" "$n" "$q" "$d"
		read -r s n q d < <(rebuild inplace "pvb-live-$$") || exit 1
		row "rebuild --all (in place, up to date)" "$s" "$n" "$q" "$d"
	) || exit 1
done
echo
echo "Load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
