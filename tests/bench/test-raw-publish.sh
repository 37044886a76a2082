#!/bin/bash
# tests/bench/raw-publish, the broker-alone baseline of bench-fcgi.sh and bench-latency.sh,
# against the test RabbitMQ: a baseline is only as good as the tool that measures it.
#   - the open loop (-r) sends exactly its schedule, warm-up included, and every message is
#     confirmed; the measured count is the schedule's after the warm-up;
#   - its latencies are ordered quantiles, and its own CPU per message is printed;
#   - the closed loop still measures as before;
#   - a message the broker cannot route, or an exchange that does not exist: exit 1, the
#     broker's own words named;
#   - bad usage: exit 2, nothing sent.
# shellcheck disable=SC2016  # eval'd checks
set -u
: "${top_srcdir:?run from make check or set top_srcdir}" "${top_builddir:?}"
. "$top_srcdir/tests/servers/servers.sh"

. "$top_srcdir/tests/lib/tap.sh"

RAW=$top_builddir/tests/bench/raw-publish
[[ -x $RAW ]] || { echo "1..0 # SKIP $RAW not built" && exit 0; }
pv_servers_need rabbitmq || { echo "Bail out! rabbitmq did not start"; exit 1; }
WORK=$(mktemp -d) || exit 1
pv_on_exit "rm -rf '$WORK'"
raw() { "$RAW" "$@" >"$WORK/out" 2>"$WORK/err"; echo $? >"$WORK/rc"; }
field() { awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }' "$WORK/out"; }

# 300 messages a second for 1 s after a half-second warm-up: 450 sent, 300 measured.
raw -r 300 -w 0.5 127.0.0.1 "$PV_TEST_AMQP_PORT" 1 1 320 photovote
check "open loop: exit 0" test "$(cat "$WORK/rc")" = 0
check "open loop: the schedule's 300 measured messages, each confirmed" \
	test "$(field confirms)" = 300
check "open loop: the rate is the schedule's" test "$(field rate)" = 300
check "open loop: quantiles in order, none negative" awk '{
	if ($8 < 0 || $8 > $10 || $10 > $12 || $12 > $14 || $14 > $16) exit 1 }' "$WORK/out"
check "open loop: its own CPU per message" awk '{ exit !($17 == "client_cpu_ms" && $18 > 0) }' \
	"$WORK/out"

raw 127.0.0.1 "$PV_TEST_AMQP_PORT" 1 2 100
check "closed loop: exit 0 and confirms counted" \
	eval 'test "$(cat "$WORK/rc")" = 0 && test "$(field confirms)" -gt 0'

# amq.topic exists and has no queue bound: the mandatory message comes back.
raw -r 50 -x amq.topic 127.0.0.1 "$PV_TEST_AMQP_PORT" 1 1 100 photovote
check "an unroutable message: exit 1, the broker's reply named" \
	eval 'test "$(cat "$WORK/rc")" = 1 && grep -q "returned a message: 312 NO_ROUTE" "$WORK/err"'
raw -r 50 -x "pvtest.nosuch.$$" 127.0.0.1 "$PV_TEST_AMQP_PORT" 1 1 100 photovote
check "no such exchange: exit 1, the broker's reply named" \
	eval 'test "$(cat "$WORK/rc")" = 1 && grep -q "closed the channel: 404 NOT_FOUND" "$WORK/err"'

for args in "-r 10 127.0.0.1 1 1 2 100" "-r 0.5 127.0.0.1 1 1 1 100" \
	"-x amq.topic 127.0.0.1 1 1 1 100 bare" "-w 1 127.0.0.1 1 1 1 100" "127.0.0.1 1 1 1" \
	"-r 10 127.0.0.1 1 1 1 100 odd"; do
	# shellcheck disable=SC2086  # the arguments are words
	raw $args
	check "bad usage ($args): exit 2, nothing printed on stdout" \
		eval 'test "$(cat "$WORK/rc")" = 2 && ! test -s "$WORK/out"'
done

echo "1..$_t"
exit $((_failed > 0))
