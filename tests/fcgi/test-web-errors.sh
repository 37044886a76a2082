#!/bin/bash
# What Apache, lighttpd and nginx answer themselves under the API's prefix, through the shipped
# configurations (packaging/debian/examples/*-photovote.conf, their installed paths replaced by
# this test's) and the error files as `make install` lays them out: every error is the API's
# JSON body ({"error": {"code", "message"}}, Content-Type application/json) with the stable
# code of its status (fcgi/web-errors/, documented in fcgi/openapi.json).  A table of hostile
# requests, sent byte for byte (raw-http.py: curl would normalise them), goes through each
# server with photovote.fcgi up, then paused (SIGSTOP: the servers time out) and stopped.
# Each case names the status each server answers; the answers of photovote.fcgi itself pass
# through (the program's own hostile table is test-fcgi-http).  The servers' timeouts are
# shortened to 2 s in their main configurations (lighttpd's read-timeout in its snippet).
: "${top_srcdir:?run from make check or set top_srcdir}" "${top_builddir:?}"
. "$top_srcdir/tests/fcgi/web.sh"

RAW=$top_srcdir/tests/fcgi/raw-http.py
EX=$top_srcdir/packaging/debian/examples
mods=/usr/lib/apache2/modules
command -v python3 >/dev/null || skip_all "python3 missing"
for s in nginx lighttpd apache2; do
	command -v $s >/dev/null || skip_all "$s missing"
done
[[ -f $mods/mod_proxy_fcgi.so && -f /etc/nginx/fastcgi_params ]] ||
	skip_all "mod_proxy_fcgi or nginx's fastcgi_params missing"
pv_web_setup weberrors token

# The error files as the package installs them: the JSON files and lighttpd's links.
make -s -C "$top_builddir" install-dist_weberrorsDATA install-web-errors-lighttpd \
	DESTDIR="$WORK/root" >"$WORK/install.log" 2>&1 ||
	bail "make install of the error files failed: $(tail -3 "$WORK/install.log")"
ERRDIR=$(find "$WORK/root" -type d -path '*/photovote/errors' | head -1)
[[ -n $ERRDIR && -f $ERRDIR/503.json && -L $ERRDIR/lighttpd/503.html ]] ||
	bail "the installed error files are not where expected"
chmod -R a+rX "$WORK/root"

# snippet NAME: the shipped snippet with this test's socket, error folder and timeout.
snippet()
{
	sed -e "s#/run/photovote/fcgi.sock#$WORK/fcgi.sock#g" \
		-e "s#/usr/share/photovote/errors#$ERRDIR#g" \
		-e 's#"read-timeout" => [0-9]*#"read-timeout" => 2#' \
		"$EX/$1-photovote.conf" >"$WORK/$1-photovote.conf"
	! grep -q '/run/photovote\|/usr/share/photovote' "$WORK/$1-photovote.conf" ||
		bail "$1's snippet names paths this test did not replace"
}

# run_server NAME CMD...: CMD in the background (output in WORK/NAME/out), stopped at exit.
run_server()
{
	local name=$1 pid
	shift
	"$@" >>"$WORK/$name/out" 2>&1 &
	pid=$!
	pv_on_exit "kill $pid 2>/dev/null; wait $pid 2>/dev/null"
}

T=2
pv_web_start_fcgi "$WORK/fcgi.sock"
# As photovote-fcgi.socket makes it for the group www-data: Apache's children may connect.
for _ in $(seq 100); do
	[[ -S $WORK/fcgi.sock ]] && break
	sleep 0.1
done
chmod 666 "$WORK/fcgi.sock" || bail "photovote.fcgi made no socket"

# nginx as Debian runs it: mime.types, fastcgi_params next to nginx.conf.
snippet nginx
NGINX_PORT=$(free_port) || bail "no free port"
mkdir -p "$WORK/nginx/tmp"
cp /etc/nginx/fastcgi_params "$WORK/nginx/"
cat >"$WORK/nginx/nginx.conf" <<CONF
daemon off;
user root;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events {}
http {
	include /etc/nginx/mime.types;
	default_type application/octet-stream;
	access_log off;
	client_body_temp_path $WORK/nginx/tmp/body;
	fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
	proxy_temp_path $WORK/nginx/tmp/proxy;
	uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
	scgi_temp_path $WORK/nginx/tmp/scgi;
	client_body_timeout ${T}s;
	client_header_timeout ${T}s;
	fastcgi_read_timeout ${T}s;
	server {
		listen 127.0.0.1:$NGINX_PORT;
		include $WORK/nginx-photovote.conf;
	}
}
CONF
run_server nginx nginx -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log"

# Apache (its children run as www-data) with Debian's default modules for this.
snippet apache
APACHE_PORT=$(free_port) || bail "no free port"
mkdir -p "$WORK/apache"
cat >"$WORK/apache/apache.conf" <<CONF
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule alias_module $mods/mod_alias.so
LoadModule mime_module $mods/mod_mime.so
LoadModule proxy_module $mods/mod_proxy.so
LoadModule proxy_fcgi_module $mods/mod_proxy_fcgi.so
TypesConfig /etc/mime.types
ServerName localhost
Listen 127.0.0.1:$APACHE_PORT
User www-data
Group www-data
PidFile $WORK/apache/apache.pid
ErrorLog $WORK/apache/error.log
DefaultRuntimeDir $WORK/apache
Timeout $T
ProxyTimeout $T
Include $WORK/apache-photovote.conf
CONF
run_server apache apache2 -f "$WORK/apache/apache.conf" -DFOREGROUND

# lighttpd as Debian runs it: mime types from create-mime.conf.pl, then the snippet.
snippet lighttpd
LIGHTTPD_PORT=$(free_port) || bail "no free port"
mkdir -p "$WORK/lighttpd/www"
cat >"$WORK/lighttpd/lighttpd.conf" <<CONF
server.document-root = "$WORK/lighttpd/www"
server.bind = "127.0.0.1"
server.port = $LIGHTTPD_PORT
server.errorlog = "$WORK/lighttpd/error.log"
server.modules = ("mod_fastcgi")
server.max-read-idle = $T
include_shell "/usr/share/lighttpd/create-mime.conf.pl"
include "$WORK/lighttpd-photovote.conf"
CONF
run_server lighttpd lighttpd -D -f "$WORK/lighttpd/lighttpd.conf"

SERVERS=(apache lighttpd nginx)
port_of()
{
	case $1 in
	apache) echo "$APACHE_PORT" ;;
	lighttpd) echo "$LIGHTTPD_PORT" ;;
	nginx) echo "$NGINX_PORT" ;;
	esac
}
for s in "${SERVERS[@]}"; do
	pv_web_wait_ready "http://127.0.0.1:$(port_of "$s")/api" || {
		sed 's/^/# /' "$WORK/$s/error.log" "$WORK/$s/out" 2>/dev/null | tail -20
		bail "$s + photovote.fcgi not ready"
	}
done

# The requests, byte for byte.  A header field of 10,000 bytes, a request target of 10,000.
big=$(head -c 10000 /dev/zero | tr '\0' a)
write=$'POST /api/elections HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer '"$TOKEN"$'\r\nContent-Type: application/json\r\n'
body='{"name":"x"}'
declare -A REQ=(
	[GET /healthz]=$'GET /api/healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
	[a write]="${write}Content-Length: ${#body}"$'\r\nConnection: close\r\n\r\n'"$body"
	[bad request line]=$'GARBAGE\r\n\r\n'
	[header line without a colon]=$'GET /api/healthz HTTP/1.1\r\nHost: localhost\r\nNo colon here\r\n\r\n'
	[header field of 10000 bytes]=$'GET /api/healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: '"$big"$'\r\nConnection: close\r\n\r\n'
	[request target of 10000 bytes]=$'GET /api/healthz?'"$big"$' HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
	[%00 in the query]=$'GET /api/healthz?x=%00 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
	[dot segments out of /api]=$'GET /api/../../etc/passwd HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
	[..%2F in the path]=$'GET /api/..%2F..%2Fetc%2Fpasswd HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
	[unknown HTTP version]=$'GET /api/healthz HTTP/2.7\r\nHost: localhost\r\nConnection: close\r\n\r\n'
	[body shorter than its Content-Length]="${write}Content-Length: 100"$'\r\n\r\n'"$body"
	[body shorter than its Content-Length, then EOF]="${write}Content-Length: 100"$'\r\n\r\n'"$body"
	[body over the web server limit]="${write}Content-Length: 2000000"$'\r\nConnection: close\r\n\r\n'"$(head -c 2000000 /dev/zero | tr '\0' ' ')"
)

# The requests as files, for raw-http.py.
mkdir -p "$WORK/req"
declare -A REQ_FILE=()
n=0
for name in "${!REQ[@]}"; do
	n=$((n + 1))
	printf '%s' "${REQ[$name]}" >"$WORK/req/$n"
	REQ_FILE[$name]=$WORK/req/$n
done

# expect CASE SERVER=STATUS[:CODE]...: each server's answer must have that status and, for an
# error, be the JSON body with that code; 0: the server closes the connection without an
# answer (nginx and lighttpd after a body timeout), so there is no page to be JSON.  Collected,
# then sent all at once by check_all.
EXPECT=()
expect()
{
	local name=$1 spec
	shift
	for spec in "$@"; do
		EXPECT+=("${spec%%=*}|$name|${spec#*=}")
	done
}

# check_all STATE: sends the requests of the collected expectations, checks each answer.
check_all()
{
	local state=$1 i server name want code shut verdict
	: >"$WORK/batch"
	: >"$WORK/expect"
	for i in "${!EXPECT[@]}"; do
		IFS='|' read -r server name want <<<"${EXPECT[i]}"
		shut=
		[[ $name == *", then EOF" ]] && shut=shut
		echo "$i $(port_of "$server") ${REQ_FILE[$name]} $shut" >>"$WORK/batch"
		jq -nc --arg id "$i" --arg spec "$want" '{id: $id, spec: $spec}' >>"$WORK/expect"
	done
	python3 "$RAW" $((T * 3)) <"$WORK/batch" >"$WORK/answers.$state" ||
		bail "raw-http.py failed"
	# One verdict a line, in the order of the expectations: "ok" or what is wrong.
	# A spec is STATUS[:CODE], or several separated by "/" when the server may give either.
	jq -nr --slurpfile a "$WORK/answers.$state" --slurpfile e "$WORK/expect" '
		def verdict($r; $want; $code):
			($r.body | try fromjson catch null) as $b |
			if ($r.status | tostring) != $want then "status \($r.status)"
			elif $want == "0" then "ok"
			elif ($r.content_type | test("^application/json(;|$)") | not) then
				"Content-Type \($r.content_type)"
			elif $b == null then "a body that is not JSON"
			elif $code == "" then "ok"
			elif ($b.error.code // null) != $code then "code \($b.error.code // null)"
			elif ($b.error.message | type) != "string" or $b.error.message == "" then
				"no message"
			else "ok" end;
		($a | map({(.id): .}) | add) as $by_id |
		$e[] | . as $x | $by_id[$x.id] as $r |
		if $r == null then "no answer recorded"
		else [$x.spec | split("/")[] | split(":") | verdict($r; .[0]; .[1] // "")] |
			if any(. == "ok") then "ok" else .[0] end
		end |
		if . == "ok" then . else "\(.): \($r | .body |= .[0:200] | tojson)" end' \
		>"$WORK/verdicts.$state"
	i=0
	while IFS= read -r verdict; do
		IFS='|' read -r server name want <<<"${EXPECT[i]}"
		i=$((i + 1))
		if [[ $verdict == ok ]]; then
			ok "$server, photovote.fcgi $state: $name: ${want/#0/no answer}"
		else
			not_ok "$server, photovote.fcgi $state: $name: want $want, got $verdict"
		fi
	done <"$WORK/verdicts.$state"
	((i == ${#EXPECT[@]})) || not_ok "$state: ${#EXPECT[@]} expectations, $i verdicts"
	EXPECT=()
}

# What each server refuses itself, whatever photovote.fcgi does.
refusals()
{
	expect "bad request line" apache=400:invalid_request lighttpd=400:invalid_request \
		nginx=400:invalid_request
	expect "header line without a colon" apache=400:invalid_request \
		lighttpd=400:invalid_request nginx=400:invalid_request
	expect "header field of 10000 bytes" apache=400:invalid_request \
		lighttpd=431:header_too_large nginx=431:header_too_large
	expect "request target of 10000 bytes" apache=414:uri_too_long \
		lighttpd=431:header_too_large nginx=414:uri_too_long
	expect "%00 in the query" lighttpd=400:invalid_request
	expect "dot segments out of /api" apache=400:invalid_request \
		lighttpd=400:invalid_request nginx=400:invalid_request
	expect "..%2F in the path" lighttpd=400:invalid_request nginx=400:invalid_request
	expect "unknown HTTP version" lighttpd=505:http_version_not_supported \
		nginx=505:http_version_not_supported
	expect "body over the web server limit" lighttpd=413:body_too_large \
		nginx=413:body_too_large
}

# 1. photovote.fcgi up: the servers' own refusals; what they pass on, photovote.fcgi answers.
refusals
expect "GET /healthz" apache=200 lighttpd=200 nginx=200
expect "a write" apache=202 lighttpd=202 nginx=202
expect "%00 in the query" apache=200 nginx=200
expect "..%2F in the path" apache=404:not_found
expect "unknown HTTP version" apache=200
expect "body shorter than its Content-Length" apache=408:request_timeout lighttpd=0 nginx=0
expect "body shorter than its Content-Length, then EOF" apache=400:invalid_request \
	lighttpd=0 nginx=0
# Apache passes a body over its limit on to the program, which refuses it over its own.
expect "body over the web server limit" apache=413:body_too_large
check_all up

# 2. photovote.fcgi paused (SIGSTOP): it accepts connections but never answers.
kill -STOP "$FCGI_PID"
expect "GET /healthz" apache=504:backend_timeout lighttpd=504:backend_timeout \
	nginx=504:backend_timeout
expect "a write" apache=504:backend_timeout lighttpd=504:backend_timeout \
	nginx=504:backend_timeout
check_all paused
kill -CONT "$FCGI_PID"

# 3. photovote.fcgi stopped: nothing listens on its socket.  nginx says 502 for a refused
# connection as for a broken answer; Apache and lighttpd say 503.
kill "$FCGI_PID"
wait "$FCGI_PID"
refusals
expect "GET /healthz" apache=503:backend_unavailable lighttpd=503:backend_unavailable \
	nginx=502:backend_failed
expect "a write" apache=503:backend_unavailable lighttpd=503:backend_unavailable \
	nginx=502:backend_failed
expect "%00 in the query" apache=503:backend_unavailable nginx=502:backend_failed
expect "..%2F in the path" apache=503:backend_unavailable
expect "unknown HTTP version" apache=503:backend_unavailable
# lighttpd picks the program when it has the headers: if another request of the batch has
# already found the socket refused, the program is marked down and the answer is 503 at once;
# if not, lighttpd waits for the body like when the program is up, and closes.  Both were seen
# (the second in a run under ASan); nginx always reads the body first.
expect "body shorter than its Content-Length" apache=503:backend_unavailable \
	lighttpd=503:backend_unavailable/0 nginx=0
# Apache reads the body before it connects, or after: seen both (it is a race with the EOF).
expect "body shorter than its Content-Length, then EOF" \
	apache=400:invalid_request/503:backend_unavailable lighttpd=503:backend_unavailable nginx=0
expect "body over the web server limit" apache=503:backend_unavailable
check_all stopped

# The error documents are for the servers' own use: not served to a client asking for them.
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$NGINX_PORT/photovote-errors/503.json")
check "nginx does not serve the error files directly (got $code)" test "$code" = 404
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$APACHE_PORT/photovote-errors/503.json")
check "Apache does not serve the error files directly (got $code)" test "$code" = 403
pv_web_done
