#!/bin/bash
# photovote.fcgi spawned by lighttpd (bin-path: the listening socket is on
# the program's fd 0), driven over HTTP by the shared suite (web.sh).
: "${top_srcdir:?run from make check or set top_srcdir}"
. "$top_srcdir/tests/fcgi/web.sh"

command -v lighttpd >/dev/null || skip_all "lighttpd missing"
pv_web_setup lighttpd token
pv_web_lighttpd "$WORK/pv.conf"
pv_web_suite "$BASE"
pv_web_done
