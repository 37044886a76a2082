#!/bin/bash
# The event store conformance suite on the postgres backend: a fresh
# database on the run's PostgreSQL (or a private one), migrated with the
# project's sql/ files, then tests/conformance/test-eventstore (TAP).
set -u

srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${top_builddir:-.}
if [[ ! -f $srcdir/tests/servers/servers.sh ]]; then
	echo "1..0 # SKIP tests/servers/servers.sh is missing"
	exit 0
fi
# shellcheck source=../servers/servers.sh
. "$srcdir/tests/servers/servers.sh"
pv_servers_need postgres >&2 || { echo "Bail out! no PostgreSQL server"; exit 1; }

psql=${PV_TEST_PG_BINDIR:+$PV_TEST_PG_BINDIR/}psql
db=pv_conformance_$$_$RANDOM
base=$PV_TEST_PG_CONNINFO
"$psql" -X -q -v ON_ERROR_STOP=1 "$base" \
	-c "CREATE DATABASE $db ENCODING 'UTF8' TEMPLATE template0" >&2 ||
	{ echo "Bail out! cannot create database $db"; exit 1; }
pv_on_exit "\"$psql\" -X -q \"$base\" -c 'DROP DATABASE IF EXISTS $db WITH (FORCE)' >&2"

# libpq: a keyword given twice takes the last value.
export PV_TEST_PG_CONNINFO="$base dbname=$db"
"$builddir/tests/conformance/pv-migrate" "$PV_TEST_PG_CONNINFO" "$srcdir/sql" ||
	{ echo "Bail out! migrations failed"; exit 1; }

PV_TEST_ES_BACKEND=postgres "$builddir/tests/conformance/test-eventstore"
