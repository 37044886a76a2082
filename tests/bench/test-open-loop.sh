#!/bin/bash
# tests/bench/open-loop, the load generator of bench-latency.sh, against a stand-in of the
# command API (api-standin.py: 202s after 30 ms in chunked bodies, elections visible 100 ms
# after their POST, every seventh answer closing its connection): the figures the benchmark
# publishes are only as good as this tool.
#   - every scheduled request is sent and answered once, none counted as an error, through
#     chunked bodies and servers closing connections;
#   - latencies count from the schedule (the stand-in's 30 ms is in every answer);
#   - one POST in SAMPLE is read back until visible, and the figure is the stand-in's delay;
#   - a server that refuses connections: every request an error, named;
#   - bad usage: exit 2, nothing sent.
# shellcheck disable=SC2016,SC2317  # eval'd checks; functions run by check
set -u
: "${top_srcdir:?run from make check or set top_srcdir}" "${top_builddir:?}"
. "$top_srcdir/tests/servers/servers.sh"

. "$top_srcdir/tests/lib/tap.sh"
jqe() { jq -e "$@" >/dev/null; }

LOAD=$top_builddir/tests/bench/open-loop
command -v jq >/dev/null || { echo "1..0 # SKIP jq missing" && exit 0; }
[[ -x $LOAD ]] || { echo "1..0 # SKIP $LOAD not built" && exit 0; }
echo "1..8"

w=$(mktemp -d) || exit 1
port=$(pv_free_port) || exit 1
python3 "$top_srcdir/tests/bench/api-standin.py" "$port" 30 100 >"$w/standin.out" 2>&1 &
standin=$!
trap 'kill $standin 2>/dev/null; wait $standin 2>/dev/null; rm -rf "$w"' EXIT
for _ in $(seq 50); do
	grep -q ready "$w/standin.out" && break
	sleep 0.1
done

"$LOAD" "http://127.0.0.1:$port/api" 200 2 post secret 10 0.5 >"$w/post.json"
check "post: 400 sent after a warm-up of 100, each answered 202 once, no error" \
	jqe '.sent == 400 and .answered == 400 and .statuses == {"202": 400} and .errors == 0' \
	"$w/post.json"
check "post: the servers' closed connections were followed by new ones" \
	jqe '.connections > 1' "$w/post.json"
check "post: latencies count from the schedule (at least the stand-in's 30 ms)" \
	jqe '.answer_ms.p50 >= 30 and .answer_ms.p50 < 1000' "$w/post.json"
check "post: one in 10 read back, visible no sooner than the stand-in's 30 + 100 ms" \
	jqe '.visible_ms.n == 40 and .visible_ms.p50 >= 130 and .visible_ms.p50 < 1000' "$w/post.json"

"$LOAD" "http://127.0.0.1:$port/api" 100 1 get >"$w/get.json"
check "get: 100 GET /livez answered 200, no read-back" \
	jqe '.answered == 100 and .statuses == {"200": 100} and .visible_ms.n == 0' "$w/get.json"

closed=$(pv_free_port)
"$LOAD" "http://127.0.0.1:$closed/api" 50 1 post secret >"$w/refused.json"
check "refused: every request an error, named" \
	jqe '.answered == 0 and .errors == 50 and .error_kinds == {"connect: Connection refused": 50}' \
	"$w/refused.json"

check "usage: an unknown mode exits 2" eval \
	'"$LOAD" "http://127.0.0.1:$port/api" 10 1 put >/dev/null 2>&1; [[ $? == 2 ]]'
check "usage: a host name instead of an address exits 2 and says so" eval \
	'"$LOAD" "http://localhost:$port/api" 10 1 get 2>"$w/err" >/dev/null; [[ $? == 2 ]] &&
	grep -q "an IPv4 address is needed" "$w/err"'
exit $((_failed > 0))
