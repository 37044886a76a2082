#!/bin/bash
# fcgi/openapi.json through `redocly lint` (@redocly/cli, pinned by tests/redocly/package-lock.json
# and installed with `npm ci` by tests/install-deps.sh, or here into the build tree when a
# separate build tree or a read-only source tree has none): its recommended rules, no error and
# no warning.  Telemetry and the update check are off.  TAP.
: "${top_srcdir:?run from make check or set top_srcdir}" "${top_builddir:?}"
set -u

bail()
{
	echo "Bail out! $*"
	exit 1
}
command -v node >/dev/null && command -v npm >/dev/null || {
	echo "1..0 # SKIP node or npm missing"
	exit 0
}
command -v jq >/dev/null || {
	echo "1..0 # SKIP jq missing"
	exit 0
}

bin=node_modules/@redocly/cli/bin/cli.js
src=$(cd "$top_srcdir/tests/redocly" && pwd) || bail "tests/redocly missing"
dir=
for d in "$src" "$top_builddir/tests/redocly"; do
	[[ -f $d/$bin ]] && dir=$d && break
done
if [[ -z $dir ]]; then
	# A source tree may be read-only (make distcheck): install into the build tree then.
	dir=$src
	if [[ ! -w $dir || $(cd "$top_builddir" && pwd) != "$(cd "$src/../.." && pwd)" ]]; then
		dir=$top_builddir/tests/redocly
		mkdir -p "$dir" && cp "$src/package.json" "$src/package-lock.json" "$dir/" ||
			bail "cannot copy tests/redocly to $dir"
	fi
	echo "# npm ci in $dir"
	(cd "$dir" && flock -w 600 . sh -c "test -f $bin ||
		npm ci --no-audit --no-fund --loglevel=error") >&2 || bail "npm ci in $dir failed"
fi

out=$(mktemp "${TMPDIR:-/tmp}/pv-redocly.XXXXXX") || exit 1
trap 'rm -f "$out"' EXIT
echo "1..2"
REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1 \
	node "$dir/$bin" lint --format=json "$top_srcdir/fcgi/openapi.json" >"$out" 2>/dev/null
rc=$?
if jq -e '.totals | type == "object"' "$out" >/dev/null 2>&1; then
	echo "ok 1 - redocly lint ran (status $rc, @redocly/cli $(jq -r .version "$out"))"
else
	echo "not ok 1 - redocly lint ran (status $rc): $(head -c 300 "$out")"
	exit 1
fi
totals=$(jq -c '.totals | {errors, warnings}' "$out")
if [[ $rc == 0 && $totals == '{"errors":0,"warnings":0}' ]]; then
	echo "ok 2 - fcgi/openapi.json: 0 errors, 0 warnings"
else
	echo "not ok 2 - fcgi/openapi.json: $totals"
	jq -r '.problems[] | "# \(.severity) \(.ruleId): \(.message) at \(.location[0].pointer // "?")"' \
		"$out"
	exit 1
fi
