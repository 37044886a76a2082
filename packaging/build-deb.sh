#!/bin/sh
# Builds PhotoVote's Debian binary packages into OUTDIR.
#
#   packaging/build-deb.sh [--worktree] OUTDIR
#
# The packaging lives in packaging/debian/, so this makes a temporary source
# tree photovote-VERSION/ with it as debian/ and runs
# `dpkg-buildpackage -b -uc -us` there (DEB_BUILD_OPTIONS is passed on, e.g.
# "parallel=2 nocheck").  The tree is HEAD of the git checkout (git archive),
# or with --worktree the working tree's files as git sees them (tracked and
# untracked, less the ignored ones), so uncommitted work can be packaged.
# Outside a git checkout (an unpacked release) the whole source tree is used.
# The .deb, .buildinfo and .changes files land in OUTDIR; the build log is
# OUTDIR/build.log.
set -eu

usage()
{
	echo "usage: $0 [--worktree] OUTDIR" >&2
	exit 2
}

worktree=no
case ${1-} in
--worktree) worktree=yes; shift ;;
-h | --help) usage ;;
esac
[ $# -eq 1 ] || usage

top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)

for tool in dpkg-buildpackage dpkg-parsechangelog dh; do
	command -v "$tool" >/dev/null 2>&1 || {
		echo "build-deb: $tool is missing (apt-get install dpkg-dev debhelper)" >&2
		exit 1
	}
done

version=$(dpkg-parsechangelog -l "$top/packaging/debian/changelog" -S Version)
upstream=${version%-*}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/photovote-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
tree=$tmp/photovote-$upstream
mkdir "$tree"

if [ -d "$top/.git" ] || git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
	if [ "$worktree" = yes ]; then
		# Files deleted in the working tree but not yet in the index are skipped.
		# shellcheck disable=SC2016
		(cd "$top" && git ls-files -z --cached --others --exclude-standard |
			xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
			tar --null -T - -cf -) | tar -xf - -C "$tree"
	else
		git -C "$top" archive --format=tar HEAD | tar -xf - -C "$tree"
	fi
else
	(cd "$top" && tar --exclude='./_build*' -cf - .) | tar -xf - -C "$tree"
fi

rm -rf "$tree/debian"
cp -R "$tree/packaging/debian" "$tree/debian" 2>/dev/null ||
	cp -R "$top/packaging/debian" "$tree/debian"

echo "build-deb: building photovote $version in $tree (log: $out/build.log)"
# A make that calls this script (make check, make distcheck) passes its
# variables down through the environment: prefix, DESTDIR and the like
# would send the package's own install elsewhere.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES DESTDIR
if ! (cd "$tree" && dpkg-buildpackage -b -uc -us) >"$out/build.log" 2>&1; then
	tail -40 "$out/build.log" >&2
	echo "build-deb: dpkg-buildpackage failed (whole log: $out/build.log)" >&2
	exit 1
fi

found=no
for f in "$tmp"/*.deb "$tmp"/*.buildinfo "$tmp"/*.changes; do
	[ -e "$f" ] || continue
	mv "$f" "$out/"
	found=yes
	echo "build-deb: $out/$(basename "$f")"
done
[ "$found" = yes ] || {
	echo "build-deb: dpkg-buildpackage made no packages" >&2
	exit 1
}
