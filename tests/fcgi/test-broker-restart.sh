#!/bin/bash
# The broker goes away under load and comes back: requests answer 503 with
# Retry-After (never hang, never crash), /healthz says so, the program
# reconnects by itself, and every 202 corresponds to exactly one message on
# the queue (persistent messages survive the restart; none is duplicated).
: "${top_srcdir:?run from make check or set top_srcdir}"
. "$top_srcdir/tests/fcgi/web.sh"

command -v nginx >/dev/null || skip_all "nginx missing"
pv_servers_need postgres || bail "postgres did not start"
pv_servers_need_private rabbitmq || bail "rabbitmq did not start"
pv_web_setup restart token
pv_web_start_fcgi "$WORK/fcgi.sock"
pv_web_nginx "$WORK/fcgi.sock"
BASE=$NGINX_BASE/api
pv_web_wait_ready "$BASE" || bail "not ready"

# A writer in the background: sequential POSTs, logging "status event_id".
writer()
{
	local i=0 s b
	while [[ ! -e $WORK/stop-writer ]]; do
		i=$((i + 1))
		b=$(curl -s -m 20 -o - -w ' %{http_code}' -X POST -H "Authorization: Bearer $TOKEN" \
			-H 'Content-Type: application/json' --data-binary "{\"name\":\"w$i\"}" \
			"$BASE/elections")
		s=${b##* }
		echo "$s $(jq -r '.event_id // .error.code' <<<"${b% *}" 2>/dev/null)"
		[[ $s == 503 ]] && sleep 0.05
	done >"$WORK/writer.log"
}
writer &
wpid=$!
pv_on_exit "touch '$WORK/stop-writer'; wait $wpid 2>/dev/null"
sleep 1
pv_server_stop rabbitmq || bail "could not stop rabbitmq"
sleep 1
req POST "$BASE/elections" '{"name":"down"}' application/json -- "${AUTH[@]}" -m 20
check "broker down: 503 broker_unavailable" \
	test "$STATUS $(jq -r .error.code <<<"$BODY")" = "503 broker_unavailable"
check "503 carries Retry-After" test -n "$(header Retry-After)"
req GET "$BASE/healthz"
check "broker down: /healthz 503 naming the broker" \
	test "$STATUS $(jq -r .broker.status <<<"$BODY")" = "503 failing"
pv_server_start rabbitmq || bail "could not start rabbitmq"
pv_web_wait_ready "$BASE" && ok "reconnected after the broker came back" ||
	not_ok "reconnected after the broker came back"
sleep 1
touch "$WORK/stop-writer"
wait $wpid
req POST "$BASE/elections" '{"name":"after"}' application/json -- "${AUTH[@]}"
check "after the restart: 202" test "$STATUS" = 202
echo "202 $(jq -r .event_id <<<"$BODY")" >>"$WORK/writer.log"

kill -0 "$FCGI_PID" 2>/dev/null && ok "the program is still running" ||
	not_ok "the program is still running"
n202=$(grep -c '^202 ' "$WORK/writer.log")
n503=$(grep -c '^503 ' "$WORK/writer.log")
other=$(grep -vc '^20[2] \|^503 ' "$WORK/writer.log")
echo "# writer: $n202 accepted, $n503 unavailable, $other other"
check "the writer saw both 202 and 503 answers, nothing else" \
	test "$n202" -gt 1 -a "$n503" -gt 0 -a "$other" = 0
consume 100000 3000 | jq -r .properties.message_id | sort >"$WORK/queued"
grep '^202 ' "$WORK/writer.log" | cut -d' ' -f2 | sort >"$WORK/accepted"
check "every 202 is on the queue" test -z "$(comm -23 "$WORK/accepted" "$WORK/queued")"
check "no message is on the queue twice" test -z "$(uniq -d "$WORK/queued")"
pv_web_done
