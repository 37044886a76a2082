#!/bin/bash
# The console with RabbitMQ paused (a broker of the test's own, its process group stopped
# with SIGSTOP): the status line's call hangs (until librabbitmq's 5 s RPC timeout) and the
# line says for how long, yet keys are answered (the issue saw 3-6 s for a j) and a stream
# opened meanwhile shows its events at once; the dead-letter screen shows that it waits on
# RabbitMQ and Esc stops waiting, leaving the hung call to time out on its own while a stream
# opened next reads at once; the status line then names the broker; SIGTERM ends the console
# within 1 s.
set -u
# shellcheck source=lib.sh
. "$top_srcdir/tests/admin/lib.sh"

if ! command -v tmux >/dev/null; then
	echo "1..0 # SKIP tmux missing (tests/install-deps.sh installs it)"
	exit 0
fi
echo "1..10"
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
worst=0
for _ in 1 2 3 4 5; do
	adm_keys $s '?'
	t=$(adm_ms_until $s "Keys on the Streams screen")
	((t > worst)) && worst=$t
	adm_keys $s q
	t=$(adm_ms_until $s "STREAM ")
	((t > worst)) && worst=$t
done
echo "# slowest answer to a key while RabbitMQ is paused: $worst ms (screen polled every 20 ms)"
# 3 s: a bound that held with the 2-CPU machine at a load of 20 (five builds at once) under
# ASan; a console that blocked would wait 5 s, librabbitmq's RPC timeout.
pvp_check "RabbitMQ paused: keys are answered, each within 3 s" test "$worst" -lt 3000
# The status line is read on a connection and thread of its own: it says how long it has been
# reading, and the rest of the console does not wait for it.
pvp_check "the status line says for how long it has been reading" \
	adm_on_re $s '^\[status: reading for [0-9]+ s\] ' 10
adm_keys $s Enter
pvp_check "a stream opened meanwhile shows its events at once" adm_on $s "3 events" 2
adm_keys $s Escape
# The dead letters are RabbitMQ's: opening them waits on the paused broker itself.
adm_keys $s 3
pvp_check "3 (dead letters) shows at once that it waits, on what, and that Esc stops it" eval \
	"adm_on $s 'photovote-admin  Dead letters' 3 &&
		adm_on_re $s '^\\[Esc: stop waiting\\] [0-9.]+ s for RabbitMQ: the dead letters' 5"
adm_keys $s Escape
pvp_check "Esc: no longer waiting, and the call is left to time out" \
	adm_on $s "stopped waiting for RabbitMQ: the dead letters after" 3
# The hung call is left to its worker (librabbitmq's 5 s RPC timeout ends it); a new worker
# on new connections answers what is asked next, without waiting behind it.
t0=$(date +%s%N)
adm_keys $s 1
adm_on $s "Election-$adm_e1" 3 >/dev/null
adm_keys $s Enter
adm_on $s "3 events" 3 >/dev/null
ms=$((($(date +%s%N) - t0) / 1000000))
echo "# Esc, then a stream opened: its events after $ms ms (the hung call's timeout is 5 s)"
pvp_check "... and a stream opened next shows its events within 2 s, not after the timeout" \
	test "$ms" -lt 2000
adm_keys $s 1
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
