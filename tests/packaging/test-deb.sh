#!/bin/bash
# The Debian package, built from the working tree with packaging/build-deb.sh
# (no tests in that build: the unit tests run in this suite anyway) and
# inspected without installing it: what it holds, its maintainer script, the
# extracted programs' --help (nothing from the build tree may be needed),
# that photovote.fcgi accepts the shipped configuration, the units
# (systemd-analyze), the man pages, the web server examples (each server's
# syntax check) and lintian (errors fail, warnings are diagnostics).
: "${top_srcdir:?run from make check or set top_srcdir}"
set -u

_t=0
_failed=0
ok()
{
	_t=$((_t + 1))
	echo "ok $_t - $*"
}
not_ok()
{
	_t=$((_t + 1))
	_failed=$((_failed + 1))
	echo "not ok $_t - $*"
}
skip()
{
	_t=$((_t + 1))
	echo "ok $_t - $1 # SKIP $2"
}
check()
{
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}
diag()
{
	sed 's/^/# /'
}

# The package is built from the sources by dpkg-buildpackage with its own
# flags, so a sanitizer build of the tree would test the same thing again.
if grep -q '^PV_CFLAGS = .*-fsanitize' "${top_builddir:-.}/Makefile" 2>/dev/null; then
	echo "1..0 # SKIP the package builds without sanitizers; it is tested in the plain build"
	exit 0
fi

for tool in dpkg-buildpackage dpkg-deb dh dpkg-checkbuilddeps; do
	command -v "$tool" >/dev/null || {
		echo "1..0 # SKIP $tool missing (tests/install-deps.sh installs it)"
		exit 0
	}
done
if ! missing=$(cd "$top_srcdir" && dpkg-checkbuilddeps packaging/debian/control 2>&1); then
	echo "1..0 # SKIP build dependencies: $missing" | tr '\n' ' '
	echo
	exit 0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pv-deb.XXXXXX") || exit 1
fcgi_pid=
cleanup()
{
	[ -z "$fcgi_pid" ] || kill "$fcgi_pid" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

echo "1..23"

# 1: the build; PV_TEST_DEB_DIR names packages already built by
# packaging/build-deb.sh to inspect instead (a quicker rerun).
if [ -n "${PV_TEST_DEB_DIR-}" ]; then
	mkdir "$WORK/out"
	if cp "$PV_TEST_DEB_DIR"/*.deb "$PV_TEST_DEB_DIR"/*.changes "$PV_TEST_DEB_DIR"/*.buildinfo \
		"$WORK/out/"; then
		ok "packages from PV_TEST_DEB_DIR=$PV_TEST_DEB_DIR"
	else
		not_ok "packages from PV_TEST_DEB_DIR=$PV_TEST_DEB_DIR"
	fi
elif DEB_BUILD_OPTIONS="parallel=2 nocheck" "$top_srcdir/packaging/build-deb.sh" --worktree \
	"$WORK/out" >"$WORK/build.out" 2>&1; then
	ok "packaging/build-deb.sh builds the package"
else
	not_ok "packaging/build-deb.sh builds the package"
	tail -30 "$WORK/build.out" | diag
	echo "Bail out! no package to inspect"
	exit 1
fi
deb=
for f in "$WORK"/out/photovote_*.deb; do
	[ -e "$f" ] && deb=$f
done
[ -n "$deb" ] || {
	echo "Bail out! no photovote_*.deb in $WORK/out"
	exit 1
}

# 2-7: contents.
dpkg-deb -c "$deb" | awk '{ sub(/^\.\//, "/", $6); print $1, $2, $6 }' >"$WORK/contents"
has()
{
	local path missing=0
	for path; do
		grep -q " $path\$" "$WORK/contents" || {
			echo "# missing $path"
			missing=1
		}
	done
	return $missing
}
check "programs" has /usr/sbin/photovote.fcgi /usr/bin/photovote-appender \
	/usr/bin/photovote-projector /usr/bin/photovote-admin
check "systemd units" has /lib/systemd/system/photovote-appender.service \
	/lib/systemd/system/photovote-projector.service \
	/lib/systemd/system/photovote-fcgi.service /lib/systemd/system/photovote-fcgi.socket
# Every migration sql/local.am installs.
sqls=$(sed -n 's#^[[:space:]]*sql/\([0-9][0-9][0-9]_[A-Za-z0-9_-]*\.sql\).*#/usr/share/photovote/sql/\1#p' \
	"$top_srcdir/sql/local.am")
# shellcheck disable=SC2086
check "migrations ($(echo $sqls | wc -w))" has $sqls
check "man pages" has /usr/share/man/man8/photovote.fcgi.8.gz \
	/usr/share/man/man8/photovote-appender.8.gz /usr/share/man/man8/photovote-projector.8.gz \
	/usr/share/man/man5/photovote.conf.5.gz /usr/share/man/man1/photovote-admin.1.gz
check "web server examples and README.Debian" has \
	/usr/share/doc/photovote/examples/apache-photovote.conf \
	/usr/share/doc/photovote/examples/lighttpd-photovote.conf \
	/usr/share/doc/photovote/examples/nginx-photovote.conf \
	/usr/share/doc/photovote/README.Debian
conf_mode=$(awk '$3 == "/etc/photovote/photovote.conf" { print $1, $2 }' "$WORK/contents")
check "configuration shipped -rw-r----- root/root (got '$conf_mode')" \
	test "$conf_mode" = "-rw-r----- root/root"

# 8-9: control area.
dpkg-deb -e "$deb" "$WORK/control"
check "configuration is a conffile" grep -qx /etc/photovote/photovote.conf \
	"$WORK/control/conffiles"
postinst_ok()
{
	local p=$WORK/control/postinst
	sh -n "$p" &&
		grep -q 'adduser --system --group .* photovote' "$p" &&
		grep -q 'chown root:photovote ' "$p" &&
		# --no-enable: each unit is enabled again only when it was installed
		# before (debian-installed), never on a first installation.
		[ "$(grep -c 'deb-systemd-helper enable' "$p")" = \
			"$(grep -c 'deb-systemd-helper debian-installed' "$p")" ] &&
		! grep -q 'deb-systemd-invoke start' "$p"
}
check "postinst creates the user, gives it the configuration, enables nothing" postinst_ok

# 10-13: the extracted programs run on their own.
dpkg-deb -x "$deb" "$WORK/root"
R=$WORK/root
help_ok()
{
	local prog=$1 name out
	name=$(basename "$prog")
	out=$(env -i PATH=/usr/bin:/bin "$R$prog" --help 2>&1) || {
		echo "$out" | diag
		return 1
	}
	# Built with --sysconfdir=/etc: the configuration is where the package
	# puts it.
	if ! echo "$out" | grep -q "^usage: $name" ||
		! echo "$out" | grep -q ' /etc/photovote/photovote.conf'; then
		echo "$out" | diag
		return 1
	fi
	# Neither the build tree nor a run path: only the system's libraries.
	if readelf -d "$R$prog" | grep -q 'RPATH\|RUNPATH'; then
		echo "# $prog has a run path"
		return 1
	fi
	if ldd "$R$prog" | grep -q 'not found'; then
		ldd "$R$prog" | diag
		return 1
	fi
	# hardening=+all: position independent and bound now.
	readelf -h "$R$prog" | grep -q 'Type:.*DYN' &&
		readelf -d "$R$prog" | grep -q 'BIND_NOW\|FLAGS_1.*NOW'
}
for prog in /usr/sbin/photovote.fcgi /usr/bin/photovote-appender /usr/bin/photovote-projector \
	/usr/bin/photovote-admin; do
	check "$(basename $prog) --help from the extracted package (/etc, PIE, bindnow, no rpath)" \
		help_ok "$prog"
done

# 14-15: the shipped configuration is accepted: photovote.fcgi starts with it
# on a socket of its own and stays up (no broker is needed to start); the
# same file with an unknown key stops it at once, so the check can fail.
fcgi_runs()
{
	local conf=$1 log=$2
	env -i PATH=/usr/bin:/bin "$R/usr/sbin/photovote.fcgi" -c "$conf" \
		--listen "$WORK/fcgi.sock" >"$log" 2>&1 &
	fcgi_pid=$!
	sleep 1
	if kill -0 "$fcgi_pid" 2>/dev/null; then
		kill "$fcgi_pid"
		wait "$fcgi_pid"
		local rc=$?
		fcgi_pid=
		return $rc
	fi
	wait "$fcgi_pid"
	fcgi_pid=
	return 1
}
conf=$R/etc/photovote/photovote.conf
if fcgi_runs "$conf" "$WORK/fcgi.log" && ! grep -q 'unknown key\|unknown section' "$WORK/fcgi.log"; then
	ok "photovote.fcgi accepts the shipped configuration"
else
	not_ok "photovote.fcgi accepts the shipped configuration"
	diag <"$WORK/fcgi.log"
fi
{
	cat "$conf"
	printf '[http]\nno_such_key = 1\n'
} >"$WORK/bad.conf"
if ! fcgi_runs "$WORK/bad.conf" "$WORK/fcgi-bad.log" && grep -q no_such_key "$WORK/fcgi-bad.log"
then
	ok "photovote.fcgi refuses the configuration with an unknown key"
else
	not_ok "photovote.fcgi refuses the configuration with an unknown key"
	diag <"$WORK/fcgi-bad.log"
fi

# 16: units.  systemd-analyze checks that ExecStart= names an executable of
# this machine, where the package is not installed: copies of the units
# point into the extracted tree instead.  Any message fails (unknown keys
# are only warnings to it).
if command -v systemd-analyze >/dev/null; then
	mkdir "$WORK/units"
	cp "$R"/lib/systemd/system/photovote* "$WORK/units/"
	sed -i "s#^ExecStart=/usr/#ExecStart=$R/usr/#" "$WORK"/units/*
	if (cd "$WORK/units" && systemd-analyze verify --man=no photovote-appender.service \
		photovote-projector.service photovote-fcgi.socket photovote-fcgi.service) \
		>"$WORK/verify.log" 2>&1 && ! grep -q . "$WORK/verify.log"; then
		ok "systemd-analyze verify accepts the units"
	else
		not_ok "systemd-analyze verify accepts the units"
		diag <"$WORK/verify.log"
	fi
else
	skip "systemd-analyze verify accepts the units" "systemd-analyze missing"
fi

# 17: man pages render without warnings.
man_ok()
{
	local page out rc=0
	for page in "$R"/usr/share/man/man*/photovote*; do
		out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null)
		[ -z "$out" ] || {
			echo "$page: $out" | diag
			rc=1
		}
	done
	return $rc
}
if command -v man >/dev/null; then
	check "man pages render without warnings" man_ok
else
	skip "man pages render without warnings" "man missing"
fi

# 18-20: each web server's syntax check accepts its example.
EX=$R/usr/share/doc/photovote/examples
if command -v nginx >/dev/null && [ -f /etc/nginx/fastcgi_params ]; then
	# "include fastcgi_params" is relative to the folder of nginx.conf.
	cp /etc/nginx/fastcgi_params "$WORK/"
	cat >"$WORK/nginx.conf" <<CONF
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events {}
http {
	server {
		listen 127.0.0.1:8;
		include $EX/nginx-photovote.conf;
	}
}
CONF
	if nginx -t -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" >"$WORK/nginx.out" 2>&1; then
		ok "nginx -t accepts the nginx example"
	else
		not_ok "nginx -t accepts the nginx example"
		diag <"$WORK/nginx.out"
	fi
else
	skip "nginx -t accepts the nginx example" "nginx (or its fastcgi_params) missing"
fi
mods=/usr/lib/apache2/modules
if command -v apache2 >/dev/null && [ -f $mods/mod_proxy_fcgi.so ]; then
	cat >"$WORK/apache.conf" <<CONF
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule alias_module $mods/mod_alias.so
LoadModule proxy_module $mods/mod_proxy.so
LoadModule proxy_fcgi_module $mods/mod_proxy_fcgi.so
ServerName localhost
Listen 127.0.0.1:8
PidFile $WORK/apache.pid
ErrorLog $WORK/apache-error.log
DefaultRuntimeDir $WORK
Include $EX/apache-photovote.conf
CONF
	if apache2 -t -f "$WORK/apache.conf" >"$WORK/apache.out" 2>&1; then
		ok "apache2 -t accepts the Apache example"
	else
		not_ok "apache2 -t accepts the Apache example"
		diag <"$WORK/apache.out"
	fi
else
	skip "apache2 -t accepts the Apache example" "apache2 with mod_proxy_fcgi missing"
fi
if command -v lighttpd >/dev/null; then
	mkdir -p "$WORK/www"
	cat >"$WORK/lighttpd.conf" <<CONF
server.document-root = "$WORK/www"
server.bind = "127.0.0.1"
server.port = 8
server.modules = ("mod_fastcgi")
include "$EX/lighttpd-photovote.conf"
CONF
	if lighttpd -tt -f "$WORK/lighttpd.conf" >"$WORK/lighttpd.out" 2>&1; then
		ok "lighttpd -tt accepts the lighttpd example"
	else
		not_ok "lighttpd -tt accepts the lighttpd example"
		diag <"$WORK/lighttpd.out"
	fi
else
	skip "lighttpd -tt accepts the lighttpd example" "lighttpd missing"
fi

# 21: the package depends on the libraries it links (shlibs) and on adduser.
depends=$(dpkg-deb -f "$deb" Depends)
deps_ok()
{
	local lib
	for lib in libfcgi libpq5 librabbitmq4 libjansson4 libcurl4 adduser; do
		case $depends in
		*"$lib"*) ;;
		*)
			echo "# Depends lacks $lib: $depends"
			return 1
			;;
		esac
	done
}
check "Depends names the linked libraries and adduser" deps_ok

# 22-23: lintian, on the .changes (the .deb and the .buildinfo).
if command -v lintian >/dev/null; then
	changes=
	for f in "$WORK"/out/*.changes; do
		[ -e "$f" ] && changes=$f
	done
	lintian --allow-root --no-tag-display-limit "$changes" >"$WORK/lintian.out" 2>&1
	lintian_rc=$?
	grep '^W: ' "$WORK/lintian.out" | diag
	if grep -q '^E: ' "$WORK/lintian.out"; then
		not_ok "lintian reports no errors"
		grep '^E: ' "$WORK/lintian.out" | diag
	else
		ok "lintian reports no errors"
	fi
	# An exit status without an E: line is lintian itself failing.
	if [ $lintian_rc -eq 0 ] || grep -q '^E: ' "$WORK/lintian.out"; then
		ok "lintian ran"
	else
		not_ok "lintian ran (status $lintian_rc)"
		tail -5 "$WORK/lintian.out" | diag
	fi
else
	skip "lintian reports no errors" "lintian missing"
	skip "lintian ran" "lintian missing"
fi

[ "$_t" -eq 23 ] || echo "# planned 23 tests, ran $_t"
[ "$_failed" -eq 0 ]
