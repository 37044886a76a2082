# shellcheck shell=bash
# The HTTP tests of photovote.fcgi, shared by the web-server tests
# (test-lighttpd.sh, test-nginx.sh, test-apache.sh): each starts its server
# in front of the program and calls pv_web_suite with the base URL.
#
# Every write route must publish exactly the right event (taken back off the
# queue with pv-consume and compared, properties included); every case of
# the errors table must answer its status and code and publish nothing.
#
# Each test gets its own database and its own exchange and queue names, so
# tests can share one PostgreSQL and one RabbitMQ.

set -u

. "$top_srcdir/tests/servers/servers.sh"

FCGI=$top_builddir/fcgi/photovote.fcgi
TOKEN_TOOL=$top_builddir/fcgi/photovote-token
CONSUME=$top_builddir/tests/fcgi/pv-consume

. "$top_srcdir/tests/lib/tap.sh"
bail()
{
	echo "Bail out! $*"
	exit 1
}
skip_all()
{
	echo "1..0 # SKIP $*"
	exit 0
}

free_port() { pv_free_port; }

# pv_web_setup NAME AUTH_MODE: servers, a database, tokens, a config file.
pv_web_setup()
{
	local name=$1 mode=$2 db
	command -v curl >/dev/null || skip_all "curl missing"
	command -v jq >/dev/null || skip_all "jq missing"
	pv_servers_need postgres rabbitmq || bail "servers did not start"
	WORK=$(mktemp -d "/tmp/pv-fcgi-$name.XXXXXX")
	chmod 755 "$WORK"
	pv_on_exit "rm -rf '$WORK'"
	db="pvfcgi_${name}_$$"
	psql "$PV_TEST_PG_CONNINFO" -qAt -c "CREATE DATABASE $db" >/dev/null || bail "createdb"
	PG_CONNINFO="$PV_TEST_PG_CONNINFO dbname=$db"
	psql "$PG_CONNINFO" -q -v ON_ERROR_STOP=1 -f "$top_srcdir/sql/002_api_tokens.sql" \
		>/dev/null || bail "sql/002"
	psql "$PG_CONNINFO" -q -v ON_ERROR_STOP=1 -f "$top_srcdir/sql/008_command_ids.sql" \
		>/dev/null || bail "sql/008"
	PREFIX="pvtest.$name.$$"
	QUEUE="$PREFIX.appender"
	BODY_LIMIT=2048
	cat >"$WORK/pv.conf" <<EOF
[log]
level = info
[http]
auth_mode = $mode
body_limit = $BODY_LIMIT
publish_timeout_ms = 3000
threads = 4
[amqp]
port = $PV_TEST_AMQP_PORT
heartbeat = 5
exchange = $PREFIX.events
queue = $QUEUE
dead_letter_exchange = $PREFIX.dead
dead_letter_queue = $PREFIX.dead
[postgres]
conninfo = $PG_CONNINFO
EOF
	chmod 644 "$WORK/pv.conf"
	TOKEN=$("$TOKEN_TOOL" -c "$WORK/pv.conf" create alice@example.org) || bail "token"
	ADMIN_TOKEN=$("$TOKEN_TOOL" -c "$WORK/pv.conf" create root@example.org --admin) ||
		bail "admin token"
	AUTH=(-H "Authorization: Bearer $TOKEN")
}

# pv_web_start_fcgi ADDR: the program on its own socket, stopped at exit.
pv_web_start_fcgi()
{
	"$FCGI" -c "$WORK/pv.conf" --listen "$1" >>"$WORK/fcgi.log" 2>&1 &
	FCGI_PID=$!
	pv_on_exit "kill $FCGI_PID 2>/dev/null; wait $FCGI_PID 2>/dev/null"
}

# pv_web_lighttpd [CONFIG]: lighttpd on a free port of 127.0.0.1, spawning photovote.fcgi
# at /api (bin-path: its listening socket on fd 0), with PHOTOVOTE_CONFIG=CONFIG when given
# (else the program inherits the environment); stopped at exit.  Sets BASE to the API's
# URL; bails with lighttpd's logs when the program does not become ready.
pv_web_lighttpd()
{
	pv_lighttpd_fcgi "$WORK" "$FCGI" ${1:+"\"PHOTOVOTE_CONFIG\" => \"$1\""} ||
		bail "lighttpd did not start"
	local port=$PV_LIGHTTPD_PORT
	BASE=http://127.0.0.1:$port/api
	pv_web_wait_ready "$BASE" || {
		sed 's/^/# /' "$WORK/lighttpd-error.log" "$WORK/lighttpd.out" 2>/dev/null | tail -20
		bail "lighttpd + photovote.fcgi not ready"
	}
}

# Waits up to 30 s (a program under ASan on a loaded machine starts slowly) until GET
# /readyz answers 200: the broker, PostgreSQL and, when configured, Cosmos DB are reachable
# (/healthz would also want a projector, which most of these tests do not run).
# Otherwise prints the last answer, which names what was not, and the program's log.
pv_web_wait_ready()
{
	pv_wait_ready "$1" "$WORK/healthz.out" && return 0
	[[ -f $WORK/fcgi.log ]] && echo "# fcgi log:" && sed 's/^/# /' "$WORK/fcgi.log" | tail -20
	return 1
}

# req METHOD URL [BODY [CONTENT-TYPE]] [-- extra curl args]: sets STATUS,
# BODY (response), HEADERS (file).
req()
{
	local method=$1 url=$2 data= ctype=application/json
	shift 2
	if [[ $# -gt 0 && $1 != -- ]]; then data=$1; shift; fi
	if [[ $# -gt 0 && $1 != -- ]]; then ctype=$1; shift; fi
	[[ ${1-} == -- ]] && shift
	local args=(-s -X "$method" -D "$WORK/headers" -o "$WORK/body" -w '%{http_code}')
	if [[ -n $data ]]; then
		printf '%s' "$data" >"$WORK/req"
		args+=(--data-binary "@$WORK/req" -H "Content-Type: $ctype")
	elif [[ $method == POST || $method == PUT ]]; then
		# An empty body still has a length (lighttpd wants one), no type.
		args+=(--data-binary '' -H 'Content-Type:')
	fi
	STATUS=$(curl "${args[@]}" "$@" "$url")
	BODY=$(cat "$WORK/body")
	HEADERS=$WORK/headers
}

# The messages on the queue (at most N, waiting W ms for each).
consume()
{
	"$CONSUME" "$PV_TEST_AMQP_URL" "$QUEUE" "${1:-10}" "${2:-300}"
}

queue_empty()
{
	[[ -z $(consume 1 300) ]]
}

header()
{
	grep -i "^$1:" "$HEADERS" | head -1 | cut -d: -f2- | tr -d '\r' | sed 's/^ //'
}

# write NAME METHOD PATH BODY TYPE EXPECTED_DATA_JQ: sends a write, expects
# 202 and exactly one message whose data equals the given JSON (after the
# jq filter fills generated values from the response), with its properties.
write_case()
{
	local name=$1 method=$2 path=$3 body=$4 type=$5 expect=$6 msg event_id cid
	cid="corr-$RANDOM-$RANDOM"
	req "$method" "$BASE$path" "$body" application/json -- "${AUTH[@]}" \
		-H "X-Correlation-Id: $cid"
	if [[ $STATUS != 202 ]]; then
		not_ok "$name: 202 (got $STATUS $BODY)"
		return
	fi
	event_id=$(jq -r .event_id <<<"$BODY")
	msg=$(consume 2 2000)
	local want
	want=$(jq -c --argjson r "$BODY" "$expect" <<<'null') || {
		not_ok "$name: bad expectation"
		return
	}
	if [[ $(wc -l <<<"$msg") -ne 1 || -z $msg ]]; then
		not_ok "$name: exactly one message (got: $msg)"
		return
	fi
	local errs
	errs=$(jq -r --arg id "$event_id" --arg type "$type" --arg cid "$cid" \
		--argjson want "$want" --argjson r "$BODY" --arg loc "$(header Location)" \
		--arg prefix "$PREFIX" '
		# "NOW" in the expectation stands for a date the server filled in.
		(.body.data | with_entries(if $want[.key] == "NOW" and
			(.value | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T")) then .value = "NOW" else . end))
		as $data |
		[ (if $data != $want then "data \(.body.data) != \($want)" else empty end),
		  (if .body.event_id != $id then "envelope event_id" else empty end),
		  (if .body.type != $type then "envelope type" else empty end),
		  (if .body.metadata.user != "alice@example.org" then "metadata.user" else empty end),
		  (if .body.metadata.correlation_id != $cid then "metadata.correlation_id" else empty end),
		  (if .properties.message_id != $id then "message_id" else empty end),
		  (if .properties.type != $type then "type property" else empty end),
		  (if .properties.content_type != "application/json" then "content_type" else empty end),
		  (if .properties.delivery_mode != 2 then "delivery_mode" else empty end),
		  (if (.properties.timestamp | type) != "number" then "timestamp" else empty end),
		  (if .properties.correlation_id != $cid then "correlation_id" else empty end),
		  (if .properties.headers.user != "alice@example.org" then "header user" else empty end),
		  (if .properties.headers.correlation_id != $cid then "header correlation_id" else empty end),
		  (if (.properties.headers.source | length) == 0 then "header source" else empty end),
		  (if .routing_key != .body.data.election_id then "routing key" else empty end),
		  (if .exchange != ($prefix + ".events") then "exchange" else empty end),
		  (if $r.status != "accepted" then "status field" else empty end),
		  (if ($loc | endswith("/commands/" + $id) | not) then "Location \($loc)" else empty end)
		] | join(", ")' <<<"$msg")
	if [[ -z $errs ]]; then ok "$name: 202, one $type published as sent"; else not_ok "$name: $errs"; fi
}

# error_case NAME STATUS CODE METHOD PATH [BODY [TYPE]] [-- curl args]
error_case()
{
	local name=$1 status=$2 code=$3
	shift 3
	req "$@"
	local got
	got=$(jq -r '.error.code // empty' <<<"$BODY" 2>/dev/null)
	if [[ $STATUS == "$status" && $got == "$code" ]] && queue_empty; then
		ok "$name: $status $code, nothing published"
	else
		not_ok "$name: want $status $code, got $STATUS $BODY"
	fi
}

pv_web_suite()
{
	BASE=$1
	local E C K V B r

	# Writes: each route publishes its event.
	write_case "POST /elections" POST /elections '{"name":"Photo 2026","description":"d"}' \
		ElectionCreated '{election_id: $r.election_id, name: "Photo 2026", description: "d"}'
	E=$(jq -r .election_id <<<"$BODY")
	[[ ${#E} == 26 ]] || bail "no election id"
	write_case "PUT name" PUT "/elections/$E/name" '{"name":"N2"}' ElectionNameChanged \
		"{election_id: \"$E\", name: \"N2\"}"
	write_case "PUT description" PUT "/elections/$E/description" '{"description":"D2"}' \
		ElectionDescriptionChanged "{election_id: \"$E\", description: \"D2\"}"
	write_case "POST competitions" POST "/elections/$E/competitions" '{"name":"Birds"}' \
		CompetitionAdded "{election_id: \"$E\", competition_id: \$r.competition_id, name: \"Birds\"}"
	C=$(jq -r .competition_id <<<"$BODY")
	write_case "PUT competition name" PUT "/elections/$E/competitions/$C/name" '{"name":"B2"}' \
		CompetitionNameChanged "{election_id: \"$E\", competition_id: \"$C\", name: \"B2\"}"
	write_case "PUT competition description" PUT "/elections/$E/competitions/$C/description" \
		'{"description":"x"}' CompetitionDescriptionChanged \
		"{election_id: \"$E\", competition_id: \"$C\", description: \"x\"}"
	write_case "POST candidates" POST "/elections/$E/competitions/$C/candidates" \
		'{"name":"Heron","image_url":"https://example.org/h.jpg"}' CandidateAdded \
		"{election_id: \"$E\", competition_id: \"$C\", candidate_id: \$r.candidate_id, name: \"Heron\", image_url: \"https://example.org/h.jpg\"}"
	K=$(jq -r .candidate_id <<<"$BODY")
	write_case "PUT candidate name" PUT "/elections/$E/competitions/$C/candidates/$K/name" \
		'{"name":"H2"}' CandidateNameChanged \
		"{election_id: \"$E\", competition_id: \"$C\", candidate_id: \"$K\", name: \"H2\"}"
	write_case "PUT candidate description" PUT \
		"/elections/$E/competitions/$C/candidates/$K/description" '{"description":"grey"}' \
		CandidateDescriptionChanged \
		"{election_id: \"$E\", competition_id: \"$C\", candidate_id: \"$K\", description: \"grey\"}"
	write_case "PUT candidate image" PUT "/elections/$E/competitions/$C/candidates/$K/image" \
		'{"image_url":"http://example.org/2.png","image_caption":"c"}' CandidateImageChanged \
		"{election_id: \"$E\", competition_id: \"$C\", candidate_id: \"$K\", image_url: \"http://example.org/2.png\", image_caption: \"c\"}"
	write_case "POST open" POST "/elections/$E/open" '{"open_date":"2026-01-01T00:00:00Z"}' \
		ElectionOpened "{election_id: \"$E\", open_date: \"2026-01-01T00:00:00Z\"}"
	write_case "POST voters" POST "/elections/$E/voters" \
		'{"name":"Alice","email":"alice@example.org"}' VoterRegistered \
		"{election_id: \"$E\", voter_id: \$r.voter_id, name: \"Alice\", email: \"alice@example.org\"}"
	V=$(jq -r .voter_id <<<"$BODY")
	write_case "POST ballots" POST "/elections/$E/ballots" "{\"voter_id\":\"$V\"}" BallotCreated \
		"{election_id: \"$E\", ballot_id: \$r.ballot_id, voter_id: \"$V\"}"
	B=$(jq -r .ballot_id <<<"$BODY")
	write_case "PUT rating" PUT "/elections/$E/ballots/$B/ratings/$K" \
		"{\"competition_id\":\"$C\",\"rating\":4}" BallotCandidateRated \
		"{election_id: \"$E\", ballot_id: \"$B\", candidate_id: \"$K\", competition_id: \"$C\", rating: 4}"
	write_case "POST cast" POST "/elections/$E/ballots/$B/cast" '' BallotCast \
		"{election_id: \"$E\", ballot_id: \"$B\"}"
	write_case "POST close (date defaults to now)" POST "/elections/$E/close" '' ElectionClosed \
		"{election_id: \"$E\", close_date: \"NOW\"}"
	write_case "DELETE candidate" DELETE "/elections/$E/competitions/$C/candidates/$K" '' \
		CandidateRemoved "{election_id: \"$E\", competition_id: \"$C\", candidate_id: \"$K\"}"
	write_case "DELETE competition" DELETE "/elections/$E/competitions/$C" '' \
		CompetitionRemoved "{election_id: \"$E\", competition_id: \"$C\"}"
	write_case "DELETE election" DELETE "/elections/$E" '' ElectionDeleted \
		"{election_id: \"$E\"}"

	# The errors table, one case each.
	error_case "body not JSON" 400 invalid_json POST "$BASE/elections" '{"name":' \
		application/json -- "${AUTH[@]}"
	error_case "body not an object" 400 invalid_json POST "$BASE/elections" '["x"]' \
		application/json -- "${AUTH[@]}"
	error_case "body not UTF-8" 400 invalid_json POST "$BASE/elections" \
		$'{"name":"\xff\xfe"}' application/json -- "${AUTH[@]}"
	error_case "nested deeper than 32" 400 invalid_json POST "$BASE/elections" \
		"{\"name\":$(printf '[%.0s' $(seq 33))$(printf ']%.0s' $(seq 33))}" \
		application/json -- "${AUTH[@]}"
	error_case "duplicate keys" 400 invalid_json POST "$BASE/elections" \
		'{"name":"a","name":"b"}' application/json -- "${AUTH[@]}"
	error_case "missing field" 400 missing_field POST "$BASE/elections" '{}' \
		application/json -- "${AUTH[@]}"
	error_case "wrongly typed field" 400 invalid_type POST "$BASE/elections" '{"name":5}' \
		application/json -- "${AUTH[@]}"
	error_case "unknown field" 400 unknown_field POST "$BASE/elections" \
		'{"name":"a","colour":"red"}' application/json -- "${AUTH[@]}"
	error_case "string too long" 400 field_too_long POST "$BASE/elections" \
		"{\"name\":\"$(printf 'x%.0s' $(seq 201))\"}" application/json -- "${AUTH[@]}"
	error_case "bad id in the body" 400 invalid_id POST "$BASE/elections" \
		'{"name":"a","election_id":"not-a-ulid"}' application/json -- "${AUTH[@]}"
	error_case "bad id in the path" 400 invalid_id PUT "$BASE/elections/nope/name" \
		'{"name":"a"}' application/json -- "${AUTH[@]}"
	error_case "body names another id than the path" 400 id_mismatch PUT \
		"$BASE/elections/01ARZ3NDEKTSV4RRFFQ69G5FAV/name" \
		'{"name":"a","election_id":"01ARZ3NDEKTSV4RRFFQ69G5FAW"}' application/json -- "${AUTH[@]}"
	error_case "Content-Type not JSON" 415 unsupported_media_type POST "$BASE/elections" \
		'{"name":"a"}' text/plain -- "${AUTH[@]}"
	error_case "body over the limit" 413 body_too_large POST "$BASE/elections" \
		"{\"name\":\"$(printf 'x%.0s' $(seq $((BODY_LIMIT + 10))))\"}" application/json -- \
		"${AUTH[@]}"
	error_case "unknown path" 404 not_found GET "$BASE/nothing/here" -- "${AUTH[@]}"
	error_case "known path, wrong method" 405 method_not_allowed GET \
		"$BASE/elections/01ARZ3NDEKTSV4RRFFQ69G5FAV/name" -- "${AUTH[@]}"
	check "405 names the allowed methods in Allow" test "$(header Allow)" = "PUT"
	error_case "no credentials" 401 unauthenticated POST "$BASE/elections" '{"name":"a"}'
	check "401 carries WWW-Authenticate: Bearer" grep -qi '^WWW-Authenticate: Bearer' "$HEADERS"
	error_case "bad token" 401 unauthenticated POST "$BASE/elections" '{"name":"a"}' \
		application/json -- -H "Authorization: Bearer pv_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	error_case "malformed Authorization" 401 unauthenticated POST "$BASE/elections" \
		'{"name":"a"}' application/json -- -H "Authorization: Basic YTpi"

	# Idempotency-Key: same key and user, same answer and one event.
	local first second
	req POST "$BASE/elections" '{"name":"Idem"}' application/json -- "${AUTH[@]}" \
		-H "Idempotency-Key: k-$$"
	first=$BODY
	req POST "$BASE/elections" '{"name":"Idem"}' application/json -- "${AUTH[@]}" \
		-H "Idempotency-Key: k-$$"
	second=$BODY
	check "Idempotency-Key: the retry answers as the first request" \
		test "$STATUS:$second" = "202:$first"
	r=$(consume 3 1000 | wc -l)
	check "Idempotency-Key: one event published for two requests" test "$r" = 1
	req POST "$BASE/elections" '{"name":"Idem"}' application/json -- \
		-H "Authorization: Bearer $ADMIN_TOKEN" -H "Idempotency-Key: k-$$"
	check "Idempotency-Key of another user is another event" \
		test "$(jq -r .event_id <<<"$BODY")" != "$(jq -r .event_id <<<"$first")"
	r=$(consume 3 1000)
	check "the admin token's event says admin" test "$(jq -r .body.metadata.admin <<<"$r")" = true
	error_case "Idempotency-Key reused with another body" 422 idempotency_key_reused POST \
		"$BASE/elections" '{"name":"Other"}' application/json -- "${AUTH[@]}" \
		-H "Idempotency-Key: k-$$"

	req GET "$BASE/healthz"
	check "GET /healthz: 200 with broker and postgres ok" \
		test "$STATUS:$(jq -r '.broker.status + .postgres.status' <<<"$BODY")" = "200:okok"
	req GET "$BASE/metrics"
	check "GET /metrics: requests by route and status" \
		grep -q '^photovote_http_requests_total{route="POST /elections",status="202"} [1-9]' \
		"$WORK/body"
	check "GET /metrics: latency histogram and confirms" \
		grep -q '^photovote_amqp_confirms_total [1-9]' "$WORK/body"
}

pv_web_done()
{
	echo "1..$_t"
	[[ $_failed == 0 ]]
}

# pv_web_nginx SOCKET [AUTH_FILE]: nginx in front of the program's Unix
# socket; /api/ (with HTTP Basic when AUTH_FILE is given) and /open/ (never
# authenticated by nginx).  Sets NGINX_BASE.
pv_web_nginx()
{
	local sock=$1 authfile=${2-} port auth=
	port=$(free_port) || bail "no free port"
	[[ -n $authfile ]] && auth="auth_basic \"photovote\"; auth_basic_user_file $authfile;"
	mkdir -p "$WORK/nginx-tmp"
	cat >"$WORK/nginx.conf" <<CONF
daemon off;
user root;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events {}
http {
	access_log off;
	client_body_temp_path $WORK/nginx-tmp/body;
	fastcgi_temp_path $WORK/nginx-tmp/fastcgi;
	proxy_temp_path $WORK/nginx-tmp/proxy;
	uwsgi_temp_path $WORK/nginx-tmp/uwsgi;
	scgi_temp_path $WORK/nginx-tmp/scgi;
	server {
		listen 127.0.0.1:$port;
		location /api/ {
			$auth
			include /etc/nginx/fastcgi_params;
			fastcgi_split_path_info ^(/api)(/.*)\$;
			fastcgi_param SCRIPT_NAME \$fastcgi_script_name;
			fastcgi_param PATH_INFO \$fastcgi_path_info;
			fastcgi_pass unix:$sock;
		}
		location /open/ {
			include /etc/nginx/fastcgi_params;
			fastcgi_split_path_info ^(/open)(/.*)\$;
			fastcgi_param SCRIPT_NAME \$fastcgi_script_name;
			fastcgi_param PATH_INFO \$fastcgi_path_info;
			fastcgi_pass unix:$sock;
		}
	}
}
CONF
	nginx -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" >>"$WORK/nginx.out" 2>&1 &
	NGINX_PID=$!
	pv_on_exit "kill $NGINX_PID 2>/dev/null; wait $NGINX_PID 2>/dev/null"
	NGINX_BASE=http://127.0.0.1:$port
	# Until nginx listens (10 s at most): on a loaded machine a request sent at once met a
	# refused connection, which is nginx's start, not what a test looks at.
	pv_wait_port "$port" 10 "$NGINX_PID" || true
}
