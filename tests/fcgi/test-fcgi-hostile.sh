#!/bin/bash
# The hostile-request table (tests/fcgi/hostile.py): requests sent straight
# to photovote.fcgi's FastCGI socket, each refused with its 4xx status and
# error code and publishing nothing; the program stays healthy and still
# publishes a valid write afterwards.  The web servers' own refusals are
# web.sh's business.
: "${top_srcdir:?run from make check or set top_srcdir}"
. "$top_srcdir/tests/fcgi/web.sh"

command -v python3 >/dev/null || skip_all "python3 missing"
pv_web_setup hostile token
port=$(free_port) || bail "no free port"
pv_web_start_fcgi "127.0.0.1:$port"
pv_wait_port "$port" 10 || true
out=$(python3 "$top_srcdir/tests/fcgi/hostile.py" 127.0.0.1 "$port" "$TOKEN")
status=$?
echo "$out"
_t=$(grep -cE '^(not )?ok ' <<<"$out")
# Nothing reached the queue either (the valid write at the end did).
n=$(consume 20 1500 | wc -l)
check "the queue holds the one valid write and nothing else ($n)" test "$n" = 1
check "photovote.fcgi is still running" kill -0 "$FCGI_PID"
[[ $status == 0 ]] || _failed=$((_failed + 1))
pv_web_done
