#!/bin/bash
# The short chaos run (tests/chaos/chaos.sh) with the postgres event-store backend.
exec bash "$top_srcdir/tests/chaos/chaos.sh" --backend postgres
