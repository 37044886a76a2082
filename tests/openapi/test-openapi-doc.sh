#!/bin/sh
# The OpenAPI document against the program without servers: valid JSON,
# OpenAPI 3 structure, every $ref resolves, the routes equal the program's
# table (photovote.fcgi --list-routes), request bodies equal the domain's
# field spec, every error code of the source is documented.  TAP.
: "${top_srcdir:?run from make check or set top_srcdir}"
: "${top_builddir:?run from make check or set top_builddir}"
set -u

if ! command -v python3 >/dev/null; then
	echo "1..0 # SKIP python3 missing"
	exit 0
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/pv-openapi.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
if ! "$top_builddir/fcgi/photovote.fcgi" --list-routes >"$work/routes"; then
	echo "Bail out! photovote.fcgi --list-routes failed"
	exit 1
fi
if ! "$top_builddir/tests/openapi/pv-openapi-fields" >"$work/fields"; then
	echo "Bail out! pv-openapi-fields failed"
	exit 1
fi
python3 "$top_srcdir/tests/openapi/check-openapi.py" static "$top_srcdir/fcgi/openapi.json" \
	"$work/routes" "$work/fields" "$top_srcdir"
