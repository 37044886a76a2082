#!/bin/bash
# Verdicts over HTTP: photovote.fcgi behind lighttpd and photovote-appender on one queue, real
# PostgreSQL and RabbitMQ, the event-store backend of PVA_BACKEND.  GET /commands/{id} answers
# pending / appended / rejected from the audit log; Prefer: wait=N answers 201/200 when the
# command was appended, 409/422/403 by the kind of rule that rejected it, 202 when N passes
# first, with Preference-Applied (N capped by [http] max_wait).
set -u
# shellcheck source=lib.sh
. "$top_srcdir/tests/appender/lib.sh"
# shellcheck source=../fcgi/web.sh
. "$top_srcdir/tests/fcgi/web.sh"

command -v lighttpd >/dev/null || skip_all "lighttpd missing"
command -v curl >/dev/null || skip_all "curl missing"
command -v jq >/dev/null || skip_all "jq missing"
pva_setup http || skip_all "servers unavailable"
WORK=$pva_work
MAX_WAIT=4
cat >"$WORK/pv.conf" <<EOF
[http]
threads = 4
max_wait = $MAX_WAIT
EOF
chmod 644 "$WORK/pv.conf"
chmod 755 "$WORK"
export PHOTOVOTE_CONFIG=$WORK/pv.conf

pva_start
for _ in $(seq 300); do
	[[ $(pva_sql "SELECT count(*) FROM pg_trigger WHERE tgname = 'audit_log_notify'" \
		2>/dev/null) == 1 ]] && break
	sleep 0.1
done
ALICE=$("$TOKEN_TOOL" -c "$WORK/pv.conf" create alice@example.org) || bail "token"
BOB=$("$TOKEN_TOOL" -c "$WORK/pv.conf" create bob@example.org) || bail "token"
ADMIN=$("$TOKEN_TOOL" -c "$WORK/pv.conf" create root@example.org --admin) || bail "token"
A=(-H "Authorization: Bearer $ALICE")
B=(-H "Authorization: Bearer $BOB")

pv_web_lighttpd

# expect NAME STATUS JQ: the last answer has STATUS and the jq filter holds on its body.
expect()
{
	if [[ $STATUS == "$2" ]] && jq -e "$3" <<<"$BODY" >/dev/null 2>&1; then
		ok "$1"
	else
		not_ok "$1 (got $STATUS $BODY)"
	fi
}

# An election, created with a wait longer than the cap.
req POST "$BASE/elections" '{"name":"Waiting","description":"d"}' -- "${A[@]}" \
	-H 'Prefer: respond-async, wait=60'
expect "POST /elections, Prefer: wait: 201 once appended" 201 \
	'.status == "appended" and .number == 0 and (.stream | startswith("Election-"))'
check "Preference-Applied names the capped wait" test "$(header Preference-Applied)" = \
	"wait=$MAX_WAIT"
E=$(jq -r .election_id <<<"$BODY")
first=$(jq -r .event_id <<<"$BODY")

req GET "$BASE/commands/$first" -- "${A[@]}"
expect "GET /commands/{id}: appended with stream and number" 200 \
	".status == \"appended\" and .stream == \"Election-$E\" and .number == 0
	 and .type == \"ElectionCreated\""

# State rule: the same election again.
req POST "$BASE/elections" "{\"election_id\":\"$E\",\"name\":\"Again\"}" -- "${A[@]}" \
	-H 'Prefer: wait=3'
expect "a state rule answers 409 with the rule" 409 \
	'.error.code == "election_exists" and .error.kind == "state"'
again=$(jq -r .error.event_id <<<"$BODY")
check "Preference-Applied: wait=3" test "$(header Preference-Applied)" = "wait=3"
req GET "$BASE/commands/$again" -- "${A[@]}"
expect "GET /commands/{id}: rejected with kind, rule and reason" 200 \
	'.status == "rejected" and .kind == "state" and .rule == "election_exists"
	 and (.reason | length > 0)'

# Authorization rule: a stranger renames it.
req PUT "$BASE/elections/$E/name" '{"name":"Mine now"}' -- "${B[@]}" -H 'Prefer: wait=3'
expect "an authorization rule answers 403" 403 \
	'.error.code == "not_owner" and .error.kind == "authorization"'

# Not creating anything: 200.
req PUT "$BASE/elections/$E/name" '{"name":"Renamed"}' -- "${A[@]}" -H 'Prefer: wait=3'
expect "an appended change answers 200" 200 '.status == "appended" and .number == 1'

# Value rule: closing before the election opened.
req POST "$BASE/elections/$E/open" '{"open_date":"2030-01-01T00:00:00Z"}' -- "${A[@]}" \
	-H 'Prefer: wait=3'
expect "opening answers 200" 200 '.status == "appended"'
req POST "$BASE/elections/$E/close" '{"close_date":"2029-01-01T00:00:00Z"}' -- "${A[@]}" \
	-H 'Prefer: wait=3'
expect "a value rule answers 422" 422 \
	'.error.code == "close_before_open" and .error.kind == "value"'

# Whose verdicts one may read.
req GET "$BASE/commands/$first" -- "${B[@]}"
expect "another user's command is not found" 404 '.error.code == "not_found"'
req GET "$BASE/commands/$first" -- -H "Authorization: Bearer $ADMIN"
expect "an administrator sees every command" 200 '.status == "appended"'
req GET "$BASE/commands/$first"
check "GET /commands without credentials: 401" test "$STATUS" = 401
req GET "$BASE/commands/not-a-uuid" -- "${A[@]}"
expect "a bad command id: 400" 400 '.error.code == "invalid_id"'
unknown=$(python3 -c 'import uuid; print(uuid.uuid4())')
req GET "$BASE/commands/$unknown" -- "${A[@]}"
expect "an id nobody published is unknown, not pending" 404 '.error.code == "unknown_command"'
# A mistyped id of a real command: one digit off breaks its MAC.
typo=${first:0:35}$([[ ${first:35:1} == 0 ]] && echo 1 || echo 0)
req GET "$BASE/commands/$typo" -- "${A[@]}"
expect "a mistyped id of a real command is unknown" 404 '.error.code == "unknown_command"'

# No preference: 202 as before, without Preference-Applied.
req PUT "$BASE/elections/$E/description" '{"description":"plain"}' -- "${A[@]}"
check "without Prefer: 202 and no Preference-Applied" \
	test "$STATUS" = 202 -a -z "$(header Preference-Applied)"

# The appender stopped: the wait runs out, 202; the verdict comes once it is back.
pva_stop
start=$SECONDS
req PUT "$BASE/elections/$E/description" '{"description":"later"}' -- "${A[@]}" \
	-H 'Prefer: wait=1'
expect "wait=1 with no appender: 202 after the wait" 202 '.status == "accepted"'
check "... with Preference-Applied: wait=1" test "$(header Preference-Applied)" = "wait=1"
check "... after about a second" test $((SECONDS - start)) -le 3
late=$(jq -r .event_id <<<"$BODY")
req GET "$BASE/commands/$late" -- "${A[@]}"
expect "GET /commands/{id}: pending while the appender is down" 200 '.status == "pending"'
# A waiter that is already waiting when the verdict is recorded is woken by the notification.
(sleep 1 && exec "$pva_appender" >>"$pva_work/appender.log" 2>&1) &
APPENDER_PID=$!
start=$SECONDS
req PUT "$BASE/elections/$E/description" '{"description":"woken"}' -- "${A[@]}" \
	-H 'Prefer: wait=4'
expect "a waiter gets the verdict once the appender is back" 200 '.status == "appended"'
check "... before its wait ran out" test $((SECONDS - start)) -lt 4
pva_wait_verdicts 9 20
req GET "$BASE/commands/$late" -- "${A[@]}"
expect "the command that waited out its 202 is appended later" 200 '.status == "appended"'

# A replay with the same Idempotency-Key waits for the same verdict.
req PUT "$BASE/elections/$E/name" '{"name":"Keyed"}' -- "${A[@]}" -H 'Idempotency-Key: k1'
keyed=$(jq -r .event_id <<<"$BODY")
req PUT "$BASE/elections/$E/name" '{"name":"Keyed"}' -- "${A[@]}" -H 'Idempotency-Key: k1' \
	-H 'Prefer: wait=3'
expect "an idempotent replay with Prefer: wait answers the verdict" 200 \
	".status == \"appended\" and .event_id == \"$keyed\""

# The stream holds exactly the appended commands.
check "the audit log holds every verdict once" test \
	"$(pva_sql "SELECT count(*) FROM audit_log")" = 10
pva_stop
check "the appender exits 0 on SIGTERM" test $? = 0
check "the program's log names no failure" \
	test "$(cat "$WORK/lighttpd-error.log" "$pva_work/appender.log" |
		grep -c -i 'sanitizer\|runtime error\|fatal')" = 0
pv_web_done
