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

. "$top_srcdir/tests/lib/tap.sh"
skip()
{
	_t=$((_t + 1))
	echo "ok $_t - $1 # SKIP $2"
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

echo "1..35"

# 1: the build; PV_TEST_DEB_DIR names packages already built by
# packaging/build-deb.sh to inspect instead (a quicker rerun).
if [ -n "${PV_TEST_DEB_DIR-}" ]; then
	mkdir "$WORK/out"
	cp "$PV_TEST_DEB_DIR"/build.log "$WORK/out/" 2>/dev/null
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
check "web server configurations, examples and README.Debian" has \
	/etc/apache2/conf-available/photovote.conf \
	/etc/lighttpd/conf-available/50-photovote.conf /etc/nginx/snippets/photovote.conf \
	/usr/share/doc/photovote/examples/apache-photovote.conf \
	/usr/share/doc/photovote/examples/lighttpd-photovote.conf \
	/usr/share/doc/photovote/examples/nginx-photovote.conf \
	/usr/share/doc/photovote/README.Debian.gz
conf_mode=$(awk '$3 == "/etc/photovote/photovote.conf" { print $1, $2 }' "$WORK/contents")
check "configuration shipped -rw-r----- root/root (got '$conf_mode')" \
	test "$conf_mode" = "-rw-r----- root/root"

# 8-9: control area.
dpkg-deb -e "$deb" "$WORK/control"
conffiles_ok()
{
	local f rc=0
	for f in /etc/photovote/photovote.conf /etc/apache2/conf-available/photovote.conf \
		/etc/lighttpd/conf-available/50-photovote.conf /etc/nginx/snippets/photovote.conf; do
		grep -qx "$f" "$WORK/control/conffiles" || {
			echo "# $f is not a conffile"
			rc=1
		}
	done
	return $rc
}
check "the configuration and the web servers' are conffiles" conffiles_ok
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
		! grep -q 'deb-systemd-invoke start' "$p" &&
		grep -q 'apache2_invoke enconf photovote' "$p"
}
check "postinst creates the user, gives it the configuration, enables Apache's conf only" \
	postinst_ok
# Removed: Apache's and lighttpd's configurations are disabled; purged: the
# secret files go too.
removal_ok()
{
	sh -n "$WORK/control/prerm" && sh -n "$WORK/control/postrm" &&
		grep -q 'apache2_invoke disconf photovote' "$WORK/control/postrm" &&
		grep -q 'lighty-disable-mod photovote' "$WORK/control/prerm" &&
		grep -q 'cosmos-key' "$WORK/control/postrm"
}
check "prerm and postrm disable the web servers' configurations, purge removes the keys" \
	removal_ok

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
# Every key of the program's table, commented out with its default in its
# section, and nothing set: the defaults live in the programs.
conf_commented()
{
	local tool=${top_builddir:-.}/tests/openapi/pv-config-docs
	[ -x "$tool" ] || {
		echo "# $tool not built"
		return 1
	}
	"$tool" describe | sed -n 's/^\[\([a-z]*\)\] \([a-z_]*\)$/\1.\2/p' | sort >"$WORK/keys.table"
	awk '/^\[[a-z]+\]/ { s = substr($0, 2, length($0) - 2) }
		/^#[a-z_]+ =/ { print s "." substr($1, 2) }' "$conf" | sort -u >"$WORK/keys.conf"
	if ! diff "$WORK/keys.table" "$WORK/keys.conf" >"$WORK/keys.diff"; then
		diag <"$WORK/keys.diff"
		return 1
	fi
	if grep -n '^[[:space:]]*[a-z_]\+[[:space:]]*=' "$conf"; then
		echo "# keys set in the shipped configuration (above)"
		return 1
	fi
}
check "the shipped configuration comments out every key of the table and sets none" \
	conf_commented
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
# The files as installed where each server looks for them.
NGINX_CONF=$R/etc/nginx/snippets/photovote.conf
APACHE_CONF=$R/etc/apache2/conf-available/photovote.conf
LIGHTTPD_CONF=$R/etc/lighttpd/conf-available/50-photovote.conf
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
		include $NGINX_CONF;
	}
}
CONF
	if nginx -t -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" >"$WORK/nginx.out" 2>&1; then
		ok "nginx -t accepts the packaged snippet"
	else
		not_ok "nginx -t accepts the packaged snippet"
		diag <"$WORK/nginx.out"
	fi
else
	skip "nginx -t accepts the packaged snippet" "nginx (or its fastcgi_params) missing"
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
Include $APACHE_CONF
CONF
	if apache2 -t -f "$WORK/apache.conf" >"$WORK/apache.out" 2>&1; then
		ok "apache2 -t accepts the packaged conf"
	else
		not_ok "apache2 -t accepts the packaged conf"
		diag <"$WORK/apache.out"
	fi
else
	skip "apache2 -t accepts the packaged conf" "apache2 with mod_proxy_fcgi missing"
fi
if command -v lighttpd >/dev/null; then
	mkdir -p "$WORK/www"
	cat >"$WORK/lighttpd.conf" <<CONF
server.document-root = "$WORK/www"
server.bind = "127.0.0.1"
server.port = 8
server.modules = ("mod_fastcgi")
include "$LIGHTTPD_CONF"
CONF
	if lighttpd -tt -f "$WORK/lighttpd.conf" >"$WORK/lighttpd.out" 2>&1; then
		ok "lighttpd -tt accepts the packaged conf"
	else
		not_ok "lighttpd -tt accepts the packaged conf"
		diag <"$WORK/lighttpd.out"
	fi
else
	skip "lighttpd -tt accepts the packaged conf" "lighttpd missing"
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

# Hardening beyond hardening=+all on Debian 12: every compilation had
# stack-clash protection and, on amd64, control-flow protection, and the
# code has its landing pads (endbr64).
hardening_ok()
{
	local log=$WORK/out/build.log
	[ -f "$log" ] || {
		echo "# no build log (PV_TEST_DEB_DIR?)"
		return 1
	}
	grep -E '^(libtool: compile: +)?(gcc|cc|x86_64-linux-gnu-gcc) .* -c ' "$log" >"$WORK/cc.lines"
	[ -s "$WORK/cc.lines" ] || {
		echo "# no compiler lines in the build log"
		return 1
	}
	if grep -v -e '-fstack-clash-protection' "$WORK/cc.lines" | head -3 | grep .; then
		return 1
	fi
	[ "$(dpkg --print-architecture)" = amd64 ] || return 0
	! grep -v -e '-fcf-protection' "$WORK/cc.lines" | head -3 | grep . &&
		objdump -d "$R/usr/bin/photovote-appender" | grep -q endbr64
}
check "compiled with -fstack-clash-protection and -fcf-protection (amd64)" hardening_ok

# lintian, pedantic, on the .changes (the .deb and the .buildinfo): no
# error, warning, info or pedantic tag; each override says why in
# debian/photovote.lintian-overrides.
if command -v lintian >/dev/null; then
	changes=
	for f in "$WORK"/out/*.changes; do
		[ -e "$f" ] && changes=$f
	done
	lintian --allow-root --pedantic -I -E --no-tag-display-limit "$changes" \
		>"$WORK/lintian.out" 2>&1
	lintian_rc=$?
	if grep -q '^[EWIPX]: ' "$WORK/lintian.out"; then
		not_ok "lintian --pedantic: no error, warning, info or pedantic tag"
		grep '^[EWIPX]: ' "$WORK/lintian.out" | diag
	else
		ok "lintian --pedantic: no error, warning, info or pedantic tag"
	fi
	# An exit status without a tag is lintian itself failing.
	if [ $lintian_rc -eq 0 ] || grep -q '^[EWIPX]: ' "$WORK/lintian.out"; then
		ok "lintian ran"
	else
		not_ok "lintian ran (status $lintian_rc)"
		tail -5 "$WORK/lintian.out" | diag
	fi
else
	skip "lintian --pedantic: no error, warning, info or pedantic tag" "lintian missing"
	skip "lintian ran" "lintian missing"
fi

# Installed for real: an upgrade from the previous version with a locally
# changed configuration, photovote-admin as root, removal and purge.  Root
# only, and never over a photovote package already installed; one run at a
# time on the machine (a lock).  The previous version is this package
# repacked with a lower version (0.1.0-2 follows 0.1.0-1, whose
# configuration set every key: an operator who changed that one is asked
# once).  What the test enabled and created outside the package (Apache's
# modules, lighttpd's fastcgi, the user photovote) is put back at exit.
# policy-rc.d decides whether maintainer scripts may reload servers;
# invoke-rc.d is called the way Debian's helpers call it.
install_skip=
if [ "$(id -u)" != 0 ]; then
	install_skip="not root"
elif dpkg-query -W -f='${Status}' photovote 2>/dev/null | grep -q 'installed\|config-files'; then
	install_skip="a photovote package is already installed"
elif ! command -v flock >/dev/null; then
	install_skip="flock missing"
fi
INSTALL_CASES=9
if [ -n "$install_skip" ]; then
	for _ in $(seq $INSTALL_CASES); do
		skip "installation, upgrade, removal, purge" "$install_skip"
	done
else
	exec 9>/run/lock/photovote-test-deb.lock
	flock 9
	had_user=no
	getent passwd photovote >/dev/null && had_user=yes
	mods_before=$(ls /etc/apache2/mods-enabled 2>/dev/null)
	lighty_before=$(ls /etc/lighttpd/conf-enabled 2>/dev/null)
	restore()
	{
		dpkg -P photovote >/dev/null 2>&1
		local m
		for m in $(ls /etc/apache2/mods-enabled 2>/dev/null); do
			echo "$mods_before" | grep -qx "$m" || rm -f "/etc/apache2/mods-enabled/$m"
		done
		for m in $(ls /etc/lighttpd/conf-enabled 2>/dev/null); do
			echo "$lighty_before" | grep -qx "$m" || rm -f "/etc/lighttpd/conf-enabled/$m"
		done
		if [ "$had_user" = no ] && getent passwd photovote >/dev/null; then
			deluser --quiet --system photovote >/dev/null 2>&1
			getent group photovote >/dev/null && delgroup --quiet --system photovote >/dev/null 2>&1
		fi
		cleanup
	}
	trap restore EXIT
	prev=$WORK/prev
	dpkg-deb -R "$deb" "$prev"
	sed -i 's/^Version: .*/Version: 0.1.0-1+prev/' "$prev/DEBIAN/control"
	dpkg-deb -b "$prev" "$WORK/photovote_prev.deb" >/dev/null
	dpkgi()
	{
		DEBIAN_FRONTEND=noninteractive dpkg "$@" </dev/null >>"$WORK/dpkg.log" 2>&1
	}
	C=/etc/photovote/photovote.conf
	A=/etc/apache2/conf-enabled/photovote.conf
	installed_ok()
	{
		dpkgi -i "$WORK/photovote_prev.deb" || return 1
		[ "$(stat -c '%U:%G %a' $C)" = "root:photovote 640" ] &&
			[ -L $A ] && [ -e /etc/apache2/mods-enabled/proxy_fcgi.load ] &&
			[ ! -e /etc/lighttpd/conf-enabled/50-photovote.conf ]
	}
	check "installed: user, configuration root:photovote 0640, Apache's conf enabled, lighttpd's not" \
		installed_ok
	sed -i 's/^#threads = 8$/threads = 3/' $C
	upgrade_ok()
	{
		grep -qx 'threads = 3' $C || return 1
		: >"$WORK/dpkg.log"
		dpkgi -i "$deb" || return 1
		! grep -qi 'configuration file' "$WORK/dpkg.log" &&
			grep -qx 'threads = 3' $C && [ "$(stat -c '%U:%G %a' $C)" = "root:photovote 640" ] &&
			[ -z "$(ls /etc/photovote/*.dpkg-* 2>/dev/null)" ] &&
			[ "$(dpkg-query -W -f='${Version}' photovote)" = "$(dpkg-deb -f "$deb" Version)" ]
	}
	check "upgrade from the previous version: no question, the local change kept" upgrade_ok
	# photovote-admin as root with the installed configuration works as the
	# user photovote: on the test's PostgreSQL (no role root) it creates a
	# token; with a copy of that configuration elsewhere root stays root.
	admin_ok()
	{
		local db=pv_deb_$$ ci f
		[ -n "${PV_TEST_PG_CONNINFO-}" ] || return 2
		psql -XAtq "$PV_TEST_PG_CONNINFO" -c "CREATE DATABASE $db" || return 1
		ci=$(echo "$PV_TEST_PG_CONNINFO" | sed 's/ *user=[^ ]*//; s/ *dbname=[^ ]*//')
		for f in /usr/share/photovote/sql/[0-9]*.sql; do
			psql -XAtq -v ON_ERROR_STOP=1 "$PV_TEST_PG_CONNINFO dbname=$db" -f "$f" >/dev/null ||
				return 1
		done
		env -u PHOTOVOTE_CONFIG PHOTOVOTE_POSTGRES_CONNINFO="$ci dbname=$db" photovote-admin token create \
			deb@example.org >"$WORK/token.out" 2>&1
		local rc=$?
		cp $C "$WORK/own.conf"
		env -u PHOTOVOTE_CONFIG PHOTOVOTE_POSTGRES_CONNINFO="$ci dbname=$db" photovote-admin \
			-c "$WORK/own.conf" token create \
			root@example.org >"$WORK/token-root.out" 2>&1
		local rc_root=$?
		psql -XAtq "$PV_TEST_PG_CONNINFO" -c "DROP DATABASE $db" >/dev/null
		diag <"$WORK/token.out"
		diag <"$WORK/token-root.out"
		[ $rc = 0 ] && grep -q '^pv_' "$WORK/token.out" && [ $rc_root != 0 ] &&
			grep -q 'role "root"' "$WORK/token-root.out"
	}
	admin_ok
	case $? in
	0) ok "photovote-admin as root works as the user photovote (the installed configuration)" ;;
	2) skip "photovote-admin as root works as the user photovote" "no test PostgreSQL (PV_TEST_PG_CONNINFO)" ;;
	*) not_ok "photovote-admin as root works as the user photovote (the installed configuration)" ;;
	esac
	# lighttpd's module enabled by the operator, a key file made as
	# README.Debian says; then removal.
	if command -v lighty-enable-mod >/dev/null; then
		lighty-enable-mod fastcgi photovote >/dev/null 2>&1
	fi
	install -m 0640 -o root -g photovote /dev/null /etc/photovote/cosmos-key
	echo c2VjcmV0 >/etc/photovote/cosmos-key
	removed_ok()
	{
		dpkgi -r photovote || return 1
		[ ! -e $A ] && [ ! -L $A ] && [ ! -e /etc/lighttpd/conf-enabled/50-photovote.conf ] &&
			[ -f $C ] && [ -f /etc/nginx/snippets/photovote.conf ]
	}
	check "removed: Apache's and lighttpd's configurations disabled, conffiles kept" removed_ok
	purged_ok()
	{
		dpkgi -P photovote || return 1
		[ ! -e /etc/photovote ] && [ ! -e /etc/apache2/conf-available/photovote.conf ] &&
			[ ! -e /etc/lighttpd/conf-available/50-photovote.conf ] &&
			[ ! -e /etc/nginx/snippets/photovote.conf ] &&
			! dpkg-query -W -f='${Status}' photovote 2>/dev/null | grep -q 'installed\|config-files'
	}
	check "purged: /etc/photovote (the key included) and the web servers' files gone" purged_ok
	check "purge keeps the user photovote (Debian policy)" getent passwd photovote
	# The installation from scratch of this version, then purge: no
	# question, nothing left under /etc/photovote.
	fresh_ok()
	{
		dpkgi -i "$deb" && [ -L $A ] && dpkgi -P photovote && [ ! -e /etc/photovote ] &&
			[ ! -e $A ]
	}
	check "a fresh installation and its purge" fresh_ok
	check "dpkg said nothing about failing maintainer scripts" \
		eval '! grep -i "error" "$WORK/dpkg.log"'
	[ $_failed = 0 ] || diag <"$WORK/dpkg.log"

	# The autopkgtest, as Debian's CI runs it, with the null runner: here,
	# on this machine without systemd (debian/tests/units-run starts the
	# units).  The source tree is this one with packaging/debian as debian/;
	# the test servers of this run are passed on, so it starts none.
	if command -v autopkgtest >/dev/null; then
		mkdir "$WORK/src"
		if git -C "$top_srcdir" rev-parse --git-dir >/dev/null 2>&1; then
			(cd "$top_srcdir" && git ls-files -z --cached --others --exclude-standard |
				xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
				tar --null -T - -cf -) | tar -xf - -C "$WORK/src"
		else
			(cd "$top_srcdir" && tar --exclude='./_build*' -cf - .) | tar -xf - -C "$WORK/src"
		fi
		cp -R "$top_srcdir/packaging/debian" "$WORK/src/debian"
		envs=()
		for v in $(env | sed -n 's/^\(PV_TEST_[A-Z_]*\)=.*/\1/p'); do
			envs+=("--env=$v=${!v}")
		done
		start=$(date +%s)
		autopkgtest "${envs[@]}" --output-dir "$WORK/autopkgtest" "$deb" "$WORK/src" -- null \
			>"$WORK/autopkgtest.log" 2>&1
		rc=$?
		secs=$(($(date +%s) - start))
		grep -E '^(ok|not ok|Bail out|# )' "$WORK/autopkgtest/services-stdout" 2>/dev/null | diag
		if [ $rc = 0 ]; then
			ok "autopkgtest with the null runner, without systemd, passes (${secs} s)"
		else
			not_ok "autopkgtest with the null runner, without systemd, passes (status $rc, ${secs} s)"
			tail -n 40 "$WORK/autopkgtest.log" | diag
		fi
		dpkg -P photovote >/dev/null 2>&1
	else
		skip "autopkgtest with the null runner, without systemd, passes" "autopkgtest missing"
	fi
fi

[ "$_t" -eq 35 ] || echo "# planned 35 tests, ran $_t"
[ "$_failed" -eq 0 ]
