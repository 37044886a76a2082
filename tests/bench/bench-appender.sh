#!/bin/bash
# Benchmark of photovote-appender: fills the queue with EVENTS valid commands over ELECTIONS
# elections (default 100000 over 1000), then times how fast one appender drains it:
#
#   broker            no appender: the same messages consumed and acked in the same batches
#                     by a consumer that does nothing else (pv-appender-tool drain), the
#                     ceiling RabbitMQ sets on this machine
#   postgres          the postgres event store, batches of [appender] batch_size (BATCH)
#   postgres-one      the same, batch_size = 1: one message, one transaction at a time; it
#                     gets ONE_EVENTS commands (default: EVENTS / 10) to keep the run short
#   esdb (stand-in)   the esdb backend against the EventStoreDB stand-in (a Python server,
#                     one thread per connection), batches of BATCH: one append request per
#                     election of a batch, [eventstore] requests_in_flight at a time; it gets
#                     ESDB_EVENTS commands (default: EVENTS / 20)
#   kurrentdb         the kurrentdb backend (gRPC) against the KurrentDB stand-in (Node,
#                     @grpc/grpc-js), batches of BATCH: the elections of a batch in
#                     multi-stream AppendSession calls (up to 1 MiB each), as the stand-in
#                     offers them like KurrentDB 25.1; it gets KDB_EVENTS commands (default:
#                     EVENTS / 20)
#   kurrentdb-tls     the same against the stand-in run with --tls (HTTP/2 over TLS by ALPN,
#                     Basic credentials): the deployment KurrentDB defaults to (KDB_EVENTS)
#   kurrentdb-each, kurrentdb-tls-each
#                     the same two with [eventstore] append_sessions = false: one Append
#                     call per election of a batch, requests_in_flight at a time, as with a
#                     server before 25.1
#
# The broker and postgres runs print the CPU milliseconds each process spent per message
# (tests/bench/cpu.sh: RabbitMQ, PostgreSQL, the appender, the kernel, the machine), and the
# postgres run the budget: the machine's CPU per event at half the broker's rate, the target
# of issue 19, next to what it spent.
#
# Each appender run also prints its batches and stream appends (its own count, logged at
# exit) and, for esdb and kurrentdb, the append requests the stand-in answered (Append and
# AppendSession calls): requests per stream per batch, 1 when every election of a batch went
# in a request of its own, near 0 when a batch's elections share a session.
#
# Every run gets a fresh database and queue on the same throwaway PostgreSQL and RabbitMQ
# (tests/servers), publishes everything first (with confirms), then starts the appender and
# waits until the audit log holds a verdict for every command.  Each election's commands are
# interleaved with those of the other elections (ACTIVE elections at a time, default all), as
# many users voting at once would.  Not part of make check.
#
# Usage: tests/bench/bench-appender.sh [EVENTS [ELECTIONS]]
#   from the build folder (or with top_srcdir and top_builddir set).
#   Environment: BATCH (default 1000, as [appender] batch_size), ACTIVE, ONE_EVENTS,
#   ESDB_EVENTS, KDB_EVENTS, BENCH_RUNS (default "broker postgres postgres-one esdb";
#   kurrentdb, kurrentdb-tls, kurrentdb-each and kurrentdb-tls-each are four more).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
export top_builddir=${top_builddir:-$PWD}
[[ -x $top_builddir/workers/photovote-appender ]] || {
	echo "bench-appender: run from the build folder (no workers/photovote-appender here)" >&2
	exit 2
}
EVENTS=${1:-100000}
ELECTIONS=${2:-1000}
BATCH=${BATCH:-1000}
ACTIVE=${ACTIVE:-$ELECTIONS}
ONE_EVENTS=${ONE_EVENTS:-$((EVENTS / 10))}
ESDB_EVENTS=${ESDB_EVENTS:-$((EVENTS / 20))}
KDB_EVENTS=${KDB_EVENTS:-$((EVENTS / 20))}
# shellcheck source=cpu.sh
. "$top_srcdir/tests/bench/cpu.sh"
broker_rate= # messages/s of the broker run, for the postgres run's budget
# Each run's stand-in writes its own stats file: an earlier run's stand-in lives on until the
# script exits, and still writes its own.
kdb_stats=$(mktemp -d "${TMPDIR:-/tmp}/bench-kdb-stats.XXXXXX") || exit 1
trap 'rm -rf "$kdb_stats"' EXIT
RUNS=${BENCH_RUNS:-broker postgres postgres-one esdb}
if ((EVENTS < ELECTIONS * 10)); then
	echo "bench-appender: at least 10 events per election" >&2
	exit 2
fi
# shellcheck source=../appender/lib.sh
. "$top_srcdir/tests/appender/lib.sh"
psql=${PV_TEST_PG_BINDIR:+$PV_TEST_PG_BINDIR/}psql

# gen FILE EVENTS ELECTIONS: the commands, one envelope a line; every one is accepted.
gen()
{
	python3 - "$@" <<'PY'
import json, os, random, sys, time, uuid

path, events, elections, active = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(7)
alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
t0 = int(time.time() * 1000)
seq = [0]

def ulid():
    seq[0] += 1
    v = ((t0 + seq[0]) << 80) | rnd.getrandbits(80)
    return "".join(alphabet[(v >> (5 * (25 - i))) & 31] for i in range(26))

at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
dumps = json.JSONEncoder(separators=(",", ":")).encode

def election(n):
    """n commands of one election, in an order the appender accepts."""
    eid, comp, c1, c2 = ulid(), ulid(), ulid(), ulid()
    owner = "owner-%s@example.org" % eid.lower()
    voters = (n - 5) // 4
    out = []
    def cmd(kind, user, **data):
        data["election_id"] = eid
        out.append(dumps({"event_id": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
                          "type": kind, "data": data,
                          "metadata": {"user": user, "admin": False, "at": at}}))
    cmd("ElectionCreated", owner, name="Bench", description="load")
    cmd("CompetitionAdded", owner, competition_id=comp, name="Landscapes")
    cmd("CandidateAdded", owner, competition_id=comp, candidate_id=c1, name="Hills")
    cmd("CandidateAdded", owner, competition_id=comp, candidate_id=c2, name="Lake")
    people = []
    for i in range(voters):
        vid, mail = ulid(), "voter%d-%s@example.org" % (i, eid.lower())
        people.append((vid, mail))
        cmd("VoterRegistered", owner, voter_id=vid, name="Voter %d" % i, email=mail)
    for i in range(n - 5 - 4 * voters):
        cmd("ElectionDescriptionChanged", owner, description="take %d" % i)
    cmd("ElectionOpened", owner, open_date=at)
    for vid, mail in people:
        bid = ulid()
        cmd("BallotCreated", mail, ballot_id=bid, voter_id=vid)
        cmd("BallotCandidateRated", mail, ballot_id=bid, competition_id=comp,
            candidate_id=c1, rating=rnd.randint(1, 5))
        cmd("BallotCast", mail, ballot_id=bid)
    return out

per, extra = divmod(events, elections)
with open(path, "w") as f:
    for start in range(0, elections, active):
        group = [election(per + (1 if i < extra else 0))
                 for i in range(start, min(start + active, elections))]
        # Round robin over the active elections: one command of each in turn.
        for k in range(max(len(g) for g in group)):
            for g in group:
                if k < len(g):
                    f.write(g[k] + "\n")
PY
}

# The append requests the EventStoreDB stand-in has answered 201 (its test-only counter).
standin_appends()
{
	curl -fsS "$PHOTOVOTE_EVENTSTORE_URL/_standin/faults" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["appends"])'
}

# kdb_appends: the Append and AppendSession calls the KurrentDB stand-in answered (its
# --stats file, written twice a second: read after a pause).
kdb_appends()
{
	sleep 0.6
	python3 -c 'import json, sys
try:
    s = json.load(open(sys.argv[1]))
    print(s["appends"] + s.get("sessions", 0))
except (OSError, ValueError):
    print(0)' "$PV_KDB_STANDIN_STATS"
}

# proc_cpu PID: the CPU seconds (user + system, all threads) the process has used.
proc_cpu()
{
	awk -v hz="$(getconf CLK_TCK)" '{ c = index($0, ") "); split(substr($0, c + 2), f, " ");
		printf "%.2f", (f[12] + f[13]) / hz }' "/proc/$1/stat" 2>/dev/null
}

# run NAME BACKEND BATCH_SIZE EVENTS: fresh database and queue, fill, drain, print a line.
results=()
run()
{
	local name=$1 backend=$2 batch=$3 events=$4 elections=$ELECTIONS t0 t1 n secs rate db last
	((events / elections >= 10)) || elections=$((events / 10))
	export PV_KDB_STANDIN_STATS=$kdb_stats/$name.json
	if ! PVA_BACKEND=$backend pva_setup "bench_${name//-/_}"; then
		echo "# servers unavailable"
		exit 1
	fi
	gen "$pva_work/messages" "$events" "$elections" \
		"$((ACTIVE < elections ? ACTIVE : elections))"
	last=$(tail -n 1 "$pva_work/messages" | sed 's/^{"event_id":"\([^"]*\)".*/\1/')
	# The schema and the queue first, so that the time below is the appender's alone.
	pva_start
	for _ in $(seq 100); do
		grep -q consuming "$pva_work/appender.log" 2>/dev/null && break
		sleep 0.1
	done
	pva_stop
	t0=$(date +%s.%N)
	pva_publish || { echo "# publish failed"; exit 1; }
	t1=$(date +%s.%N)
	echo "# $name: published $events commands over $elections elections in" \
		"$(printf '%.1f' "$(echo "$t1 - $t0" | bc -l)") s"
	if [[ $name == broker ]]; then
		# The ceiling: the same consumption and acks with no work at all.
		cpu_snapshot "$pva_work/cpu0"
		t0=$(date +%s.%N)
		PHOTOVOTE_AMQP_PREFETCH=$((batch * 2 > 65535 ? 65535 : batch * 2)) \
			"$pva_tool" drain "$events" "$batch" || { echo "# drain failed"; exit 1; }
		t1=$(date +%s.%N)
		cpu_snapshot "$pva_work/cpu1"
		secs=$(echo "$t1 - $t0" | bc -l)
		rate=$(echo "$events / $secs" | bc -l)
		results+=("$(printf '%-18s %-9s %6s %9s %9.2f %10.0f %8s' "$name" "(none)" "$batch" \
			"$events/$events" "$secs" "$rate" "-")")
		echo "# $name: $events consumed and acked in $(printf '%.2f' "$secs") s" \
			"($(printf '%.0f' "$rate") messages/s)"
		echo "# $name: CPU ms per message: $(cpu_report "$pva_work/cpu0" "$pva_work/cpu1" "$events")"
		broker_rate=$rate
		return
	fi
	local posts0=0 posts1=0 per="-" judged
	[[ $backend == esdb ]] && posts0=$(standin_appends)
	local kcpu0=0
	[[ $backend == kurrentdb ]] && posts0=$(kdb_appends) kcpu0=$(proc_cpu "$pv_kdb_pid")
	cpu_snapshot "$pva_work/cpu0"
	t0=$(date +%s.%N)
	pva_start PHOTOVOTE_APPENDER_BATCH_SIZE="$batch" \
		PHOTOVOTE_AMQP_PREFETCH=$((batch * 2 > 65535 ? 65535 : batch * 2)) \
		PHOTOVOTE_EVENTSTORE_APPEND_SESSIONS="${KDB_SESSIONS:-true}" \
		PHOTOVOTE_LOG_LEVEL=${BENCH_LOG_LEVEL:-info}
	# One appender takes the queue in order and commits batch after batch, so the last
	# command's verdict comes last: poll for it by key (the count below checks the rest),
	# with psql itself rather than Debian's Perl wrapper, to keep the polling light.
	while :; do
		[[ -n $("$psql" -XAtq "$PHOTOVOTE_POSTGRES_CONNINFO" -c \
			"SELECT 1 FROM audit_log WHERE event_id = '$last'" 2>/dev/null) ]] && break
		kill -0 "$APPENDER_PID" 2>/dev/null || { echo "# $name: the appender died"; break; }
		sleep 0.2
	done
	t1=$(date +%s.%N)
	cpu_snapshot "$pva_work/cpu1"
	n=$(pva_verdicts)
	secs=$(echo "$t1 - $t0" | bc -l)
	rate=$(echo "$n / $secs" | bc -l)
	db=$(pva_sql "SELECT round(extract(epoch FROM max(recorded) - min(received))::numeric, 2)
		FROM audit_log")
	n=$(pva_sql "SELECT count(*) FROM audit_log WHERE status = 'appended'")
	# The appender's own CPU time (user + system, all threads): the figure the machine's
	# other load does not change much.
	cpu=$(proc_cpu "$APPENDER_PID")
	echo "# $name: the appender used ${cpu:-?} CPU-s ($(cut -d' ' -f1 /proc/loadavg) load)," \
		"peak RSS $(awk '/^VmHWM:/ { printf "%.1f MB", $2 / 1024 }' "/proc/$APPENDER_PID/status")"
	echo "# $name: CPU ms per event: $(cpu_report "$pva_work/cpu0" "$pva_work/cpu1" "$n")"
	if [[ $name == postgres && -n $broker_rate ]]; then
		# Half the broker's rate leaves this much of the machine's CPUs to each event.
		echo "# $name: at half the broker's rate ($(printf '%.0f' "$(echo "$broker_rate / 2" |
			bc -l)") events/s) $(nproc) CPUs leave $(printf '%.3f' "$(echo \
			"$(nproc) * 1000 / ($broker_rate / 2)" | bc -l)") CPU ms per event"
	fi
	if [[ $backend == kurrentdb ]]; then
		# The stand-in is one Node thread: near 1 CPU-s per second of the run, it is
		# what sets the pace.
		cpu=$(proc_cpu "$pv_kdb_pid")
		echo "# $name: the stand-in used $(echo "${cpu:-0} - ${kcpu0:-0}" | bc -l |
			xargs printf '%.2f') CPU-s during the run of $(printf '%.2f' "$secs") s"
	fi
	pva_stop
	# "judged M messages in B batches: E events appended with S stream appends"
	judged=$(sed -n 's/.*appender: judged \([0-9]*\) messages in \([0-9]*\) batches: [0-9]* events appended with \([0-9]*\) stream appends.*/\2 \3/p' \
		"$pva_work/appender.log" | tail -n 1)
	echo "# $name: batches and stream appends: ${judged:-(not logged)}"
	if [[ $backend == esdb || $backend == kurrentdb ]]; then
		if [[ $backend == esdb ]]; then posts1=$(standin_appends); else posts1=$(kdb_appends); fi
		[[ -n $judged && ${judged#* } -gt 0 ]] &&
			per=$(printf '%.3f' "$(echo "($posts1 - $posts0) / ${judged#* }" | bc -l)")
		echo "# $name: the stand-in answered $((posts1 - posts0)) append calls:" \
			"$per request(s) per stream per batch"
	fi
	results+=("$(printf '%-18s %-9s %6s %9s %9.2f %10.0f %8s' "$name" "$backend" "$batch" \
		"$n/$events" "$secs" "$rate" "$per")")
	echo "# $name: $n of $events appended in $(printf '%.2f' "$secs") s" \
		"($(printf '%.0f' "$rate") events/s; first received to last recorded: $db s)"
	cp "$pva_work/appender.log" "${TMPDIR:-/tmp}/bench-appender-$name.log" 2>/dev/null
}

echo "# photovote-appender benchmark: $EVENTS events over $ELECTIONS elections," \
	"$ACTIVE active at a time, batch_size $BATCH, $(nproc) CPU(s)"
for r in $RUNS; do
	case $r in
	broker) run broker postgres "$BATCH" "$EVENTS" ;;
	postgres) run postgres postgres "$BATCH" "$EVENTS" ;;
	postgres-one) run postgres-one postgres 1 "$ONE_EVENTS" ;;
	esdb) run esdb esdb "$BATCH" "$ESDB_EVENTS" ;;
	kurrentdb) run kurrentdb kurrentdb "$BATCH" "$KDB_EVENTS" ;;
	kurrentdb-tls) PV_KDB_TLS=yes run kurrentdb-tls kurrentdb "$BATCH" "$KDB_EVENTS" ;;
	kurrentdb-each) KDB_SESSIONS=false run kurrentdb-each kurrentdb "$BATCH" "$KDB_EVENTS" ;;
	kurrentdb-tls-each)
		PV_KDB_TLS=yes KDB_SESSIONS=false run kurrentdb-tls-each kurrentdb "$BATCH" "$KDB_EVENTS" ;;
	*) echo "bench-appender: unknown run $r" >&2; exit 2 ;;
	esac
done
echo
printf '%-18s %-9s %6s %9s %9s %10s %8s\n' run backend batch appended seconds events/s \
	req/s/b
printf '%s\n' "${results[@]}"
