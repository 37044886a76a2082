#!/bin/bash
# photovote-admin status with a PostgreSQL that accepts connections and never answers (what a
# paused or hung server looks like from the client: its kernel still completes the handshake):
# status ends within the connect bound (5 s per connection, lib/pgutil.c) with exit status 1,
# names PostgreSQL and the timeout once per line, and still asks the broker.  Before
# the bound it waited for good.  RabbitMQ is the test server; the "PostgreSQL" is a listener of
# this test's own.
set -u
# shellcheck source=../servers/servers.sh
. "$top_srcdir/tests/servers/servers.sh"
. "$top_srcdir/tests/lib/tap.sh"

echo "1..5"
if ! pv_servers_need rabbitmq; then
	echo "# servers unavailable"
	exit 77
fi
w=$(mktemp -d "${TMPDIR:-/tmp}/pvadm-pghung.XXXXXX")
pv_on_exit "rm -rf $w"
adm=$top_builddir/admin/photovote-admin

# A listener that never accepts: the kernel queues the connections, nobody answers them.
python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
print(s.getsockname()[1], flush=True)
time.sleep(300)
' >"$w/port" &
listener=$!
pv_on_exit "kill $listener 2>/dev/null"
for _ in $(seq 100); do [[ -s $w/port ]] && break; sleep 0.1; done
port=$(cat "$w/port")

export PHOTOVOTE_POSTGRES_CONNINFO="host=127.0.0.1 port=$port dbname=photovote user=photovote"
export PHOTOVOTE_AMQP_HOST=127.0.0.1 PHOTOVOTE_AMQP_PORT=$PV_TEST_AMQP_PORT
export PHOTOVOTE_AMQP_USER=guest PHOTOVOTE_AMQP_PASSWORD=guest PHOTOVOTE_AMQP_VHOST=/
export PHOTOVOTE_AMQP_QUEUE=pvadm.pghung.$$.appender
export PHOTOVOTE_AMQP_DEAD_LETTER_QUEUE=pvadm.pghung.$$.dead
unset PGCONNECT_TIMEOUT

start=$SECONDS
timeout 120 "$adm" status >"$w/out" 2>"$w/err"
rc=$?
took=$((SECONDS - start))
sed 's/^/# /' "$w/out" "$w/err"
echo "# status took $took s"
check "status ends, exit 1 (not killed by the test's 120 s timeout)" test "$rc" = 1
# Three connections at most (event store, checkpoint, parked elections), 5 s each.
check "within the connect bound: $took s, at most 3 x 5 s and some slack" test "$took" -le 25
check "PostgreSQL and the timeout named" grep -q 'PostgreSQL connect: .*timeout expired' "$w/err"
check "the event store named once on its line" \
	eval "grep -q '^photovote-admin: status: event store (postgres): PostgreSQL connect' '$w/err' &&
		! grep -q 'event store (postgres): event store' '$w/err'"
check "the broker still asked: its own answer printed" \
	grep -q "^photovote-admin: status: RabbitMQ at 127.0.0.1:$PV_TEST_AMQP_PORT: queue pvadm.pghung" "$w/err"
exit $((_failed > 0))
