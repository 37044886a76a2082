#!/bin/bash
# test-admin-rebuild.sh with the kurrentdb event-store backend (the KurrentDB gRPC stand-in).
PVADM_BACKEND=kurrentdb exec "$top_srcdir/tests/admin/test-admin-rebuild.sh"
