#!/bin/bash
# The short chaos run (tests/chaos/chaos.sh) with the esdb backend (the EventStoreDB stand-in,
# keeping its streams in a data file across its restarts).
exec bash "$top_srcdir/tests/chaos/chaos.sh" --backend esdb
