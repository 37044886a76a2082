#!/bin/bash
# The console with RabbitMQ paused (a broker of the test's own, its process group stopped
# with SIGSTOP): the status line's call hangs (until librabbitmq's 5 s RPC timeout), yet
# keys are answered within 1 s each (the issue saw 3-6 s for a j); the dead-letter screen
# shows at once that it waits on RabbitMQ and Esc stops waiting; a stream opened meanwhile
# shows its events; the status line names the broker; SIGTERM ends the console within 1 s.
set -u
# shellcheck source=lib.sh
. "$top_srcdir/tests/admin/lib.sh"

if ! command -v tmux >/dev/null; then
	echo "1..0 # SKIP tmux missing (tests/install-deps.sh installs it)"
	exit 0
fi
echo "1..8"
if ! adm_setup pausedmq || ! pv_servers_need_private rabbitmq; then
	echo "# servers unavailable"
	exit 77
fi
export PHOTOVOTE_AMQP_PORT=$PV_TEST_AMQP_PORT
broker=$(pv_server_pid rabbitmq)
pv_on_exit "kill -CONT -- -$broker 2>/dev/null"
w=$pvp_work
adm_seed "$w/seed"
pvp_append "$w/seed"
adm_start_appender
adm_wait_status appender_queue_consumers 1 30
adm_stop_appender

s=mq
adm_tmux_start $s 80 24
adm_on $s "Election-$adm_e1" 15 >/dev/null
adm_on $s "queue 0 (0 consumers)" 10 >/dev/null
kill -STOP -- "-$broker"
# Let a status call start and hang.
sleep 3
slowest=0
for k in 1 2 3 4 5; do
	t0=$(date +%s%N)
	adm_keys $s '?'
	adm_on $s "Keys on the Streams screen" 5 >/dev/null
	adm_keys $s q
	adm_on $s "STREAM " 5 >/dev/null
	t=$((($(date +%s%N) - t0) / 1000000))
	((t > slowest)) && slowest=$t
done
echo "# slowest ? then q, both answered and read back, while RabbitMQ is paused: $slowest ms"
pvp_check "RabbitMQ paused: keys are answered, ? then q (each read back) within 2 s" test "$slowest" -lt 2000
# The dead letters are RabbitMQ's: opening them waits on the paused broker itself.
adm_keys $s 3
pvp_check "3 (dead letters) shows at once that it waits, on what, and that Esc stops it" eval \
	"adm_on $s 'photovote-admin  Dead letters' 3 &&
		adm_on_re $s '^\\[Esc: stop waiting\\] [0-9.]+ s for RabbitMQ' 5"
adm_keys $s Escape
pvp_check "Esc: no longer waiting" adm_on $s "stopped waiting" 3
adm_keys $s 1
adm_on $s "Election-$adm_e1" 20 >/dev/null
adm_keys $s Enter
pvp_check "a stream opened meanwhile shows its events once the calls before it timed out" \
	adm_on $s "3 events" 20
pvp_check "the status line names the broker that failed" adm_on $s "broker: RabbitMQ at 127.0.0.1:$PV_TEST_AMQP_PORT" 20
pid=$(adm_console_pid $s)
t0=$(date +%s%N)
kill -TERM "$pid"
adm_exited $s 5
ms=$((($(date +%s%N) - t0) / 1000000))
echo "# SIGTERM to exit: $ms ms"
pvp_check "SIGTERM ends it within 1 s" test "$ms" -lt 1000
pvp_check "... with exit status 143" test "$(cat "$w/$s.rc" 2>/dev/null)" = 143
kill -CONT -- "-$broker"
pvp_check "RabbitMQ back: the status line recovers" eval \
	"adm_tmux_start mq2 80 24 && adm_on mq2 'queue 0 (0 consumers)' 30"
adm_keys mq2 q
adm_exited mq2 5
exit 0
