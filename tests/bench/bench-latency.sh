#!/bin/bash
# End-to-end latency benchmark (issues 13 and 19): POST /elections at fixed open-loop rates
# (default 100, 500 and 1,000 requests/s for 20 s each; the rate never drops when answers are
# slow, and latencies count from each request's scheduled time, tests/bench/open-loop.c) through
# nginx and photovote.fcgi, with photovote-appender and photovote-projector running.
# PV_BENCH_PIPELINE=api runs the command API alone (photovote.fcgi, nginx and RabbitMQ; a
# consumer that only acks keeps the queue short, as the appender does, and nothing is read
# back): the answer's latency without the workers' share of the two CPUs.  PV_BENCH_THREADS
# sets photovote.fcgi's request threads (default: the product's, [http] threads).  For each
# rate:
#   answer   p50/p90/p99/p99.9 of the 202s;
#   visible  (a) client side: one request in 50 reads its election back (GET until 200, checks
#            2 ms, or 5 % of the time since the send, apart), timed from the scheduled send;
#            (b) the projector's own histogram
#            photovote_projector_visible_delay_seconds{since="accepted"} (from photovote.fcgi's
#            acceptance to the documents written), its quantiles interpolated from the buckets
#            scraped before and after;
#   baseline GET /livez at the same rate, same web server and program, no work: the floor of
#            an answer on this machine in this run;
#   broker   (PV_BENCH_PIPELINE=api) the broker alone at the same rate: raw-publish -r sends
#            messages of photovote.fcgi's shape on one connection on the same open-loop
#            schedule, through the same exchange to the same drained queue, each timed from its
#            scheduled send to its confirm.  photovote.fcgi answers only after that confirm, so
#            this is the floor of the answer's latency that the broker sets.
# Each rate first runs PV_BENCH_WARMUP seconds (default 5) unmeasured: a fresh stack is cold
# (connections, the stand-in's JIT, empty tables), and its first seconds are not the steady state
# the target is about.  The load average is printed with each figure, and at the end the peak
# resident memory (VmHWM) of photovote.fcgi and of each worker over the whole run.  A script, not a test: run it from a build
# folder after `make check`:
#
#   top_srcdir=.. top_builddir=. ../tests/bench/bench-latency.sh [SECONDS [RATE...]]
: "${top_srcdir:?set top_srcdir (the source tree)}"
: "${top_builddir:?set top_builddir (the build tree)}"
. "$top_srcdir/tests/fcgi/web.sh"
. "$top_srcdir/tests/bench/cpu.sh"

SECONDS_EACH=${1:-20}
WARMUP=${PV_BENCH_WARMUP:-5}
shift
RATES=("${@:-100}")
(($# > 0)) || RATES=(100 500 1000)
command -v nginx >/dev/null || { echo "nginx missing" >&2; exit 1; }
pv_servers_need postgres rabbitmq cosmos || exit 1
pv_web_setup latency token >/dev/null
sed -i 's/^level = info/level = warning/' "$WORK/pv.conf"
PIPELINE=${PV_BENCH_PIPELINE:-full}
[[ $PIPELINE == full || $PIPELINE == api ]] || { echo "PV_BENCH_PIPELINE: full or api" >&2; exit 2; }
# The tests' configuration sets threads; the benchmark runs the product's default unless told.
if [[ -n ${PV_BENCH_THREADS:-} ]]; then
	sed -i "s/^threads = .*/threads = $PV_BENCH_THREADS/" "$WORK/pv.conf"
else
	sed -i "/^threads = /d" "$WORK/pv.conf"
fi
LOAD=$top_builddir/tests/bench/open-loop
[[ -x $LOAD ]] || { echo "$LOAD missing: make check (or make tests/bench/open-loop) first" >&2; exit 1; }
RAW=$top_builddir/tests/bench/raw-publish
[[ $PIPELINE == full || -x $RAW ]] || { echo "$RAW missing: make check first" >&2; exit 1; }
mport=$(free_port)
cat >>"$WORK/pv.conf" <<EOF
[cosmos]
endpoint = $PV_TEST_COSMOS_URL
key = c2VjcmV0LWtleS1mb3ItdGhlLXN0YW5kLWlu
database = pvbench-$$
emulator_quirks = true
[projector]
metrics_listen = 127.0.0.1:$mport
EOF
export PHOTOVOTE_CONFIG=$WORK/pv.conf
for f in "$top_srcdir"/sql/0*.sql; do
	[[ $f == */002_* || $f == */008_* ]] && continue # pv_web_setup applied them
	psql "$PG_CONNINFO" -q -v ON_ERROR_STOP=1 -f "$f" >/dev/null || exit 1
done
SAMPLE=50
APPENDER_PID= PROJECTOR_PID=
: >"$WORK/appender.log"
: >"$WORK/projector.log"
if [[ $PIPELINE == full ]]; then
	"$top_builddir/workers/photovote-appender" >>"$WORK/appender.log" 2>&1 &
	APPENDER_PID=$!
	pv_on_exit "kill $! 2>/dev/null; wait $! 2>/dev/null"
	"$top_builddir/workers/photovote-projector" >>"$WORK/projector.log" 2>&1 &
	PROJECTOR_PID=$!
	pv_on_exit "kill $! 2>/dev/null; wait $! 2>/dev/null"
fi
pv_web_start_fcgi "$WORK/fcgi.sock"
pv_web_nginx "$WORK/fcgi.sock"
BASE=$NGINX_BASE/api
if [[ $PIPELINE == full ]]; then
	pv_web_wait_ready "$BASE" >/dev/null || { echo "not ready" >&2; exit 1; }
	for _ in $(seq 100); do
		[[ $(curl -s "$BASE/healthz" | jq -r .status) == ok ]] && break
		sleep 0.2
	done
else
	# Without the projector /readyz says "not ready"; the API needs the broker only.
	SAMPLE=0
	# A queue that only grows is not the broker's steady state (it pages messages to disk):
	# the broker-alone consumer of bench-appender drains it.
	drain=$top_builddir/tests/appender/pv-appender-tool
	[[ -x $drain ]] || { echo "$drain missing: make check first" >&2; exit 1; }
	PHOTOVOTE_AMQP_PORT=$PV_TEST_AMQP_PORT PHOTOVOTE_AMQP_QUEUE=$QUEUE \
		PHOTOVOTE_AMQP_EXCHANGE=$PREFIX.events PHOTOVOTE_AMQP_DEAD_LETTER_EXCHANGE=$PREFIX.dead \
		PHOTOVOTE_AMQP_DEAD_LETTER_QUEUE=$PREFIX.dead "$drain" drain 0 100 >>"$WORK/appender.log" 2>&1 &
	pv_on_exit "kill $! 2>/dev/null; wait $! 2>/dev/null"
	for _ in $(seq 100); do
		[[ $(curl -s "$BASE/healthz" | jq -r .broker.status) == ok ]] && break
		sleep 0.2
	done
fi

# quantiles BEFORE AFTER SINCE: p50 p90 p99 in ms of the projector's delay since SINCE
# (accepted, stored) between two scrapes, interpolated linearly inside the buckets, and the count.
quantiles()
{
	python3 - "$1" "$2" "$3" <<'PY'
import re, sys
def read(path):
    b = {}
    for line in open(path):
        m = re.match(r'photovote_projector_visible_delay_seconds_bucket\{since="%s",le="([^"]+)"\} (\S+)' % sys.argv[3], line)
        if m:
            b[float(m.group(1))] = float(m.group(2))
    return b
a, z = read(sys.argv[1]), read(sys.argv[2])
les = sorted(z)
d = [(le, z[le] - a.get(le, 0)) for le in les]
total = d[-1][1] if d else 0
out = []
for q in (0.5, 0.9, 0.99):
    if not total:
        out.append("-"); continue
    want, prev_le, prev_c = q * total, 0.0, 0.0
    for le, c in d:
        if c >= want:
            if le == float("inf"):
                out.append(">%d" % (prev_le * 1000)); break
            v = prev_le + (le - prev_le) * ((want - prev_c) / (c - prev_c) if c > prev_c else 0)
            out.append("%.1f" % (v * 1000)); break
        prev_le, prev_c = le, c
print(" ".join(out), int(total))
PY
}

# broker_alone RATE: "p50 / p90 / p99 / p99.9" of the broker's confirms alone at RATE (see the
# top), or "-" in the whole pipeline, where the appender would judge these messages.
broker_alone()
{
	local out
	[[ $PIPELINE == api ]] || { echo "-"; return; }
	# 320 bytes: about the body of photovote.fcgi's message for open-loop's POSTs.  Its CPU
	# counts the warm-up too: per message sent.
	cpu_snapshot "$WORK/cpu.raw.before"
	if ! out=$("$RAW" -r "$1" -w "$WARMUP" -x "$PREFIX.events" 127.0.0.1 "$PV_TEST_AMQP_PORT" \
		"$SECONDS_EACH" 1 320 photovote 2>"$WORK/raw.err"); then
		echo "failed: $(tail -n 1 "$WORK/raw.err")"
		return
	fi
	cpu_snapshot "$WORK/cpu.raw.after"
	echo "broker alone at $1 messages/s: CPU ms per message: $(cpu_report "$WORK/cpu.raw.before" \
		"$WORK/cpu.raw.after" "$(awk -v r="$1" -v s="$SECONDS_EACH" -v w="$WARMUP" \
		'BEGIN { print r * (s + w) }')")" >>"$WORK/cpu.lines"
	awk '{ printf "%s / %s / %s / %s\n", $8, $10, $12, $14 }' <<<"$out"
}

echo "| rate (req/s) | load before | answer p50 / p90 / p99 / p99.9 (ms) | visible, client p50 / p90 / p99 (ms, n) | visible, projector histogram since accepted p50 / p90 / p99 (ms, n) | of which since stored p50 / p90 / p99 (ms) | baseline GET /livez p50 / p90 / p99 (ms) | broker alone, same rate: confirm p50 / p90 / p99 / p99.9 (ms) | statuses |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for rate in "${RATES[@]}"; do
	load=$(cut -d' ' -f1-3 /proc/loadavg)
	# The projector's histogram counts from the end of the warm-up.
	(sleep "$WARMUP" && cpu_snapshot "$WORK/cpu.before" &&
		curl -s "http://127.0.0.1:$mport/metrics" >"$WORK/before") &
	"$LOAD" "$BASE" "$rate" "$SECONDS_EACH" post "$TOKEN" "$SAMPLE" \
		"$WARMUP" >"$WORK/post-$rate.json"
	cpu_snapshot "$WORK/cpu.after"
	wait $!
	echo "$rate requests/s: CPU ms per request: $(cpu_report "$WORK/cpu.before" "$WORK/cpu.after" \
		"$(jq .sent "$WORK/post-$rate.json")")" >>"$WORK/cpu.lines"
	sleep 2 # the last events reach the documents
	curl -s "http://127.0.0.1:$mport/metrics" >"$WORK/after"
	read -r h50 h90 h99 hn <<<"$(quantiles "$WORK/before" "$WORK/after" accepted)"
	read -r s50 s90 s99 _ <<<"$(quantiles "$WORK/before" "$WORK/after" stored)"
	"$LOAD" "$BASE" "$rate" "$SECONDS_EACH" get "" 0 \
		"$WARMUP" >"$WORK/get-$rate.json"
	broker=$(broker_alone "$rate")
	jq -r --arg load "$load" --arg hist "$h50 / $h90 / $h99 ($hn)" --arg st "$s50 / $s90 / $s99" --arg broker "$broker" --slurpfile g "$WORK/get-$rate.json" \
		'"| \(.rate) | \($load) | \(.answer_ms.p50) / \(.answer_ms.p90) / \(.answer_ms.p99) / \(.answer_ms["p99.9"]) | \(.visible_ms.p50) / \(.visible_ms.p90) / \(.visible_ms.p99) (\(.visible_ms.n)) | \($hist) | \($st) | \($g[0].answer_ms.p50) / \($g[0].answer_ms.p90) / \($g[0].answer_ms.p99) | \($broker) | \(.statuses | tostring) sent \(.sent), errors \(.errors)\(if .errors > 0 then " " + (.error_kinds | tostring) else "" end), schedule lag \(.schedule_lag_ms) ms |"' \
		"$WORK/post-$rate.json"
done
echo
# Where the CPU went while each rate was measured (the read-backs included), by process.
cat "$WORK/cpu.lines"
# Where the projector's time went during the rates above: its pages, events, page time and
# Cosmos DB requests by status (counters since its start; the page times' buckets, cumulative,
# on one line).
awk '/^photovote_projector_(events|pages)_total /{print $1, $2}
     /^photovote_projector_page_duration_seconds_(sum|count) /{print $1, $2}
     /^photovote_projector_page_duration_seconds_bucket/{printf "%s ", $2} END {print ""}
     /^photovote_cosmos_(requests|retries)_total/{print $1, $2}' "$WORK/after"
# Warnings the workers logged (a replayed page, a retried request): none is expected.
for w in appender projector; do
	echo "$w log: $(wc -l <"$WORK/$w.log") lines"
	tail -n 5 "$WORK/$w.log"
done
# Peak resident memory over the run (the kernel's high-water mark, VmHWM).
hwm()
{
	awk '/^VmHWM:/ { printf "%.1f MB", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"
}
echo "peak RSS: photovote.fcgi $(hwm "$FCGI_PID"), photovote-appender $(hwm "$APPENDER_PID")," \
	"photovote-projector $(hwm "$PROJECTOR_PID")"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); machine: $(nproc) CPUs"
