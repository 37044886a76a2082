#!/bin/bash
# photovote-admin's scriptable subcommands against real servers, with the event store of
# PVADM_BACKEND (postgres by default; esdb: the EventStoreDB stand-in): streams and events
# (text and JSON, --from/--count) with the exact output, control characters from the store
# escaped, status figures (queue depth, dead letters, feed head, checkpoint, lag) before and
# after a projection, dead letters the appender set aside peeked without being lost, usage
# errors exit 2, a server that is down exits 1 naming it; API tokens are created and revoked.
set -u
# shellcheck source=lib.sh
. "$top_srcdir/tests/admin/lib.sh"

echo "1..49"
if ! adm_setup cli; then
	echo "# servers unavailable"
	exit 77
fi
w=$pvp_work
e1=$adm_e1
e2=01BX5ZZKBKACTAV9WEVGEMMVRZ
c1=$adm_c1
meta=$adm_meta
adm_seed "$w/seed"
echo '{"event_id":"00000000-0000-4000-8000-000000000004","type":"ElectionCreated","data":{"name":"Second","election_id":"'"$e2"'"},'"$meta"'}' \
	>>"$w/seed"
pvp_check "seed events appended to the store" pvp_append "$w/seed"

# ---- streams ----
adm_run "streams: exit 0" 0 "$adm" streams
printf 'Election-%s\t2\nElection-%s\t0\n' "$e1" "$e2" >"$w/want"
pvp_check "streams: name and version of each stream" cmp -s "$w/want" <(sort "$w/out")
adm_run "streams --json: exit 0" 0 "$adm" streams --json
printf '{"name": "Election-%s", "version": 2}\n{"name": "Election-%s", "version": 0}\n' \
	"$e1" "$e2" >"$w/want"
pvp_check "streams --json: one object a line" cmp -s "$w/want" \
	<(python3 -c 'import json, sys
for l in sys.stdin: print(json.dumps(json.loads(l), sort_keys=True))' <"$w/out" | sort)

# ---- events ----
adm_run "events: exit 0" 0 "$adm" events "Election-$e1"
# The creation time is the store's; check its form, then compare the rest exactly.
created_ok()
{
	awk -F'\t' '$4 !~ /^20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-9:.]+Z$/ { bad = 1 } END { exit bad }' \
		"$w/out"
}
pvp_check "events: created is an RFC 3339 UTC time" created_ok
cat >"$w/want" <<EOT
0	ElectionCreated	00000000-0000-4000-8000-000000000001	T	{"name":"Red \\u001B[31m alert \\x7f","election_id":"$e1"}
1	ElectionNameChanged	00000000-0000-4000-8000-000000000002	T	{"name":"Tab\\there","election_id":"$e1"}
2	CompetitionAdded	00000000-0000-4000-8000-000000000003	T	{"name":"Portraits","election_id":"$e1","competition_id":"$c1"}
EOT
awk -F'\t' -v OFS='\t' '{ $4 = "T"; print }' "$w/out" >"$w/got"
if ! cmp -s "$w/want" "$w/got"; then diff "$w/want" "$w/got" | sed 's/^/#   /'; fi
pvp_check "events: number, type, id, created and data, exactly" cmp -s "$w/want" "$w/got"
pvp_check "events: no control character reaches the output" \
	test "$(LC_ALL=C tr -d '\t\n' <"$w/out" | LC_ALL=C tr -d '[:print:]' | wc -c)" = 0
adm_run "events --from 1 --count 1: exit 0" 0 "$adm" events "Election-$e1" --from 1 --count 1
pvp_check "events --from 1 --count 1: only event 1" \
	test "$(cut -f1,3 "$w/out")" = "1	00000000-0000-4000-8000-000000000002"
adm_run "events --from 2 --json: exit 0" 0 "$adm" events --json --from 2 "Election-$e1"
json_ok()
{
	python3 - "$w/out" "$e1" "$c1" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines
o = json.loads(lines[0])
assert o["number"] == 2 and o["type"] == "CompetitionAdded", o
assert o["id"] == "00000000-0000-4000-8000-000000000003", o
assert o["data"] == {"name": "Portraits", "election_id": sys.argv[2],
                     "competition_id": sys.argv[3]}, o
assert o["metadata"]["user"] == "o@example.org", o
assert o["created"].endswith("Z"), o
PY
}
pvp_check "events --json: the event as one JSON object" json_ok
adm_run "events --json of the control characters: exit 0" 0 "$adm" events --json --count 1 \
	"Election-$e1"
pvp_check "events --json: DEL and ESC escaped, still JSON with the same text" python3 -c '
import json, sys
raw = open(sys.argv[1], "rb").read()
assert all(32 <= b < 127 for b in raw.rstrip(b"\n")), raw
assert json.loads(raw)["data"]["name"] == "Red \x1b[31m alert \x7f"' "$w/out"
adm_run "events of a stream that does not exist: exit 1" 1 "$adm" events Election-nothing

# ---- status, dead letters (the appender declares the queues and sets poison aside) ----
adm_start_appender
pvp_check "status: the appender's queue is seen with its consumer" \
	adm_wait_status appender_queue_consumers 1 30
printf 'not json \033]0;owned\007\n{"event_id":"00000000-0000-4000-8000-0000000000aa","type":"Bogus","data":{"election_id":"%s"},%s}\n' \
	"$e1" "$meta" >"$w/poison"
"$adm_pub" publish <"$w/poison"
pvp_check "status: two dead letters" adm_wait_status dead_letters 2 30
adm_run "status: exit 0" 0 "$adm" status
# The feed's positions: 0, 1, 2, ... (postgres, esdb), or the events' places in the log
# (kurrentdb: $all prepare positions), where the head is the fourth event's, whatever it is.
head=3
if [[ $PHOTOVOTE_EVENTSTORE_BACKEND == kurrentdb ]]; then
	head=$(sed -n 's/^store_head: \([0-9]*\)$/\1/p' "$w/out")
	[[ -n $head && $head -gt 3 ]] || head=3
fi
cat >"$w/want" <<EOT
projector_feed: Election@$PHOTOVOTE_EVENTSTORE_BACKEND:$PHOTOVOTE_COSMOS_DATABASE/elections
appender_queue_ready: 0
appender_queue_consumers: 1
dead_letters: 2
store_head: $head
projector_checkpoint: -1
projector_lag: 4
parked_elections: 0
EOT
pvp_check "status: figures before the projector ran" cmp -s "$w/want" "$w/out" ||
	diff "$w/want" "$w/out" | sed 's/^/#   /'

pvp_once
adm_run "status --json after the projector ran: exit 0" 0 "$adm" status --json
pvp_check "status --json: checkpoint at the head, no lag" python3 -c '
import json, sys
o, head = json.load(open(sys.argv[1])), int(sys.argv[2])
assert o["store_head"] == head and o["projector_checkpoint"] == head, o
assert o["projector_lag"] == 0 and o["projector_lag_capped"] is False, o
assert o["dead_letters"] == 2 and o["appender_queue_ready"] == 0, o' "$w/out" "$head"

adm_run "dead-letters: exit 0" 0 "$adm" dead-letters
cp "$w/out" "$w/dead-1"
dead_ok()
{
	[[ $(wc -l <"$w/dead-1") == 2 ]] || return 1
	# message id, type, reason, body
	awk -F'\t' 'NF != 4 { bad = 1 } END { exit bad }' "$w/dead-1" || return 1
	grep -q $'^-\t-\t[^\t]*not JSON[^\t]*\tnot json \\\\x1b]0;owned\\\\x07$' "$w/dead-1" || return 1
	grep -q $'^00000000-0000-4000-8000-0000000000aa\t-\t[^\t]*unknown event type' "$w/dead-1"
}
pvp_check "dead-letters: id, type, reason and escaped body of each" dead_ok
adm_run "dead-letters again: exit 0" 0 "$adm" dead-letters --count 5
pvp_check "peeking lost nothing: the same messages, still counted" \
	test "$(cat "$w/out")" = "$(cat "$w/dead-1")" -a "$(adm_status_field dead_letters)" = 2
adm_run "dead-letters --count 1 --json: exit 0" 0 "$adm" dead-letters --count 1 --json
pvp_check "dead-letters --json: one object with the reason" python3 -c '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines
o = json.loads(lines[0])
assert o["reason"] and o["body_bytes"] > 0 and "body" in o, o' "$w/out"

# ---- API tokens ----
adm_run "token create --admin: exit 0" 0 "$adm" token create ops@example.org --admin
token=$(cat "$w/out")
pvp_check "token create: the token is printed, its hash stored for the user as admin" \
	test "$(pvp_sql "SELECT user_email || ' ' || is_admin FROM api_tokens
		WHERE token_hash = encode(sha256(convert_to('$token', 'UTF8')), 'hex')
		AND revoked_at IS NULL")" = "ops@example.org true"
adm_run "token revoke: exit 0" 0 "$adm" token revoke ops@example.org
pvp_check "token revoke: says how many and revokes them" \
	test "$(cat "$w/out")" = "1 token(s) revoked" -a \
	"$(pvp_sql "SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL")" = 0

# ---- usage and servers down ----
usage_ok()
{
	local rc
	"$adm" "$@" >/dev/null 2>"$w/err"
	rc=$?
	[[ $rc == 2 ]] && grep -q "^photovote-admin: " "$w/err"
}
pvp_check "usage: no stream, a bad --count, an unknown command or option exit 2" eval \
	'usage_ok events && usage_ok events x --count 0 && usage_ok frobnicate &&
	usage_ok status --bogus && usage_ok streams extra && usage_ok rebuild not-an-id &&
	usage_ok token && usage_ok token create && usage_ok token revoke x --admin'
pvp_check "usage: no command, or the console, off a terminal exit 2" eval \
	'usage_ok </dev/null && usage_ok console </dev/null'


# ---- audit: verdicts through the appender, filtered and paged ----
e2=01ARZ3NDEKTSV4RRFFQ69G5FAW
m2='"metadata":{"user":"u@example.org","admin":false,"at":"2023-11-14T22:13:20.000Z","correlation_id":"corr-1"}'
cat >"$w/audited" <<EOT
{"event_id":"00000000-0000-4000-8000-0000000000b1","type":"ElectionCreated","data":{"name":"Audited","election_id":"$e2"},$m2}
{"event_id":"00000000-0000-4000-8000-0000000000b2","type":"ElectionNameChanged","data":{"name":"Audited 2","election_id":"$e2"},$m2}
{"event_id":"00000000-0000-4000-8000-0000000000b3","type":"ElectionCreated","data":{"name":"Again","election_id":"$e2"},$m2}
EOT
"$adm_pub" publish <"$w/audited"
audit_rows()
{
	"$adm" audit --election "$e2" --json 2>/dev/null | wc -l
}
pvp_check "audit: the appender's three verdicts arrive" \
	eval 'for _ in $(seq 150); do [[ $(audit_rows) == 3 ]] && break; sleep 0.2; done; [[ $(audit_rows) == 3 ]]'
adm_run "audit --election: exit 0" 0 "$adm" audit --election "$e2"
pvp_check "audit --election: newest first, one line each" \
	test "$(cut -f2,3,5,8 "$w/out" | tr '\t' ' ')" = "rejected ElectionCreated - 00000000-0000-4000-8000-0000000000b3
appended ElectionNameChanged 1 00000000-0000-4000-8000-0000000000b2
appended ElectionCreated 0 00000000-0000-4000-8000-0000000000b1"
adm_run "audit --status rejected --user --type --correlation-id --json: exit 0" 0 \
	"$adm" audit --status rejected --user u@example.org --type ElectionCreated \
	--correlation-id corr-1 --json
pvp_check "... the one rejection, with its rule and reason" \
	eval 'test "$(wc -l <"$w/out")" = 1 &&
		jq -e ".event_id == \"00000000-0000-4000-8000-0000000000b3\" and .status == \"rejected\" and .kind == \"state\" and (.reason | length) > 0 and .correlation_id == \"corr-1\"" "$w/out" >/dev/null'
adm_run "audit --count 2: exit 0" 0 "$adm" audit --election "$e2" --count 2
cursor=$(sed -n 's/^photovote-admin: audit: more rows: add --before //p' "$w/err")
pvp_check "... two rows and the cursor of the next page on stderr" \
	test "$(wc -l <"$w/out")" = 2 -a -n "$cursor"
adm_run "audit --before CURSOR: exit 0" 0 "$adm" audit --election "$e2" --count 2 --before "$cursor"
pvp_check "... the oldest row, and no more" \
	eval 'test "$(cut -f8 "$w/out")" = 00000000-0000-4000-8000-0000000000b1 && test ! -s "$w/err"'
adm_run "audit --since the future: exit 0, nothing" 0 "$adm" audit --since 2999-01-01T00:00:00Z
pvp_check "... prints nothing" test ! -s "$w/out"
pvp_check "audit: a bad time, status, election or cursor exit 2" eval \
	'usage_ok audit --since yesterday-ish && usage_ok audit --status maybe &&
	usage_ok audit --election nope && usage_ok audit --before 12 && usage_ok audit --count 0'

port=$(adm_closed_port)
PHOTOVOTE_AMQP_PORT=$port "$adm" status >"$w/out" 2>"$w/err"
rc=$?
pvp_check "RabbitMQ down: status exits 1 naming it once" \
	eval '[[ $rc == 1 ]] && grep -q "RabbitMQ at 127.0.0.1:$port" "$w/err" &&
		test "$(grep -o "127.0.0.1:$port" "$w/err" | wc -l)" = 1'
PHOTOVOTE_POSTGRES_CONNINFO="host=127.0.0.1 port=$port dbname=x" "$adm" audit >"$w/out" 2>"$w/err"
rc=$?
pvp_check "PostgreSQL down: audit exits 1, one line naming it once" \
	eval '[[ $rc == 1 ]] && test "$(wc -l <"$w/err")" = 1 &&
		grep -q "^photovote-admin: audit: PostgreSQL" "$w/err" &&
		test "$(grep -o PostgreSQL "$w/err" | wc -l)" = 1'
if [[ $PHOTOVOTE_EVENTSTORE_BACKEND == esdb ]]; then
	PHOTOVOTE_EVENTSTORE_URL=http://127.0.0.1:$port "$adm" streams >"$w/out" 2>"$w/err"
elif [[ $PHOTOVOTE_EVENTSTORE_BACKEND == kurrentdb ]]; then
	PHOTOVOTE_EVENTSTORE_URL="kurrentdb://127.0.0.1:$port?tls=false" "$adm" streams \
		>"$w/out" 2>"$w/err"
else
	PHOTOVOTE_POSTGRES_CONNINFO="host=127.0.0.1 port=$port dbname=x" "$adm" streams \
		>"$w/out" 2>"$w/err"
fi
rc=$?
pvp_check "event store down: streams exits 1 naming it" \
	eval '[[ $rc == 1 ]] && grep -q "^photovote-admin: streams: event store ($PHOTOVOTE_EVENTSTORE_BACKEND" "$w/err"'
adm_stop_appender
exit 0
