#!/bin/sh
# Every C source follows .clang-format (one TAP case per folder).
set -u
src=${top_srcdir:-.}
if ! command -v clang-format >/dev/null 2>&1; then
	echo "1..0 # SKIP clang-format is not installed (tests/install-deps.sh installs it)"
	exit 0
fi
folders="lib fcgi workers admin tests"
echo "1..$(echo $folders | wc -w)"
n=0
for d in $folders; do
	n=$((n + 1))
	bad=""
	for f in $(cd "$src" && find "$d" \( -name node_modules -prune \) -o \( -name '*.[ch]' -print \) 2>/dev/null | sort); do
		if ! clang-format --style=file:"$src/.clang-format" "$src/$f" 2>/dev/null | cmp -s - "$src/$f"; then
			bad="$bad $f"
		fi
	done
	if [ -z "$bad" ]; then
		echo "ok $n - $d/ follows .clang-format"
	else
		echo "not ok $n - $d/ follows .clang-format"
		for f in $bad; do echo "#   run: clang-format -i $f"; done
	fi
done
