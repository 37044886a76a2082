#!/bin/bash
# The long chaos run: at least 100 faults (about 15 minutes of load), figures for docs/chaos.md.
#
#   tests/chaos/chaos-long.sh [postgres|esdb] [chaos.sh options, e.g. --seed N]
#
# Run from the source tree after a build (_build, as ./run-tests makes it), or with
# top_srcdir/top_builddir set; prefix with `nice` on a shared machine.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
export top_srcdir
backend=postgres
case ${1:-} in postgres | esdb) backend=$1; shift ;; esac
exec bash "$top_srcdir/tests/chaos/chaos.sh" --backend "$backend" --duration 900 \
	--min-faults 100 "$@"
