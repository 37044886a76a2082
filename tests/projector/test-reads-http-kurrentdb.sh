#!/bin/bash
# test-reads-http.sh with the kurrentdb event-store backend (the KurrentDB gRPC stand-in): the
# projector follows $all filtered by the prefix Election-.
PVA_BACKEND=kurrentdb exec "$top_srcdir/tests/projector/test-reads-http.sh"
