#!/bin/bash
# photovote.fcgi on a TCP port (--listen 127.0.0.1:PORT) behind Apache
# mod_proxy_fcgi, driven over HTTP by the shared suite (web.sh).
: "${top_srcdir:?run from make check or set top_srcdir}"
. "$top_srcdir/tests/fcgi/web.sh"

mods=/usr/lib/apache2/modules
command -v apache2 >/dev/null && [[ -f $mods/mod_proxy_fcgi.so ]] ||
	skip_all "apache2 with mod_proxy_fcgi missing"
pv_web_setup apache token
port=$(free_port) || bail "no free port"
fport=$(free_port) || bail "no free port"
pv_web_start_fcgi "127.0.0.1:$fport"
# Apache refuses to serve as root: its children run as www-data and only
# need the TCP port; logs and the pid file are opened by the root parent.
cat >"$WORK/apache.conf" <<CONF
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule proxy_module $mods/mod_proxy.so
LoadModule proxy_fcgi_module $mods/mod_proxy_fcgi.so
ServerName localhost
Listen 127.0.0.1:$port
User www-data
Group www-data
PidFile $WORK/apache.pid
ErrorLog $WORK/apache-error.log
DefaultRuntimeDir $WORK
ProxyPass /api/ fcgi://127.0.0.1:$fport/api/
<Location /api/>
	# Apache hides Authorization from FastCGI programs unless told.
	CGIPassAuth On
	ProxyFCGIBackendType GENERIC
	ProxyFCGISetEnvIf "true" SCRIPT_NAME "/api"
</Location>
CONF
apache2 -f "$WORK/apache.conf" -DFOREGROUND >>"$WORK/apache.out" 2>&1 &
apid=$!
pv_on_exit "kill $apid 2>/dev/null; wait $apid 2>/dev/null"
pv_web_wait_ready "http://127.0.0.1:$port/api" || {
	sed 's/^/# /' "$WORK/apache-error.log" "$WORK/apache.out" 2>/dev/null | tail -20
	bail "apache + photovote.fcgi not ready"
}
pv_web_suite "http://127.0.0.1:$port/api"
pv_web_done
