#!/bin/bash
# A bad election never blocks the others.  With the projector's byte budget set above Cosmos
# DB's 2 MB item limit, election A (1,200 candidates with 2 KB descriptions: a 2.5 MB part) is
# refused by the test equipment (413, as the service): the projector parks A (a row in
# projection_parked, one log line) and goes on with B and with C, created afterwards, which
# the API serves while A answers 503 projection_parked; A's later events are skipped;
# photovote-admin status lists A.  The budget fixed, `photovote-admin rebuild A` un-parks it:
# its documents equal a rebuild from scratch, the API serves it, and the running projector
# applies its next event.  The projector's metrics show it: the test equipment throttles the
# first requests (429 with x-ms-retry-after-ms, as the service), which are counted and retried,
# never parked; the 413 is counted and the election is parked.
set -u
# shellcheck source=lib.sh
. "$top_srcdir/tests/projector/lib.sh"

adm=$top_builddir/admin/photovote-admin
echo "1..21"
if ! pvp_setup parked; then
	echo "# servers unavailable"
	exit 77
fi
pvp_generate a --elections 1 --voters 3 --candidates 600 --description-bytes 2048 --seed 21
pvp_generate b --elections 1 --voters 5 --seed 22
pvp_generate c --elections 1 --voters 4 --seed 23
A=$(cat "$pvp_work/a.elections") B=$(cat "$pvp_work/b.elections") C=$(cat "$pvp_work/c.elections")
n=$(wc -l <"$pvp_work/a.events")
head -n $((n - 2)) "$pvp_work/a.events" >"$pvp_work/a1.events"
sed -n "$((n - 1))p" "$pvp_work/a.events" >"$pvp_work/a2.events"
tail -n 1 "$pvp_work/a.events" >"$pvp_work/a3.events"

pvp_append "$pvp_work/a1.events" >/dev/null && pvp_append "$pvp_work/b.events" >/dev/null
last=$(pvp_sql "SELECT max(position) FROM es_events")
_pv_srv_pick_port mport || exit 1
M=http://127.0.0.1:$mport
# sample NAME: the value of the sample NAME (labels as exposed) in the projector's metrics.
sample() { curl -s -m 5 "$M/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }
# The first 3 requests for this database: 429, retry after 20 ms.
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST \
	"$PV_TEST_COSMOS_URL/_pv_test/throttle?db=$PHOTOVOTE_COSMOS_DATABASE&count=3&retry_after_ms=20")
pvp_start PHOTOVOTE_PROJECTOR_MAX_DOCUMENT_BYTES=4194304 \
	PHOTOVOTE_PROJECTOR_METRICS_LISTEN=127.0.0.1:"$mport"
pvp_check "a projector with a budget over 2 MB goes past A's refused write (checkpoint)" \
	pvp_wait_checkpoint "$last" 120
row() { pvp_sql "SELECT $1 FROM projection_parked WHERE election_id = '$A'"; }
pvp_check "A is parked: Cosmos DB's status 413 and its words, at A's event" eval \
	'test "$(row status)" = 413 &&
	 row reason | grep -q "Request size is too large" &&
	 test "$(row event_number)" -ge 0 &&
	 test "$(pvp_sql "SELECT count(*) FROM projection_parked")" = 1'
pvp_check "one log line says so, and 413 was never retried" eval \
	'test "$(grep -c "parked election $A" "$pvp_work/projector.log")" = 1 &&
	 ! grep -q "retrying" "$pvp_work/projector.log"'
pvp_check "B was projected: its documents give the fold" pvp_same_as_fold "$B"
pvp_check "metrics: the test equipment's 3 × 429 counted and retried, not parked (throttle \
order: $code)" eval \
	'test "$code" = 204 &&
	 test "$(sample "photovote_cosmos_requests_total{code=\"429\"}")" = 3 &&
	 test "$(sample photovote_cosmos_retries_total)" -ge 3 &&
	 ! grep -q "HTTP 429" "$pvp_work/projector.log"'
# The gauge is read with the heartbeat (every [projector] heartbeat_ms, 2 s).
parked_gauge()
{
	for _ in $(seq 50); do
		[[ $(sample photovote_projector_parked_elections) == 1 ]] && return 0
		sleep 0.2
	done
	return 1
}
pvp_check "metrics: the 413 counted, and A parked (parked_elections 1)" eval \
	'test "$(sample "photovote_cosmos_requests_total{code=\"413\"}")" -ge 1 && parked_gauge'

if ! pvp_web; then
	echo "Bail out! photovote.fcgi behind lighttpd did not start"
	exit 1
fi
pvp_append "$pvp_work/a2.events" >/dev/null && pvp_append "$pvp_work/c.events" >/dev/null
last=$(pvp_sql "SELECT max(position) FROM es_events")
pvp_check "C, created afterwards, is projected while A stays parked" eval \
	'pvp_wait_checkpoint "$last" 60 && pvp_same_as_fold "$C" &&
	 test "$(pvp_sql "SELECT count(*) FROM projection_parked")" = 1'
pvp_check "GET /elections/C: 200, as the fold" eval \
	'test "$(pvp_get "elections/$C" "$pvp_work/got")" = 200 &&
	 test "$(jq -cS . "$pvp_work/got")" = "$("$pvp_tool" fold "$C" owner | jq -cS .)"'
pvp_check "GET /elections/A: 503 projection_parked with the reason" eval \
	'test "$(pvp_get "elections/$A" "$pvp_work/got")" = 503 &&
	 test "$(jq -r .error.code "$pvp_work/got")" = projection_parked &&
	 jq -r .error.message "$pvp_work/got" | grep -q "status 413.*Request size is too large"'
pvp_check "GET /elections/A/results: 503 projection_parked" eval \
	'test "$(pvp_get "elections/$A/results" "$pvp_work/got")" = 503 &&
	 test "$(jq -r .error.code "$pvp_work/got")" = projection_parked'
pvp_check "photovote-admin status lists A with 413" eval \
	'"$adm" status >"$pvp_work/status" 2>&1;
	 grep -q "^parked_elections: 1$" "$pvp_work/status" &&
	 grep -q "^parked: $A event [0-9]* position [0-9]* status 413 since .*Request size" \
		"$pvp_work/status"'
pvp_check "photovote-admin status --json lists A with 413" eval \
	'"$adm" status --json 2>/dev/null |
	 jq -e --arg a "$A" ".parked_elections | length == 1 and .[0].election_id == \$a and
		.[0].status == 413" >/dev/null'
pvp_check "a rebuild with the budget still over 2 MB fails, and A stays parked" eval \
	'! PHOTOVOTE_PROJECTOR_MAX_DOCUMENT_BYTES=4194304 "$adm" rebuild "$A" \
		2>"$pvp_work/rebuild.err" &&
	 grep -q "413" "$pvp_work/rebuild.err" && test "$(row count\(\*\))" = 1'

# The fix: the default budget (1 MB), which splits A's candidates into parts that fit.
pvp_stop
pvp_start
pvp_check "photovote-admin rebuild A with the default budget succeeds" \
	"$adm" rebuild "$A"
pvp_check "... and un-parks it" eval \
	'test "$(pvp_sql "SELECT count(*) FROM projection_parked")" = 0 &&
	 "$adm" status 2>/dev/null | grep -q "^parked_elections: 0$"'
pvp_check "A's documents give the fold, skipped event included" pvp_same_as_fold "$A"
pvp_check "GET /elections/A: 200, all 1,200 candidates" eval \
	'test "$(pvp_get "elections/$A" "$pvp_work/got")" = 200 &&
	 test "$(jq "[.competitions[].candidates[]] | length" "$pvp_work/got")" = 1200'
pvp_append "$pvp_work/a3.events" >/dev/null
last=$(pvp_sql "SELECT max(position) FROM es_events")
pvp_check "the running projector applies A's next event (closed)" eval \
	'pvp_wait_checkpoint "$last" 60 && pvp_same_as_fold "$A" &&
	 test "$(jq -r .status <("$pvp_tool" view "$A" public))" = closed'
pvp_docs "$pvp_work/docs-live" "$A" "$B" "$C"
export PHOTOVOTE_COSMOS_DATABASE=$PHOTOVOTE_COSMOS_DATABASE-scratch
pvp_check "a rebuild from scratch (an empty Cosmos DB database)" eval \
	'"$pvp_tool" rebuild "$A" && "$pvp_tool" rebuild "$B" && "$pvp_tool" rebuild "$C"'
pvp_docs "$pvp_work/docs-scratch" "$A" "$B" "$C"
pvp_check "gives the same documents as the projection" \
	cmp -s "$pvp_work/docs-live" "$pvp_work/docs-scratch"
pvp_check "the projector exits 0 on SIGTERM, no sanitizer report" eval \
	'pvp_stop && test "$(grep -c -i "sanitizer\|runtime error" "$pvp_work/projector.log")" = 0'
exit 0
