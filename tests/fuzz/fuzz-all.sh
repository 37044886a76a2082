#!/bin/bash
# Fuzzes every target (or the ones named) for a longer time, one after the
# other on one core, and records what each did:
#
#   tests/fuzz/fuzz-all.sh [-t SECONDS] [-r RUNS] [-b BUILD] [-o LOG] [NAME...]
#
#   -t SECONDS  per target (default 600); -r RUNS: stop after RUNS inputs instead,
#               or whichever comes first when both are given
#   -b BUILD    a build configured with --enable-fuzzer CC=clang (default
#               _build-fuzz at the top of the tree, configured and built when
#               missing)
#   -o LOG      where the table rows go as well (default _build-fuzz/fuzz-all.log)
#   NAME        event request esdb cosmos amqp config kurrentdb (default: all)
#
# Each target runs on a copy of its corpus tests/fuzz/corpus-NAME with its
# dictionary, under ASan, UBSan and LeakSanitizer, niced.  A finding (crash,
# leak, timeout, out of memory) is left in BUILD/fuzz-artifacts/NAME and
# fails the command; fix it and add the input to the corpus.  The figures go
# into docs/fuzzing.md.  With -m the new inputs are merged (minimised) back
# into the tree's corpora.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
seconds=600 timed=no runs= build=$top/_build-fuzz log= merge=no
while getopts "t:r:b:o:m" opt; do
	case $opt in
	t) seconds=$OPTARG timed=yes ;;
	r) runs=$OPTARG ;;
	b) build=$OPTARG ;;
	o) log=$OPTARG ;;
	m) merge=yes ;;
	*) sed -n '2,20p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
names=${*:-event request esdb cosmos amqp config kurrentdb}
log=${log:-$build/fuzz-all.log}

if [[ ! -x $build/tests/fuzz/fuzz-config || ! -x $build/tests/fuzz/fuzz-kurrentdb ]]; then
	command -v clang >/dev/null || { echo "fuzz-all: clang is needed" >&2; exit 2; }
	mkdir -p "$build"
	(cd "$build" && { [[ -f Makefile ]] || "$top/configure" --enable-fuzzer CC=clang; } &&
		nice make -j1 built-sources &&
		nice make -j1 $(printf 'tests/fuzz/fuzz-%s ' $names)) >"$build/fuzz-build.log" 2>&1 ||
		{ echo "fuzz-all: build failed, see $build/fuzz-build.log" >&2; exit 2; }
fi

status=0
echo "| target | seconds | executions | exec/s | new inputs | findings |" | tee -a "$log"
echo "| --- | ---: | ---: | ---: | ---: | --- |" | tee -a "$log"
for n in $names; do
	work=$(mktemp -d "/tmp/pv-fuzz-$n.XXXXXX")
	art=$build/fuzz-artifacts/$n
	mkdir -p "$art"
	cp -r "$top/tests/fuzz/corpus-$n/." "$work/"
	args=(-print_final_stats=1 -artifact_prefix="$art/" -rss_limit_mb=1024 -timeout=10)
	[[ -s $top/tests/fuzz/$n.dict ]] && args+=(-dict="$top/tests/fuzz/$n.dict")
	[[ -n $runs ]] && args+=(-runs="$runs")
	[[ -z $runs || $timed == yes ]] && args+=(-max_total_time="$seconds")
	start=$(date +%s)
	# A slow-unit-* file is libFuzzer's note of an input that took 10 s
	# or more (on a loaded machine, often the scheduler): kept, not counted.
	before=$(ls "$art" | grep -vc '^slow-unit-')
	(cd "$work" && ASAN_OPTIONS=detect_leaks=1 nice "$build/tests/fuzz/fuzz-$n" "${args[@]}" "$work") \
		>"$build/fuzz-$n.log" 2>&1
	rc=$?
	took=$(($(date +%s) - start))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/fuzz-$n.log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$build/fuzz-$n.log")
	added=$(sed -n 's/^stat::new_units_added: *//p' "$build/fuzz-$n.log")
	found=$(($(ls "$art" | grep -vc '^slow-unit-') - before))
	what=none
	if [[ $rc != 0 || $found != 0 ]]; then
		what="$found in $art (exit $rc, see $build/fuzz-$n.log)"
		status=1
	fi
	echo "| fuzz-$n | $took | ${execs:-?} | ${rate:-?} | ${added:-?} | $what |" | tee -a "$log"
	if [[ $merge == yes && $rc == 0 ]]; then
		"$build/tests/fuzz/fuzz-$n" -merge=1 "$top/tests/fuzz/corpus-$n" "$work" \
			>>"$build/fuzz-$n.log" 2>&1
	fi
	rm -rf "$work"
done
exit $status
