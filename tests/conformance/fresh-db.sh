# shellcheck shell=bash
# Sourced by the postgres test scripts: a PostgreSQL server (the run's, or
# a private one) and a fresh database migrated with the project's sql/
# files, dropped at exit.  Exports PV_TEST_PG_CONNINFO naming it.  Prints a
# TAP "1..0 # SKIP" or "Bail out!" line and exits when it cannot.

srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${top_builddir:-.}
if [[ ! -f $srcdir/tests/servers/servers.sh ]]; then
	echo "1..0 # SKIP tests/servers/servers.sh is missing"
	exit 0
fi
# shellcheck source=../servers/servers.sh
. "$srcdir/tests/servers/servers.sh"
pv_servers_need postgres >&2 || { echo "Bail out! no PostgreSQL server"; exit 1; }

_pv_fresh_psql=${PV_TEST_PG_BINDIR:+$PV_TEST_PG_BINDIR/}psql
_pv_fresh_base=$PV_TEST_PG_CONNINFO
_pv_fresh_db=pv_test_$$_$RANDOM
"$_pv_fresh_psql" -X -q -v ON_ERROR_STOP=1 "$_pv_fresh_base" \
	-c "CREATE DATABASE $_pv_fresh_db ENCODING 'UTF8' TEMPLATE template0" >&2 ||
	{ echo "Bail out! cannot create database $_pv_fresh_db"; exit 1; }
pv_on_exit "\"$_pv_fresh_psql\" -X -q \"$_pv_fresh_base\" -c 'DROP DATABASE IF EXISTS $_pv_fresh_db WITH (FORCE)' >&2"

# libpq: a keyword given twice takes the last value.
export PV_TEST_PG_CONNINFO="$_pv_fresh_base dbname=$_pv_fresh_db"
"$builddir/tests/conformance/pv-migrate" "$PV_TEST_PG_CONNINFO" "$srcdir/sql" ||
	{ echo "Bail out! migrations failed"; exit 1; }
