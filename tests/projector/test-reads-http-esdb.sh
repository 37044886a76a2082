#!/bin/bash
# test-reads-http.sh with the esdb event-store backend (the EventStoreDB stand-in).
PVA_BACKEND=esdb exec "$top_srcdir/tests/projector/test-reads-http.sh"
