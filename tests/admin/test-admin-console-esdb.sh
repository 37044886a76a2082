#!/bin/bash
# test-admin-console.sh with the esdb event-store backend (the EventStoreDB stand-in).
PVADM_BACKEND=esdb exec "$top_srcdir/tests/admin/test-admin-console.sh"
