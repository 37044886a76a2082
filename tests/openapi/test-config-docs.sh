#!/bin/sh
# The configuration documents against the program's key table:
# packaging/photovote.conf.example sets every key to its default, comments
# it and loads with pv_config_load; docs/configuration.md lists every key
# with its default, variable and range (check-config-docs.py).  TAP.
: "${top_srcdir:?run from make check or set top_srcdir}"
: "${top_builddir:?run from make check or set top_builddir}"
set -u

if ! command -v python3 >/dev/null; then
	echo "1..0 # SKIP python3 missing"
	exit 0
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/pv-config-docs.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
tool=$top_builddir/tests/openapi/pv-config-docs
example=$top_srcdir/packaging/photovote.conf.example
if ! "$tool" describe >"$work/describe"; then
	echo "Bail out! pv-config-docs describe failed"
	exit 1
fi
python3 "$top_srcdir/tests/openapi/check-config-docs.py" "$work/describe" "$example" \
	"$top_srcdir/docs/configuration.md" "$top_srcdir/lib/config.c" >"$work/tap"
status=$?
n=$(sed -n 's/^1\.\.//p' "$work/tap")
sed '/^1\.\./d' "$work/tap"
n=$((${n:-0} + 1))
if "$tool" load "$example" 2>"$work/err"; then
	echo "ok $n - the example loads with pv_config_load"
else
	echo "not ok $n - the example loads with pv_config_load"
	sed 's/^/# /' "$work/err"
	status=1
fi
echo "1..$n"
exit $status
