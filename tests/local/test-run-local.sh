#!/bin/bash
# ./run-local, the README's first command, run non-interactively with a private data folder and
# the build tree under test (--no-install --no-build):
#   1. --demo-and-exit: the demo election's results are printed and right, and nothing is left
#      running once it exits;
#   2. a second run on the same folder, in the background until "ready": the data of the first
#      run is there again (its election's results, rebuilt from the events into the empty
#      Cosmos DB stand-in, through GET /elections/{id}/results), the admin token still works,
#      a third run refuses to start on top of it, and SIGINT stops every process;
#   3. meanwhile, supervision: the projector killed with SIGKILL (its pid from run-local's own
#      record, VAR/run/projector.pid) is started again with a log line and the stack still
#      works (a write is appended and projected); photovote.fcgi killed, lighttpd answers JSON
#      until it is back; the appender killed three times, with
#      PHOTOVOTE_LOCAL_RESTART_BURST=2, is left stopped with an error, the rest still serving.
# Bounded: the whole test has 360 seconds (each run is under `timeout` for what is left); about
# a minute on an idle machine before the supervision checks came, 4.5 to 5.5 minutes measured
# with them at a load average near 40 (plain and ASan builds).
# shellcheck disable=SC2016,SC2317  # jq programs and eval'd checks; functions run by check/trap
set -u
: "${top_srcdir:?run from make check or set top_srcdir}" "${top_builddir:?}"

. "$top_srcdir/tests/lib/tap.sh"
# jqe FILTER [ARGS...]: jq -e, quietly.
jqe()
{
	jq -e "$@" >/dev/null
}
skip_all()
{
	echo "1..0 # SKIP $*"
	exit 0
}

for cmd in lighttpd curl jq psql node flock setsid; do
	command -v "$cmd" >/dev/null 2>&1 || skip_all "$cmd missing"
done
[[ -x $top_builddir/workers/photovote-projector ]] || skip_all "photovote-projector not built"

# One run-local test at a time: run-local's RabbitMQ has fixed distribution ports, and two
# run-locals starting at once race for the same free ones.  flock -o: run-local's servers
# do not inherit the lock.
if [[ -z ${PV_RUN_LOCAL_LOCKED:-} ]]; then
	PV_RUN_LOCAL_LOCKED=1 exec flock -o -w 1200 "${TMPDIR:-/tmp}/pv-run-local-tests.lock" \
		bash "$0" "$@"
fi
run_local=$top_srcdir/run-local
var=$(mktemp -d "${TMPDIR:-/tmp}/pv-run-local.XXXXXX") || exit 1
chmod 755 "$var"
out=$var.out
bg_pid=
cleanup()
{
	if [[ -n $bg_pid ]] && kill -0 "$bg_pid" 2>/dev/null; then
		kill -TERM "$bg_pid" 2>/dev/null
		wait "$bg_pid" 2>/dev/null
	fi
	if ((_failed)); then
		echo "# --- run-local output (last lines) ---"
		tail -n 60 "$out"* 2>/dev/null | sed 's/^/# /'
	fi
	# Whatever a failed run left: its processes name the folder.
	pkill -KILL -f -- "$var/" 2>/dev/null
	rm -rf "$var" "$out"*
}
trap cleanup EXIT
export PHOTOVOTE_LOCAL_VAR=$var PHOTOVOTE_LOCAL_BUILDDIR=$top_builddir
unset PHOTOVOTE_LOCAL_EXIT PHOTOVOTE_ESDB_URL
# Private fixed-port defaults, away from the usual ones so a developer's run-local is left alone
# (a taken default is replaced by a free port anyway).
export PHOTOVOTE_LOCAL_HTTP_PORT=18080

# leftovers: the processes still naming the folder (none once run-local has exited).  The
# filters of the last log lines may take a moment to see their end of file.
leftovers()
{
	local i
	for ((i = 0; i < 50; i++)); do
		pgrep -f -- "$var/" >/dev/null || return 1
		sleep 0.1
	done
	pgrep -af -- "$var/"
}
no_leftovers()
{
	local left
	left=$(leftovers) || return 0
	echo "# still running: $left"
	return 1
}

echo "1..23"
deadline=$((SECONDS + 360))
left()
{
	local s=$((deadline - SECONDS))
	echo $((s > 1 ? s : 1))
}

# 1. The demo, then exit.
timeout "$(left)" "$run_local" --demo-and-exit --no-install --no-build >"$out.1" 2>&1
rc=$?
check "run-local --demo-and-exit exits 0 (got $rc)" test "$rc" = 0
check "the output prints the results" \
	grep -q '1\. Northern lights: mean 5 over 2 ratings (sum 10)' "$out.1"
check "the output prints the admin token and the API URL" \
	eval 'grep -Eq "admin token +pv_" "$out.1" &&
		grep -Eq "HTTP API +http://127\.0\.0\.1:[0-9]+/api" "$out.1"'
check "the demo's results: closed, 2 ballots, ranked by mean" jqe '
	.status == "closed" and .cast_count == 2 and
	([.competitions[0].candidates[] | [.rank, .name, .count, .sum, .mean]] ==
	 [[1, "Northern lights", 2, 10, 5], [2, "Misty fjord", 2, 7, 3.5],
	  [3, "Desert dunes", 2, 4, 2]])' "$var/demo-results.json"
first_election=$(jq -r .election_id "$var/demo-results.json" 2>/dev/null)
first_token=$(cat "$var/admin-token" 2>/dev/null)
check "nothing is left running after --demo-and-exit" no_leftovers
check "no pid file is left" test -z "$(ls "$var/run" 2>/dev/null)"
check "the logs are prefixed by service" grep -q '^\[appender\] ' "$out.1"

# 2. In the background until "ready".  A background job starts with SIGINT ignored, which a
# script cannot trap: give it back its default.
PHOTOVOTE_LOCAL_RESTART_BURST=2 env --default-signal=INT timeout "$(left)" "$run_local" \
	--no-install --no-build >"$out.2" 2>&1 &
bg_pid=$!
ready=no
while ((SECONDS < deadline)); do
	grep -q '^\[run-local\] ready$' "$out.2" 2>/dev/null && { ready=yes; break; }
	kill -0 "$bg_pid" 2>/dev/null || break
	sleep 0.1
done
check "a second run on the same data gets ready" test "$ready" = yes
api=$(sed -n 's/^PHOTOVOTE_API=//p' "$var/run-local.env" 2>/dev/null)
token=$(sed -n 's/^PHOTOVOTE_ADMIN_TOKEN=//p' "$var/run-local.env" 2>/dev/null)
check "the admin token of the first run still works" test -n "$token" -a "$token" = "$first_token"

# The first run's election, rebuilt from the event store into the fresh stand-in.
results=$(curl -s --max-time 10 -H "Authorization: Bearer $token" \
	"$api/elections/$first_election/results")
check "GET /elections/{first run's election}/results while it runs" jqe --arg e "$first_election" '
	.election_id == $e and .status == "closed" and .cast_count == 2 and
	.competitions[0].candidates[0].name == "Northern lights" and
	.competitions[0].candidates[0].mean == 5' <<<"$results"
second=$(sed -n 's/^PHOTOVOTE_DEMO_ELECTION=//p' "$var/run-local.env" 2>/dev/null)
results=$(curl -s --max-time 10 -H "Authorization: Bearer $token" "$api/elections/$second/results")
check "GET /elections/{second run's election}/results" jqe --arg e "$second" --arg f "$first_election" '
	$e != $f and .election_id == $e and .cast_count == 2' <<<"$results"

# Supervision.  recorded NAME: the pid run-local recorded for NAME (empty if none).
recorded()
{
	local pid='' _
	[[ -f $var/run/$1.pid ]] && read -r pid _ <"$var/run/$1.pid"
	printf '%s' "$pid"
}
# restarted NAME OLD_PID: waits until run-local recorded another pid for NAME, which runs.
restarted()
{
	local pid
	while ((SECONDS < deadline)); do
		pid=$(recorded "$1")
		[[ -n $pid && $pid != "$2" ]] && kill -0 "$pid" 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}
old=$(recorded projector)
if [[ -n $old ]] && kill -0 "$old" 2>/dev/null; then
	kill -KILL "$old"
	check "the projector killed with SIGKILL is started again (it was pid $old)" \
		restarted projector "$old"
else
	not_ok "the projector killed with SIGKILL is started again: run-local recorded no running pid"
fi
check "run-local says how the projector ended and when it starts it again" \
	grep -q "^\[run-local\] projector (pid $old) was killed by SIGKILL; starting it again in 1s" \
	"$out.2"
check "run-local says the projector started again" \
	grep -q '^\[run-local\] projector started again (pid [0-9]*)$' "$out.2"
# The stack still works: an election created (appended: Prefer: wait) reaches the read model.
code=$(curl -s -o "$var/created.json" -w '%{http_code}' --max-time 20 -X POST \
	-H "Authorization: Bearer $token" -H 'Prefer: wait=10' -H 'Content-Type: application/json' \
	--data-binary '{"name":"After the restart"}' "$api/elections")
created=$(jq -r '.election_id // empty' "$var/created.json" 2>/dev/null)
projected()
{
	while ((SECONDS < deadline)); do
		curl -s --max-time 5 -H "Authorization: Bearer $token" "$api/elections/$created" |
			jqe '.name == "After the restart"' && return 0
		sleep 0.3
	done
	return 1
}
check "after the restart a write is appended ($code) and projected" \
	eval '[[ ($code == 201 || $code == 200) && -n $created ]] && projected'

# photovote.fcgi killed: while it is away lighttpd answers the API's JSON error, then it is back.
old=$(recorded fcgi)
[[ -n $old ]] && kill -0 "$old" 2>/dev/null && kill -KILL "$old"
away=$(curl -s -w '\n%{http_code} %{content_type}' --max-time 10 "$api/healthz")
check "photovote.fcgi killed: lighttpd answers 503 backend_unavailable as JSON meanwhile" \
	eval '[[ $(tail -1 <<<"$away") == "503 application/json" ]] &&
		head -1 <<<"$away" | jqe ".error.code == \"backend_unavailable\""'
back()
{
	while ((SECONDS < deadline)); do
		[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$api/healthz") == 200 ]] &&
			return 0
		sleep 0.3
	done
	return 1
}
check "photovote.fcgi is started again and answers" eval 'restarted fcgi "$old" && back'

# The appender killed three times with a burst of 2: left stopped, said so, the rest serving.
for i in 1 2 3; do
	old=$(recorded appender)
	[[ -n $old ]] && kill -0 "$old" 2>/dev/null && kill -KILL "$old"
	((i < 3)) && ! restarted appender "$old" && break
done
given_up()
{
	while ((SECONDS < deadline)); do
		grep -q '^\[run-local\] error: appender was killed by SIGKILL, its exit number 3 within 120s: not starting it again' "$out.2" && return 0
		sleep 0.2
	done
	return 1
}
check "the appender killed 3 times (burst 2) is given up on, with an error" given_up
sleep 2
check "and not started again" eval 'given_up && test -z "$(recorded appender)"'
check "the rest still serves (GET /healthz through lighttpd: 200)" \
	test "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$api/healthz")" = 200

# 3. A third run on the same folder refuses, and says why.
timeout 30 "$run_local" --no-install --no-build >"$out.3" 2>&1
rc=$?
check "a run on top of a running one refuses (status $rc)" \
	eval '[[ $rc == 1 ]] && grep -q "already running on $var" "$out.3"'

# 4. SIGINT stops everything.
pids=$(cat "$var"/run/*.pid 2>/dev/null | cut -d' ' -f1)
kill -INT "$bg_pid"
while ((SECONDS < deadline)); do
	kill -0 "$bg_pid" 2>/dev/null || break
	sleep 0.1
done
wait "$bg_pid"
rc=$?
bg_pid=
check "SIGINT ends run-local (status $rc, 130 expected)" test "$rc" = 130
gone=yes
for p in $pids; do
	kill -0 "$p" 2>/dev/null && gone="no ($p)"
done
check "after SIGINT no process is left (pid files and command lines: $gone)" \
	eval '[[ $gone == yes && -n $pids ]] && no_leftovers'
exit 0
