#!/bin/bash
# Authentication through a PostgreSQL outage (issue 14), on a private PostgreSQL: a token
# checked shortly before keeps working while PostgreSQL is stopped ([http] token_grace), past
# token_cache_ttl; a token never checked gets 503 auth_unavailable saying nothing was
# published; once PostgreSQL is back, a token revoked meanwhile stops within the TTL.
: "${top_srcdir:?run from make check or set top_srcdir}"
. "$top_srcdir/tests/fcgi/web.sh"

command -v nginx >/dev/null || skip_all "nginx missing"
pv_servers_need_private postgres || bail "postgres did not start"
pv_web_setup grace token
TTL=1
export PHOTOVOTE_HTTP_TOKEN_CACHE_TTL=$TTL PHOTOVOTE_HTTP_TOKEN_GRACE=120
BOB=$("$TOKEN_TOOL" -c "$WORK/pv.conf" create bob@example.org) || bail "token"
NEVER=$("$TOKEN_TOOL" -c "$WORK/pv.conf" create carol@example.org) || bail "token"
pv_web_start_fcgi "$WORK/fcgi.sock"
pv_web_nginx "$WORK/fcgi.sock"
BASE=$NGINX_BASE/api
pv_web_wait_ready "$BASE" || bail "not ready"

post() # TOKEN NAME: a write; sets STATUS and BODY
{
	req POST "$BASE/elections" "{\"name\":\"$2\"}" application/json -- \
		-H "Authorization: Bearer $1" -m 20
}
post "$TOKEN" before
check "PostgreSQL up: 202" test "$STATUS" = 202
post "$BOB" before
check "PostgreSQL up: 202 for the token revoked later" test "$STATUS" = 202

pv_server_stop postgres || bail "could not stop postgres"
sleep $((TTL + 1))
post "$TOKEN" during
check "PostgreSQL down, past the cache TTL: a token checked before still writes (202)" \
	test "$STATUS" = 202
post "$BOB" during
check "... the other one too" test "$STATUS" = 202
post "$NEVER" during
check "a token never checked: 503 auth_unavailable, published no" \
	test "$STATUS $(jq -r '.error.code + " " + .error.published' <<<"$BODY")" = \
	"503 auth_unavailable no"
check "... with Retry-After" test -n "$(header Retry-After)"
req GET "$BASE/metrics"
check "/metrics counts the requests let through by the grace period" \
	test "$(sed -n 's/^photovote_auth_grace_total //p' <<<"$BODY")" -ge 2

pv_server_start postgres || bail "could not start postgres"
"$TOKEN_TOOL" -c "$WORK/pv.conf" revoke bob@example.org >/dev/null || bail "revoke"
sleep $((TTL + 1))
post "$BOB" after
check "PostgreSQL back: the token revoked meanwhile is refused (401)" test "$STATUS" = 401
post "$TOKEN" after
check "PostgreSQL back: the valid token writes (202)" test "$STATUS" = 202
post "$NEVER" after
check "PostgreSQL back: the token never checked before writes (202)" test "$STATUS" = 202
kill -0 "$FCGI_PID" 2>/dev/null && ok "the program is still running" ||
	not_ok "the program is still running"
pv_web_done
