#!/bin/bash
# Every fuzz target's corpus replayed through the plain build (replay-NAME:
# any compiler, and ASan/UBSan in the --sanitizers run), then, where clang
# and libFuzzer are installed, each target fuzzed for a few seconds in a
# private --enable-fuzzer build.  The long runs are tests/fuzz/fuzz-all.sh's.
: "${top_srcdir:?run from make check or set top_srcdir}"
: "${top_builddir:?run from make check or set top_builddir}"
names="event request esdb cosmos amqp config kurrentdb"
seconds=${PV_FUZZ_SECONDS:-4}
t=0 failed=0
result()
{
	t=$((t + 1))
	if [[ $1 == 0 ]]; then echo "ok $t - $2"; else echo "not ok $t - $2"; failed=$((failed + 1)); fi
}

for n in $names; do
	out=$("$top_builddir/tests/fuzz/replay-$n" "$top_srcdir/tests/fuzz/corpus-$n" 2>&1)
	rc=$?
	[[ $rc == 0 ]] || printf '%s\n' "$out" | tail -20 | sed 's/^/# /'
	result $rc "replay-$n: ${out##*$'\n'} from corpus-$n, no finding"
done

skip=
if ! command -v clang >/dev/null; then
	skip="clang is not installed"
elif ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
	skip="libFuzzer (libclang-rt-dev) is not installed"
elif grep -q -- '--enable-sanitizers' "$top_builddir/config.status" 2>/dev/null; then
	skip="the sanitizers run replays the corpora; the plain run fuzzes"
fi
if [[ -n $skip ]]; then
	for n in $names; do
		t=$((t + 1))
		echo "ok $t - fuzz-$n for ${seconds}s # SKIP $skip"
	done
else
	build=$(mktemp -d /tmp/pv-fuzz-build.XXXXXX)
	trap 'rm -rf "$build"' EXIT
	if (cd "$build" && "$top_srcdir/configure" --enable-fuzzer CC=clang >configure.log 2>&1 &&
		make -j2 $(printf 'tests/fuzz/fuzz-%s ' $names) >make.log 2>&1); then
		for n in $names; do
			work=$build/corpus-$n
			cp -r "$top_srcdir/tests/fuzz/corpus-$n" "$work"
			dict=()
			[[ -s $top_srcdir/tests/fuzz/$n.dict ]] && dict=(-dict="$top_srcdir/tests/fuzz/$n.dict")
			(cd "$build" && "$build/tests/fuzz/fuzz-$n" -max_total_time="$seconds" \
				-print_final_stats=1 -timeout=10 "${dict[@]}" "$work") >"$build/$n.log" 2>&1
			rc=$?
			execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/$n.log")
			[[ $rc == 0 ]] || grep -E 'ERROR|SUMMARY|fuzz-' "$build/$n.log" | head -20 | sed 's/^/# /'
			result $rc "fuzz-$n for ${seconds}s: ${execs:-no} inputs, no finding"
		done
	else
		tail -20 "$build/make.log" "$build/configure.log" | sed 's/^/# /'
		result 1 "the --enable-fuzzer build with clang"
	fi
fi
echo "1..$t"
[[ $failed == 0 ]]
