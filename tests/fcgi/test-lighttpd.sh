#!/bin/bash
# photovote.fcgi spawned by lighttpd (bin-path: the listening socket is on
# the program's fd 0), driven over HTTP by the shared suite (web.sh).
: "${top_srcdir:?run from make check or set top_srcdir}"
. "$top_srcdir/tests/fcgi/web.sh"

command -v lighttpd >/dev/null || skip_all "lighttpd missing"
pv_web_setup lighttpd token
port=$(free_port) || bail "no free port"
mkdir -p "$WORK/www"
cat >"$WORK/lighttpd.conf" <<CONF
server.document-root = "$WORK/www"
server.bind = "127.0.0.1"
server.port = $port
server.pid-file = "$WORK/lighttpd.pid"
server.errorlog = "$WORK/lighttpd-error.log"
server.modules = ("mod_fastcgi")
fastcgi.server = ("/api" => ((
	"bin-path" => "$FCGI",
	"socket" => "$WORK/fcgi.sock",
	"bin-environment" => ("PHOTOVOTE_CONFIG" => "$WORK/pv.conf"),
	"check-local" => "disable",
	"max-procs" => 1,
)))
CONF
lighttpd -D -f "$WORK/lighttpd.conf" >>"$WORK/lighttpd.out" 2>&1 &
lpid=$!
pv_on_exit "kill $lpid 2>/dev/null; wait $lpid 2>/dev/null"
pv_web_wait_ready "http://127.0.0.1:$port/api" || {
	sed 's/^/# /' "$WORK/lighttpd-error.log" "$WORK/lighttpd.out" 2>/dev/null | tail -20
	bail "lighttpd + photovote.fcgi not ready"
}
pv_web_suite "http://127.0.0.1:$port/api"
pv_web_done
