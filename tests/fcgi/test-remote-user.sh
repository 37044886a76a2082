#!/bin/bash
# auth_mode = remote_user: nginx authenticates (HTTP Basic) and the program
# trusts REMOTE_USER; without one it answers 401 itself.
: "${top_srcdir:?run from make check or set top_srcdir}"
. "$top_srcdir/tests/fcgi/web.sh"

command -v nginx >/dev/null || skip_all "nginx missing"
command -v openssl >/dev/null || skip_all "openssl missing"
pv_web_setup remoteuser remote_user
printf 'bob:%s\n' "$(openssl passwd -apr1 secret)" >"$WORK/htpasswd"
chmod 644 "$WORK/htpasswd"
pv_web_start_fcgi "$WORK/fcgi.sock"
pv_web_nginx "$WORK/fcgi.sock" "$WORK/htpasswd"
pv_web_wait_ready "$NGINX_BASE/open" || { sed "s/^/# /" "$WORK"/nginx-error.log "$WORK"/nginx.out; bail "not ready"; }

req POST "$NGINX_BASE/api/elections" '{"name":"x"}'
check "no credentials: the web server answers 401" test "$STATUS" = 401
check "queue empty after the web server's 401" queue_empty
req POST "$NGINX_BASE/api/elections" '{"name":"x"}' application/json -- -u bob:wrong
check "bad credentials: 401" test "$STATUS" = 401
req POST "$NGINX_BASE/api/elections" '{"name":"By Bob"}' application/json -- -u bob:secret
check "authenticated user: 202" test "$STATUS" = 202
msg=$(consume 2 2000)
check "the event carries REMOTE_USER as its user" \
	test "$(jq -r '.body.metadata.user + " " + .properties.headers.user' <<<"$msg")" = "bob bob"
error_case "no REMOTE_USER from the server: the program's own 401" 401 unauthenticated \
	POST "$NGINX_BASE/open/elections" '{"name":"x"}' application/json -- \
	-H "Authorization: Bearer pv_ignoredinthismode"
check "401 carries WWW-Authenticate" grep -qi '^WWW-Authenticate: Basic' "$HEADERS"
pv_web_done
