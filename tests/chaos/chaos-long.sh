#!/bin/bash
# The long chaos run: at least 100 faults (at least 5 minutes of load; it goes on until the
# 100th fault was injected and writes came back after it), figures for docs/chaos.md.
#
#   tests/chaos/chaos-long.sh [postgres|esdb|kurrentdb] [chaos.sh options, e.g. --seed N]
#
# Run from the source tree after a build (_build, as ./run-tests makes it), or with
# top_srcdir/top_builddir set; prefix with `nice` on a shared machine.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
export top_srcdir
backend=postgres
case ${1:-} in postgres | esdb | kurrentdb) backend=$1; shift ;; esac
exec bash "$top_srcdir/tests/chaos/chaos.sh" --backend "$backend" --duration 300 \
	--min-faults 100 "$@"
