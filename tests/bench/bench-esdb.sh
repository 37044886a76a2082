#!/bin/bash
# Benchmark of the EventStoreDB stand-in (tests/esdb-standin/esdb-standin.py) under the esdb
# backend's batched, concurrent appends (tests/bench/bench-esdb): the events per second it takes
#
#   sequential   one request at a time on one keep-alive connection (in flight 1)
#   concurrent   the streams' requests IN_FLIGHT at a time (default 8, the appender's default)
#
# for batches of PER_REQUEST events per stream request (default 1, 10 and 100), STREAMS
# streams per unit (default 50), EVENTS events each (default 20000).  The stand-in is test
# equipment; the figure says how much load the appender benchmark can put on it.  Not part of
# make check.
#
# Usage: tests/bench/bench-esdb.sh   from the build folder (or with top_srcdir/top_builddir set)
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
top_builddir=${top_builddir:-$PWD}
bench=$top_builddir/tests/bench/bench-esdb
[[ -x $bench ]] || {
	echo "bench-esdb: run from the build folder after make check (no $bench)" >&2
	exit 2
}
EVENTS=${EVENTS:-20000}
STREAMS=${STREAMS:-50}
IN_FLIGHT=${IN_FLIGHT:-8}
work=$(mktemp -d "${TMPDIR:-/tmp}/pv-bench-esdb.XXXXXX") || exit 1
pid=
cleanup()
{
	[[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

python3 "$top_srcdir/tests/esdb-standin/esdb-standin.py" 0 >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 100); do
	port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/out")
	[[ -n $port ]] && break
	sleep 0.1
done
[[ -n ${port:-} ]] || {
	echo "bench-esdb: the stand-in did not start" >&2
	cat "$work/err" >&2
	exit 1
}
# The stand-in's CPU ticks (user + system, all threads).
ticks() { awk '{ c = index($0, ") "); split(substr($0, c + 2), f, " "); print f[12] + f[13] }' \
	"/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
echo "# EventStoreDB stand-in on 127.0.0.1:$port, $(nproc) CPU(s), load $(cut -d' ' -f1 \
	/proc/loadavg), $EVENTS events a run"
echo "# stand-in CPU: its own CPU time per run; events/CPU-s: what one free CPU would serve"
for per in ${PER_REQUEST:-1 10 100}; do
	for flight in 1 "$IN_FLIGHT"; do
		printf '%-10s ' "$( ((flight == 1)) && echo sequential || echo concurrent)"
		t0=$(ticks)
		line=$("$bench" "http://127.0.0.1:$port" "$EVENTS" "$STREAMS" "$per" "$flight") || exit 1
		t1=$(ticks)
		cpu=$(echo "($t1 - $t0) / $hz" | bc -l)
		printf '%s; stand-in CPU %.2f s, %.0f events/CPU-s\n' "$line" "$cpu" \
			"$(echo "$EVENTS / ($cpu + 0.001)" | bc -l)"
	done
done
