#!/bin/bash
# photovote.fcgi on its own Unix socket (--listen PATH) behind nginx
# (fastcgi_pass), driven over HTTP by the shared suite (web.sh).
: "${top_srcdir:?run from make check or set top_srcdir}"
. "$top_srcdir/tests/fcgi/web.sh"

command -v nginx >/dev/null || skip_all "nginx missing"
pv_web_setup nginx token
pv_web_start_fcgi "$WORK/fcgi.sock"
pv_web_nginx "$WORK/fcgi.sock"
pv_web_wait_ready "$NGINX_BASE/api" || {
	sed 's/^/# /' "$WORK/nginx-error.log" "$WORK/nginx.out" 2>/dev/null | tail -20
	bail "nginx + photovote.fcgi not ready"
}
pv_web_suite "$NGINX_BASE/api"
pv_web_done
