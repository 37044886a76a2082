#!/bin/bash
# Builds PhotoVote's Debian package and runs its autopkgtest in a Debian 13
# (trixie) chroot made with debootstrap: the current stable release, next to
# the Debian 12 machine the suite runs on.
#
#   packaging/test-debian13.sh [--keep] CHROOT_DIR
#
# CHROOT_DIR is made with debootstrap when it holds no system yet (reused
# otherwise: a second run skips the download).  Inside: the build
# dependencies from packaging/debian/control, the package built from the
# working tree (packaging/build-deb.sh --worktree, unit tests included), and
# `autopkgtest ... -- null` there, as root, without systemd: the test starts
# the units with debian/tests/units-run.  The mirror is the first URIs: of
# /etc/apt/sources.list.d/debian.sources (or $DEBIAN_MIRROR).  The results
# land in CHROOT_DIR/root/out (build.log, autopkgtest/, result).  Mounts of
# /proc, /sys, /dev and /dev/pts are undone at exit, and with --keep the
# chroot stays (it does anyway; --keep only keeps the build output too).
# Exit 0 when the package built and its autopkgtest passed.  Root only.
set -eu

keep=no
[ "${1-}" = --keep ] && { keep=yes; shift; }
[ $# -eq 1 ] || { echo "usage: $0 [--keep] CHROOT_DIR" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "test-debian13: root only (debootstrap, chroot)" >&2; exit 2; }
top=$(cd "$(dirname "$0")/.." && pwd)
root=$(mkdir -p "$1" && cd "$1" && pwd)
mirror=${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\([^ ]*debian\)$/\1/p' \
	/etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)}
mirror=${mirror:-http://deb.debian.org/debian}
say() { echo "test-debian13: $*"; }

if [ ! -x "$root/usr/bin/apt-get" ]; then
	say "debootstrap trixie from $mirror into $root"
	debootstrap --variant=minbase trixie "$root" "$mirror" >"$root.debootstrap.log" 2>&1 || {
		tail -20 "$root.debootstrap.log" >&2
		exit 1
	}
fi

mounted=()
umount_all()
{
	local i
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
		umount -l "${mounted[i]}" 2>/dev/null || true
	done
}
trap umount_all EXIT
for m in proc sys dev dev/pts; do
	mountpoint -q "$root/$m" && continue
	case $m in
	proc) mount -t proc proc "$root/proc" ;;
	sys) mount -t sysfs sys "$root/sys" ;;
	*) mount --bind "/$m" "$root/$m" ;;
	esac
	mounted+=("$root/$m")
done
cp /etc/resolv.conf "$root/etc/resolv.conf"
# The chroot reaches the network through its host, so it trusts what the
# host trusts: a machine behind a TLS-inspecting proxy has the proxy's CA in
# its bundle, and npm in the chroot (the autopkgtest's `npm ci` of the
# Cosmos DB stand-in) needs it too.  npm reads its CA file from /etc/npmrc.
if [ -r /etc/ssl/certs/ca-certificates.crt ]; then
	mkdir -p "$root/etc/ssl"
	cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/host-ca-bundle.pem"
	echo "cafile=/etc/ssl/host-ca-bundle.pem" >"$root/etc/npmrc"
fi
# Services are started by the tests themselves, never by dpkg.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
	LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }

say "build dependencies and autopkgtest"
deps=$(sed -n '/^Build-Depends:/,/^[A-Z]/p' "$top/packaging/debian/control" |
	sed '$d; s/^Build-Depends://; s/([^)]*)//g; s/,/ /g')
# shellcheck disable=SC2086
in_root apt-get update -q >/dev/null
# shellcheck disable=SC2086
in_root apt-get install -y -q --no-install-recommends build-essential dpkg-dev git \
	autopkgtest $deps >"$root.apt.log" 2>&1 || {
	tail -20 "$root.apt.log" >&2
	exit 1
}

say "the source tree"
rm -rf "$root/root/src" "$root/root/out"
mkdir -p "$root/root/src" "$root/root/out"
# shellcheck disable=SC2016
(cd "$top" && git ls-files -z --cached --others --exclude-standard |
	xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
	tar --null -T - -cf -) | tar -xf - -C "$root/root/src"
version=$(dpkg-parsechangelog -l "$top/packaging/debian/changelog" -S Version)
result=$root/root/out/result
{
	echo "Debian: $(cat "$root/etc/debian_version")"
	echo "PhotoVote: $version ($(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo tree))"
	echo "Date: $(date -u +%Y-%m-%dT%H:%MZ)"
} >"$result"

say "building (log: $root/root/out/build.log)"
start=$(date +%s)
if ! in_root sh -c 'cd /root/src && packaging/build-deb.sh /root/out' >"$root/root/out/build.out" 2>&1
then
	tail -30 "$root/root/out/build.log" 2>/dev/null || cat "$root/root/out/build.out"
	echo "Build: FAILED" >>"$result"
	cat "$result"
	exit 1
fi
echo "Build: ok ($(($(date +%s) - start)) s, unit tests included)" >>"$result"

say "autopkgtest (null runner, no systemd)"
cp -R "$top/packaging/debian" "$root/root/src/debian"
start=$(date +%s)
deb=$(cd "$root/root/out" && ls photovote_*.deb)
set +e
in_root autopkgtest --output-dir /root/out/autopkgtest "/root/out/$deb" /root/src -- null \
	>"$root/root/out/autopkgtest.log" 2>&1
rc=$?
set -e
summary=$(tail -n 3 "$root/root/out/autopkgtest/summary" 2>/dev/null | tr '\n' ' ')
tap=$(grep -c '^ok ' "$root/root/out/autopkgtest/services-stdout" 2>/dev/null || true)
notok=$(grep -c '^not ok ' "$root/root/out/autopkgtest/services-stdout" 2>/dev/null || true)
echo "autopkgtest: status $rc ($(($(date +%s) - start)) s): $summary; TAP ok $tap, not ok $notok" \
	>>"$result"
grep '^not ok ' "$root/root/out/autopkgtest/services-stdout" 2>/dev/null >>"$result" || true
in_root dpkg -P photovote >/dev/null 2>&1 || true
[ "$keep" = yes ] || rm -rf "$root/root/src"
cat "$result"
[ $rc = 0 ]
