#!/bin/bash
# The OpenAPI document against the running program: photovote.fcgi behind
# lighttpd answers the shared HTTP suite (tests/fcgi/web.sh: every write,
# the errors table, idempotency) and the requests below (command verdicts,
# reads, Prefer: wait, the document itself); then every (route, status)
# that /metrics counted must be documented for that route, and
# GET /openapi.json must serve fcgi/openapi.json byte for byte.
: "${top_srcdir:?run from make check or set top_srcdir}"
. "$top_srcdir/tests/fcgi/web.sh"

command -v lighttpd >/dev/null || skip_all "lighttpd missing"
command -v python3 >/dev/null || skip_all "python3 missing"
pv_web_setup openapi token
for f in 003_audit_log.sql 005_audit_notify.sql; do
	psql "$PG_CONNINFO" -q -v ON_ERROR_STOP=1 -f "$top_srcdir/sql/$f" >/dev/null || bail "sql/$f"
done
pv_web_lighttpd "$WORK/pv.conf"

pv_web_suite "$BASE"

# The document itself.
curl -s -o "$WORK/served.json" -w '%{http_code} %{content_type}' "$BASE/openapi.json" \
	>"$WORK/served.status"
check "GET /openapi.json: 200 application/json" \
	grep -q '^200 application/json' "$WORK/served.status"
check "GET /openapi.json serves fcgi/openapi.json byte for byte" \
	cmp -s "$WORK/served.json" "$top_srcdir/fcgi/openapi.json"

# Command verdicts: an id no server published is unknown; a bad id; no token.
error_case "GET /commands/{id} for an id nobody published" 404 unknown_command GET \
	"$BASE/commands/3e4666bf-d5e5-4aa7-b8ce-cefe41c7568a" -- "${AUTH[@]}"
error_case "GET /commands/{id} with a bad id" 400 invalid_id GET "$BASE/commands/nope" -- \
	"${AUTH[@]}"
error_case "GET /commands/{id} without a token" 401 unauthenticated GET \
	"$BASE/commands/3e4666bf-d5e5-4aa7-b8ce-cefe41c7568a"

# Prefer: wait with no appender running: the 202 stands once the wait is over.
req POST "$BASE/elections" '{"name":"Wait"}' application/json -- "${AUTH[@]}" \
	-H "Prefer: wait=1"
check "Prefer: wait=1 without a verdict: 202 with Preference-Applied" \
	test "$STATUS:$(header Preference-Applied)" = "202:wait=1"
consume 1 1000 >/dev/null

# Reads: whatever they answer here (the read model may be off) is counted
# by /metrics and must be documented; without a token they are 401.
E=01ARZ3NDEKTSV4RRFFQ69G5FAV
for path in "/elections" "/elections?limit=2" "/elections/$E" "/elections/$E/results" \
	"/elections/nope" "/elections/nope/results"; do
	req GET "$BASE$path" -- "${AUTH[@]}"
	echo "# GET $path: $STATUS"
done
error_case "GET /elections/{eid} without a token" 401 unauthenticated GET "$BASE/elections/$E"

# Every status answered above, as /metrics counted them per route.
req GET "$BASE/metrics"
check "GET /metrics: 200" test "$STATUS" = 200
cp "$WORK/body" "$WORK/metrics"
while IFS= read -r line; do
	case $line in
	"ok "*) ok "${line#ok * - }" ;;
	"not ok "*) not_ok "${line#not ok * - }" ;;
	"#"*) echo "$line" ;;
	esac
done < <(python3 "$top_srcdir/tests/openapi/check-openapi.py" statuses \
	"$top_srcdir/fcgi/openapi.json" "$WORK/metrics")
pv_web_done
