#!/bin/bash
# The short chaos run (tests/chaos/chaos.sh) with the kurrentdb event-store backend (gRPC, the
# KurrentDB stand-in).  Under sanitizers only the postgres run is made, as for esdb: the runs
# share every program and fault, and the suite's time is better spent once (docs/chaos.md).
if grep -q '^PV_CFLAGS = .*-fsanitize' "${top_builddir:-.}/Makefile" 2>/dev/null; then
	echo "1..0 # SKIP the kurrentdb chaos run is made in the plain build; chaos-postgres.sh runs here"
	exit 0
fi
exec bash "$top_srcdir/tests/chaos/chaos.sh" --backend kurrentdb
