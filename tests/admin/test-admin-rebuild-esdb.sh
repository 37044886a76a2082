#!/bin/bash
# test-admin-rebuild.sh with the esdb event-store backend (the EventStoreDB stand-in).
PVADM_BACKEND=esdb exec "$top_srcdir/tests/admin/test-admin-rebuild.sh"
