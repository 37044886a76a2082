#!/bin/bash
# The whole benchmark report (issue 19) in one command: every benchmark script in turn, on
# this machine, and docs/benchmarks.md's current section rewritten from what they printed
# (between the lines "<!-- report:begin -->" and "<!-- report:end -->", added at the end of
# the file the first time): the machine, the commit, and each script's tables, which put
# every figure next to its baseline measured in the same run, with the CPU each process
# spent and the programs' peak memory where the script measures them.
#
#   command API   bench-fcgi.sh: POST /elections through lighttpd (wrk), next to a
#                 hello-world FastCGI responder and raw confirmed publishing
#   appender      bench-appender.sh: the broker alone, then postgres, esdb and kurrentdb
#                 (h2c and TLS) draining the same commands
#   projector     bench-projector.sh with 20, 200 and 1,000 elections: batched next to naive,
#                 and its Cosmos DB requests/s next to a plain concurrent upsert loop
#   rebuild       bench-rebuild.sh (postgres): rebuild and blue-green next to the live
#                 projector's rate
#   latency       bench-latency.sh at 500, 1,000 and 2,000 requests/s, open loop, next to
#                 GET /livez at the same rate; then at 1,000 and 2,000 with the command API
#                 alone (no workers)
#
# A script, not a test.  From a build folder after `make check`:
#
#   top_srcdir=$(cd .. && pwd) top_builddir=$PWD ../tests/bench/bench-report.sh [--quick] [FILE]
#
# FILE: the Markdown file whose section is rewritten (default docs/benchmarks.md of the source
# tree).  --quick: short runs that check the report works, not figures to publish.  Each
# script's whole output is kept in bench-report/NAME.txt of the build folder; a script that
# fails is reported with its exit status and last lines, and the others still run.  Give it a
# quiet machine: the figures are worth what the machine was doing besides.
set -u
: "${top_srcdir:?set top_srcdir (the source tree)}"
: "${top_builddir:?set top_builddir (the build tree)}"
export top_srcdir top_builddir

quick=no
if [[ ${1:-} == --quick ]]; then
	quick=yes
	shift
fi
doc=${1:-$top_srcdir/docs/benchmarks.md}
[[ -f $doc ]] || { echo "bench-report: $doc: no such file" >&2; exit 2; }
out=$top_builddir/bench-report
mkdir -p "$out" || exit 1
bench=$top_srcdir/tests/bench

# The steps: name, title, command (run by bash from the build folder).
if [[ $quick == yes ]]; then
	steps=(
		"api|Command API|$bench/bench-fcgi.sh 3 8"
		"appender|Appender|BENCH_RUNS='broker postgres kurrentdb' KDB_EVENTS=2000 $bench/bench-appender.sh 10000 200"
		"projector|Projector (5 elections)|$bench/bench-projector.sh 5 10"
		"rebuild|Rebuild|$bench/bench-rebuild.sh 50 10 postgres"
		"latency|Latency at fixed rates|PV_BENCH_WARMUP=1 $bench/bench-latency.sh 3 100"
		"latency-api|Latency at fixed rates, the command API alone|PV_BENCH_PIPELINE=api PV_BENCH_WARMUP=1 $bench/bench-latency.sh 3 200"
	)
else
	steps=(
		"api|Command API|$bench/bench-fcgi.sh 10 32"
		"appender|Appender|BENCH_RUNS='broker postgres esdb kurrentdb kurrentdb-tls' KDB_EVENTS=20000 $bench/bench-appender.sh 100000 1000"
		"projector-20|Projector, 20 active elections|$bench/bench-projector.sh 20 50"
		"projector-200|Projector, 200 active elections|$bench/bench-projector.sh 200 50"
		"projector-1000|Projector, 1,000 active elections|$bench/bench-projector.sh 1000 10"
		"rebuild|Rebuild|$bench/bench-rebuild.sh 1000 18 postgres"
		"latency|Latency at fixed rates|$bench/bench-latency.sh 20 500 1000 2000"
		"latency-api|Latency at fixed rates, the command API alone|PV_BENCH_PIPELINE=api $bench/bench-latency.sh 20 1000 2000"
	)
fi

section=$out/section.md
flag=
[[ $quick == yes ]] && flag=" --quick"
commit=$(git -C "$top_srcdir" describe --always --dirty 2>/dev/null || echo unknown)
{
	echo "## Current report"
	echo
	echo "Written by \`tests/bench/bench-report.sh$flag\` on $(date -u '+%Y-%m-%d %H:%M UTC'),"
	[[ $quick == yes ]] && echo "**quick runs: a check of the report, not figures to go by**,"
	echo "at $commit, on $(nproc) CPU(s) ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo |
		head -n 1)), $(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo),"
	echo "$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release), load average" \
		"$(cut -d' ' -f1-3 /proc/loadavg) at the"
	echo "start. Each table is the script's own: every figure next to its baseline from the same"
	echo "run. The scripts' other lines (CPU by process, peak memory, logs) follow each table."
	echo
} >"$section"

failed=0
for step in "${steps[@]}"; do
	IFS='|' read -r name title cmd <<<"$step"
	echo "bench-report: $name: $cmd" >&2
	t0=$(date +%s)
	(cd "$top_builddir" && bash -c "$cmd") >"$out/$name.txt" 2>&1
	rc=$?
	secs=$(($(date +%s) - t0))
	{
		echo "### $title"
		echo
		echo "\`${cmd//$bench\//tests/bench/}\` ($secs s, load average $(cut -d' ' -f1-3 /proc/loadavg) after)"
		echo
		if ((rc != 0)); then
			failed=$((failed + 1))
			echo "**Failed (exit $rc).** Its last lines:"
			echo
			echo '```'
			tail -n 15 "$out/$name.txt"
			echo '```'
		else
			# The Markdown tables as they are, the rest as text below them.
			grep '^|' "$out/$name.txt"
			echo
			echo '```'
			grep -v -e '^|' -e '^pv-servers:' -e '^$' "$out/$name.txt" | tail -n 60
			echo '```'
		fi
		echo
	} >>"$section"
done

# The section goes between the markers, which are added the first time.
python3 - "$doc" "$section" <<'PY'
import sys
doc, section = sys.argv[1], open(sys.argv[2]).read()
begin, end = "<!-- report:begin -->", "<!-- report:end -->"
text = open(doc).read()
if begin in text and end in text:
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
else:
    head, tail = text.rstrip("\n") + "\n\n", "\n"
open(doc, "w").write(head + begin + "\n" + section.rstrip("\n") + "\n" + end + tail)
PY
echo "bench-report: $((${#steps[@]} - failed)) of ${#steps[@]} benchmarks ran; section written to $doc" >&2
((failed == 0))
