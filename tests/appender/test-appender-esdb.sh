#!/bin/bash
# The main appender test with the esdb event-store backend (EventStoreDB stand-in).
PVA_BACKEND=esdb exec bash "$top_srcdir/tests/appender/test-appender.sh"
