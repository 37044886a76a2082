# Sourced by the tests that need the KurrentDB gRPC stand-in
# (kurrentdb-standin.js).  Needs top_srcdir (and top_builddir when the
# build tree is separate).
#
#   pv_kdb_dir            prints the folder whose node_modules holds the
#                         stand-in's packages, installing them with `npm ci`
#                         from the committed lockfile when missing (into the
#                         build tree when the source tree is read-only, as
#                         under make distcheck), one installer at a time
#   pv_kdb_start ARGS...  starts the stand-in on a free port of 127.0.0.1
#                         (ARGS go to it: --data FILE, --follower HOST:PORT,
#                         ...); sets pv_kdb_pid and pv_kdb_port
#   pv_kdb_stop           stops it (pv_kdb_pid) and waits for it

pv_kdb_src=$(cd "${top_srcdir:-.}/tests/kurrentdb" && pwd)
pv_kdb_pid=
pv_kdb_port=
pv_kdb_out=

# pv_kdb_need [PROG]: ends the test as skipped (TAP) unless node is there and PROG, when named,
# is built.
pv_kdb_need()
{
	if [ -n "${1:-}" ] && [ ! -x "$1" ]; then
		echo "1..0 # SKIP $1 is not built"
		exit 0
	fi
	if ! command -v node >/dev/null 2>&1; then
		echo "1..0 # SKIP node is needed for the KurrentDB stand-in"
		exit 0
	fi
}

pv_kdb_dir()
{
	local mark=node_modules/@kurrent/kurrentdb-client/package.json d
	for d in "$pv_kdb_src" ${top_builddir:+"$top_builddir/tests/kurrentdb"}; do
		if [ -f "$d/$mark" ] && [ -f "$d/node_modules/@grpc/grpc-js/package.json" ]; then
			printf '%s' "$d"
			return 0
		fi
	done
	d=$pv_kdb_src
	if [ ! -w "$d" ] || { [ -n "${top_builddir:-}" ] &&
		[ "$(cd "$top_builddir" && pwd)" != "$(cd "$pv_kdb_src/../.." && pwd)" ]; }; then
		[ -n "${top_builddir:-}" ] || return 1
		d=$top_builddir/tests/kurrentdb
		mkdir -p "$d" && cp "$pv_kdb_src/package.json" "$pv_kdb_src/package-lock.json" "$d/" ||
			return 1
	fi
	echo "# npm ci in $d" >&2
	(cd "$d" && flock -w 600 . sh -c "test -f $mark ||
		npm ci --no-audit --no-fund --loglevel=error") >&2 || return 1
	printf '%s' "$d"
}

pv_kdb_start()
{
	local dir i
	command -v node >/dev/null 2>&1 || { echo "node is not installed" >&2; return 1; }
	dir=$(pv_kdb_dir) || { echo "npm ci of the KurrentDB stand-in failed" >&2; return 1; }
	pv_kdb_out=$(mktemp "${TMPDIR:-/tmp}/pv-kdb.XXXXXX") || return 1
	(cd "$dir" && exec node "$pv_kdb_src/kurrentdb-standin.js" "$@" 0) >"$pv_kdb_out" 2>&1 &
	pv_kdb_pid=$!
	pv_kdb_port=
	# Up to 60 s: Node's start under a loaded machine (or beside an ASan suite) is slow.
	for i in $(seq 1 600); do
		pv_kdb_port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$pv_kdb_out")
		[ -n "$pv_kdb_port" ] && return 0
		kill -0 "$pv_kdb_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "the KurrentDB stand-in did not start: $(head -c 2000 "$pv_kdb_out")" >&2
	pv_kdb_stop
	return 1
}

pv_kdb_stop()
{
	if [ -n "$pv_kdb_pid" ]; then
		kill "$pv_kdb_pid" 2>/dev/null
		wait "$pv_kdb_pid" 2>/dev/null
	fi
	pv_kdb_pid=
	[ -n "$pv_kdb_out" ] && rm -f "$pv_kdb_out"
	pv_kdb_out=
}
