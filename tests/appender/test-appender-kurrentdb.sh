#!/bin/bash
# The main appender test with the kurrentdb event-store backend (the KurrentDB gRPC stand-in).
PVA_BACKEND=kurrentdb exec bash "$top_srcdir/tests/appender/test-appender.sh"
