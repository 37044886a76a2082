# shellcheck shell=sh disable=SC3013
# The build steps shared by ./run-tests and ./run-local (POSIX sh, sourced from the top of the
# source tree):
#
#   pv_build_install            the Debian packages and the Cosmos DB stand-in (install-deps.sh)
#   pv_build DIR [FLAGS...]     autoreconf when configure is missing or older than configure.ac,
#                               configure in DIR (again when configure is newer than its
#                               Makefile), then make -j<cores>; a failure says which
#                               step failed on stderr and returns 1
#
# pv_build runs in a subshell, so the caller's working directory stays where it was.  `test -nt`
# is not in POSIX but dash and bash both have it.

pv_build_install()
{
	sh tests/install-deps.sh
}

pv_build()
(
	pv_build_top=$(pwd)
	pv_build_dir=$1
	shift
	# Explicit checks rather than set -e, which a caller's `if ! pv_build ...` switches off.
	if [ ! -x configure ] || [ configure.ac -nt configure ]; then
		if ! autoreconf -fi; then
			echo "build: autoreconf failed" >&2
			exit 1
		fi
	fi
	mkdir -p "$pv_build_dir" && cd "$pv_build_dir" || exit 1
	if [ ! -f Makefile ] || [ "$pv_build_top/configure" -nt Makefile ]; then
		if ! "$pv_build_top/configure" "$@"; then
			echo "build: configure failed (see $pv_build_dir/config.log)" >&2
			exit 1
		fi
	fi
	if ! make -j"$(nproc 2>/dev/null || echo 2)"; then
		echo "build: the build failed in $pv_build_dir" >&2
		exit 1
	fi
)
