#!/bin/bash
# photovote.fcgi on its own Unix socket (--listen PATH) behind nginx
# (fastcgi_pass), driven over HTTP by the shared suite (web.sh).
: "${top_srcdir:?run from make check or set top_srcdir}"
. "$top_srcdir/tests/fcgi/web.sh"

command -v nginx >/dev/null || skip_all "nginx missing"
pv_web_setup nginx token
port=$(free_port) || bail "no free port"
pv_web_start_fcgi "$WORK/fcgi.sock"
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
			include /etc/nginx/fastcgi_params;
			fastcgi_split_path_info ^(/api)(/.*)\$;
			fastcgi_param SCRIPT_NAME \$fastcgi_script_name;
			fastcgi_param PATH_INFO \$fastcgi_path_info;
			fastcgi_pass unix:$WORK/fcgi.sock;
		}
	}
}
CONF
nginx -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" >>"$WORK/nginx.out" 2>&1 &
npid=$!
pv_on_exit "kill $npid 2>/dev/null; wait $npid 2>/dev/null"
pv_web_wait_ready "http://127.0.0.1:$port/api" || {
	sed 's/^/# /' "$WORK/nginx-error.log" "$WORK/nginx.out" 2>/dev/null | tail -20
	bail "nginx + photovote.fcgi not ready"
}
pv_web_suite "http://127.0.0.1:$port/api"
pv_web_done
