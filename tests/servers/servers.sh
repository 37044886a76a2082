# shellcheck shell=bash
# Throwaway servers for integration tests: PostgreSQL, RabbitMQ and the Cosmos DB stand-in, each
# on 127.0.0.1 with free ports and its data in one temporary folder.  Source this file from a
# bash test, then:
#
#   pv_servers_need postgres rabbitmq cosmos cosmos-tls
#
# Design.  A kind of server is in one of four states in this shell: unknown, "shared" (its
# PV_TEST_* variables were inherited, normally from `with-servers`, so the run owns it and this
# shell only uses it), "running" or "stopped" (this shell started it and owns it).
# pv_servers_need reuses a shared server when the variables are set and otherwise starts a
# private one; pv_servers_need_private always starts a private one.  Only owned servers may be
# stopped and restarted (pv_server_stop / pv_server_start): a test that takes a server down
# would break every other test using a shared one.  A restart keeps the port and the data
# (PostgreSQL data folder, RabbitMQ Mnesia folder; the Cosmos stand-in keeps its data in memory,
# so it comes back empty).  Every start waits, bounded by PV_TEST_SERVER_TIMEOUT seconds, until
# the server really answers, and on failure prints the tail of the server's log and returns 1.
#
# Ports are drawn at random below the kernel's ephemeral range, skipping those in use; a start
# that loses a race for its port picks new ones and tries again.  Servers run in their own
# session (setsid), so Ctrl-C in a terminal reaches the test, whose exit trap then stops them in
# order, rather than killing them half-way.  The exit trap runs the commands given to
# pv_on_exit (last first, including an EXIT trap that was set before this file was sourced),
# then stops every owned server and removes the temporary folder.  Set a trap with pv_on_exit,
# not with `trap ... EXIT`, which would replace this one.  Should the script be killed outright,
# a watchdog process ends its servers a second later.
#
# Functions: pv_servers_need, pv_servers_need_private, pv_server_stop, pv_server_start,
# pv_servers_stop_all, pv_on_exit, pv_rabbitmq_cli (rabbitmqctl & co. against the test node),
# pv_server_dir and pv_server_pid (an owned server's folder and leading process).
#
# Exported: PV_TEST_PG_CONNINFO (host=127.0.0.1 port=N dbname=photovote user=photovote, a
# superuser), PV_TEST_PG_PORT, PV_TEST_PG_BINDIR; PV_TEST_AMQP_URL
# (amqp://guest:guest@127.0.0.1:N/%2f), PV_TEST_AMQP_PORT, PV_TEST_AMQP_NODE,
# PV_TEST_AMQP_EPMD_PORT, PV_TEST_AMQP_HOME (where the Erlang cookie is); PV_TEST_COSMOS_URL
# (http://127.0.0.1:N); PV_TEST_COSMOS_TLS_URL (https://127.0.0.1:N) and PV_TEST_COSMOS_CA (the
# CA file that verifies it); PV_TEST_COSMOS_DIR (the folder whose node_modules holds the
# stand-in).  PV_TEST_SERVER_TIMEOUT (seconds, default 120) bounds each wait.

[[ -n ${_pv_srv_loaded:-} ]] && return 0
_pv_srv_loaded=1

_pv_srv_libdir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
_pv_srv_kinds=(postgres rabbitmq cosmos cosmos-tls)
declare -gA _pv_srv_state=() _pv_srv_pid=() _pv_srv_port=() _pv_srv_dir=()
_pv_srv_root=
_pv_srv_owner=$BASHPID
_pv_srv_taken=()
_pv_exit_cmds=()
: "${PV_TEST_SERVER_TIMEOUT:=120}"

_pv_srv_say()
{
	printf 'pv-servers: %s\n' "$*" >&2
}

# Microseconds since the epoch, for start-up times and deadlines.
_pv_srv_now()
{
	local t=${EPOCHREALTIME/[.,]/}
	printf '%s' "${t:-$(date +%s%N | cut -c1-16)}"
}

_pv_srv_fail()
{
	local name=$1 msg=$2 log
	_pv_srv_say "$name: $msg"
	shift 2
	for log in "$@"; do
		[[ -f $log ]] || continue
		printf 'pv-servers: --- last lines of %s ---\n' "$log" >&2
		tail -n 30 "$log" | sed 's/^/  | /' >&2
	done
	return 1
}

# True while PID runs.  A zombie counts as gone: the init process of some sandboxes reaps
# orphans (like a stopped postmaster) late.
_pv_srv_alive()
{
	local pid=${1:-} stat
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
	read -r stat <"/proc/$pid/stat" 2>/dev/null || return 0
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

# Sends TERM to a process group led by PID, waits up to SECONDS, then KILLs what is left.
_pv_srv_kill_group()
{
	local pid=$1 seconds=$2 deadline
	_pv_srv_alive "$pid" || return 0
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
	deadline=$(($(_pv_srv_now) + seconds * 1000000))
	while _pv_srv_alive "$pid" && (($(_pv_srv_now) < deadline)); do
		sleep 0.1
	done
	kill -KILL -- "-$pid" 2>/dev/null
	kill -KILL "$pid" 2>/dev/null
	# Reap it when it is our child; harmless otherwise.
	wait "$pid" 2>/dev/null
	return 0
}

# The command that puts a server in a session of its own, so its process id leads its process
# group.  With job control on (an interactive shell) a background job already leads its own
# group, out of the terminal's reach, and setsid would fork and lose that id.
_pv_srv_session()
{
	_pv_srv_ss=(setsid)
	[[ $- == *m* ]] && _pv_srv_ss=()
	return 0
}

_pv_srv_port_busy()
{
	local port=$1
	if command -v ss >/dev/null 2>&1; then
		[[ -n $(ss -Htan "( sport = :$port )" 2>/dev/null) ]]
		return
	fi
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

# _pv_srv_pick_port VAR: a TCP port nobody listens on or talks from, not yet handed out here.
# Drawn from 20000-31999, below Linux's default ephemeral range, so outgoing connections do not
# take it between the pick and the bind.
_pv_srv_pick_port()
{
	local var=$1 p i
	for ((i = 0; i < 500; i++)); do
		p=$((20000 + ${SRANDOM:-$((RANDOM * 32768 + RANDOM))} % 12000))
		[[ " ${_pv_srv_taken[*]} " == *" $p "* ]] && continue
		_pv_srv_port_busy "$p" && continue
		_pv_srv_taken+=("$p")
		printf -v "$var" '%s' "$p"
		return 0
	done
	_pv_srv_say "no free TCP port found"
	return 1
}

_pv_srv_mkroot()
{
	[[ -n $_pv_srv_root && -d $_pv_srv_root ]] && return 0
	_pv_srv_root=$(mktemp -d "${TMPDIR:-/tmp}/pv-servers.XXXXXX") || return 1
	# PostgreSQL runs as its own user when we are root and must reach its folder inside.
	chmod 755 "$_pv_srv_root"
	_pv_srv_watchdog
}

# The exit trap never runs when the script is killed with KILL (a harness's timeout, say).  A
# watchdog outside the script's job table (so `wait` never waits for it) checks every second
# that the owning shell lives; once it is gone it ends the servers recorded in the folder and
# removes it.  It ends by itself when the folder goes.
_pv_srv_watchdog()
{
	local root=$_pv_srv_root owner=$BASHPID
	( (
		trap '' INT TERM HUP
		while kill -0 "$owner" 2>/dev/null && [[ -d $root ]]; do
			sleep 1
		done
		[[ -d $root ]] && _pv_srv_reap "$root"
	) & ) </dev/null >/dev/null 2>&1
}

# Ends whatever servers ROOT records, without their owner's state, and removes ROOT.
_pv_srv_reap()
{
	local root=$1 f pid bindir
	if [[ -f $root/postgres/data/postmaster.pid ]] && bindir=$(_pv_pg_bindir); then
		(cd "$root" && _pv_pg_as "$bindir/pg_ctl" -D "$root/postgres/data" -m immediate \
			-w -t 20 stop)
	fi
	for f in "$root"/*/leader.pid "$root"/*/epmd.pid; do
		[[ -f $f ]] || continue
		read -r pid <"$f"
		[[ $pid =~ ^[0-9]+$ ]] || continue
		kill -KILL -- "-$pid" 2>/dev/null
		kill -KILL "$pid" 2>/dev/null
	done
	pkill -KILL -f -- "-home $root/rabbitmq/home "
	rm -rf "$root"
}

_pv_srv_valid()
{
	case $1 in
	postgres | rabbitmq | cosmos | cosmos-tls) return 0 ;;
	esac
	_pv_srv_say "unknown server kind '$1' (known: ${_pv_srv_kinds[*]})"
	return 1
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL

_pv_pg_bindir()
{
	local d
	if [[ -n ${PV_TEST_PG_BINDIR:-} && -x $PV_TEST_PG_BINDIR/initdb ]]; then
		printf '%s' "$PV_TEST_PG_BINDIR"
		return 0
	fi
	d=$(pg_config --bindir 2>/dev/null)
	if [[ -n $d && -x $d/initdb && -x $d/pg_ctl ]]; then
		printf '%s' "$d"
		return 0
	fi
	for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5 -V -r); do
		if [[ -x $d/initdb && -x $d/pg_ctl ]]; then
			printf '%s' "$d"
			return 0
		fi
	done
	return 1
}

# initdb and the server refuse to run as root: run them as the postgres user then.
_pv_pg_as()
{
	if ((EUID == 0)); then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

_pv_pg_conninfo()
{
	printf 'host=127.0.0.1 port=%s dbname=%s user=photovote' "$1" "${2:-photovote}"
}

_pv_pg_query()
{
	PGCONNECT_TIMEOUT=5 "$PV_TEST_PG_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 \
		"$(_pv_pg_conninfo "${_pv_srv_port[postgres]}" "$1")" -c "$2"
}

# pg_ctl start -w waits for the server to accept connections, bounded by -t.
_pv_pg_launch()
{
	local d=${_pv_srv_dir[postgres]} port=${_pv_srv_port[postgres]}
	(cd "$d" && _pv_pg_as "$PV_TEST_PG_BINDIR/pg_ctl" -D "$d/data" -l "$d/postgres.log" \
		-w -t "$PV_TEST_SERVER_TIMEOUT" -o "-p $port" start) >"$d/pg_ctl.log" 2>&1
}

_pv_pg_start()
{
	local d port try
	PV_TEST_PG_BINDIR=$(_pv_pg_bindir) ||
		_pv_srv_fail postgres "no PostgreSQL server binaries (pg_config --bindir, /usr/lib/postgresql/*/bin)" ||
		return 1
	export PV_TEST_PG_BINDIR
	if [[ -z ${_pv_srv_dir[postgres]:-} ]]; then
		_pv_srv_mkroot || return 1
		d=$_pv_srv_root/postgres
		mkdir -m 700 "$d" || return 1
		((EUID == 0)) && chown postgres: "$d"
		_pv_srv_dir[postgres]=$d
		# Trust on loopback only: a throwaway server with no secret worth keeping.
		if ! (cd "$d" && _pv_pg_as "$PV_TEST_PG_BINDIR/initdb" -D "$d/data" -U photovote \
			-A trust -E UTF8 --locale=C.UTF-8 --no-sync --no-instructions) \
			>"$d/initdb.log" 2>&1; then
			_pv_srv_fail postgres "initdb failed" "$d/initdb.log"
			return 1
		fi
		cat >>"$d/data/postgresql.conf" <<-EOF
			listen_addresses = '127.0.0.1'
			unix_socket_directories = '$d'
			fsync = off
			full_page_writes = off
			synchronous_commit = off
			max_connections = 200
		EOF
		# A port lost to a race shows as a failed start: try another.
		for try in 1 2 3 4 5; do
			_pv_srv_pick_port port || return 1
			_pv_srv_port[postgres]=$port
			_pv_pg_launch && break
			grep -qi 'address already in use' "$d/postgres.log" 2>/dev/null || break
			_pv_srv_say "postgres: port $port taken meanwhile, trying another"
			: >"$d/postgres.log"
		done
	else
		d=${_pv_srv_dir[postgres]}
		port=${_pv_srv_port[postgres]}
		_pv_pg_launch
	fi
	port=${_pv_srv_port[postgres]}
	if ! _pv_pg_query postgres 'select 1' >/dev/null 2>&1; then
		_pv_srv_fail postgres "server on 127.0.0.1:$port does not answer" \
			"$d/pg_ctl.log" "$d/postgres.log"
		return 1
	fi
	_pv_srv_pid[postgres]=$(head -n 1 "$d/data/postmaster.pid" 2>/dev/null)
	if [[ -z $(_pv_pg_query postgres "select 1 from pg_database where datname = 'photovote'") ]] &&
		! _pv_pg_query postgres 'create database photovote' >"$d/createdb.log" 2>&1; then
		_pv_srv_fail postgres "cannot create database photovote" "$d/createdb.log"
		return 1
	fi
	if [[ $(_pv_pg_query photovote 'select 1' 2>&1) != 1 ]]; then
		_pv_srv_fail postgres "select 1 on database photovote failed" "$d/postgres.log"
		return 1
	fi
	PV_TEST_PG_PORT=$port
	PV_TEST_PG_CONNINFO=$(_pv_pg_conninfo "$port")
	export PV_TEST_PG_PORT PV_TEST_PG_CONNINFO
}

_pv_pg_stop()
{
	local d=${_pv_srv_dir[postgres]} pid=${_pv_srv_pid[postgres]:-}
	(cd "$d" && _pv_pg_as "$PV_TEST_PG_BINDIR/pg_ctl" -D "$d/data" -m fast -w -t 30 stop) \
		>>"$d/pg_ctl.log" 2>&1 ||
		(cd "$d" && _pv_pg_as "$PV_TEST_PG_BINDIR/pg_ctl" -D "$d/data" -m immediate -w -t 10 \
			stop) >>"$d/pg_ctl.log" 2>&1
	if _pv_srv_alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null
		sleep 0.2
	fi
	! _pv_srv_alive "$pid"
}

# ---------------------------------------------------------------------------------------------
# RabbitMQ: a private node with its own epmd, run as the current user through the scripts in
# /usr/lib/rabbitmq/bin (Debian's /usr/sbin wrappers switch to the rabbitmq user).

_pv_rmq_sbin()
{
	local d
	for d in ${PV_TEST_RABBITMQ_SBIN:-} /usr/lib/rabbitmq/bin /usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin; do
		if [[ -x $d/rabbitmq-server && -x $d/rabbitmqctl ]]; then
			printf '%s' "$d"
			return 0
		fi
	done
	return 1
}

_pv_rmq_epmd()
{
	local d
	command -v epmd 2>/dev/null && return 0
	for d in /usr/lib/erlang/erts-*/bin; do
		[[ -x $d/epmd ]] && printf '%s' "$d/epmd" && return 0
	done
	return 1
}

# The environment of the node and of its command-line tools.  The tools must not start an epmd
# of their own when ours is down (it would outlive the test), hence -start_epmd false.
_pv_rmq_env()
{
	local d=${_pv_srv_dir[rabbitmq]}
	_pv_rmq_envv=(
		HOME="$d/home"
		RABBITMQ_CONF_ENV_FILE=/dev/null
		RABBITMQ_NODENAME="$PV_TEST_AMQP_NODE"
		RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
		RABBITMQ_NODE_PORT="${_pv_srv_port[rabbitmq]}"
		RABBITMQ_DIST_PORT="$_pv_rmq_dist_port"
		ERL_EPMD_PORT="$_pv_rmq_epmd_port"
		ERL_EPMD_ADDRESS=127.0.0.1
		RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf"
		RABBITMQ_ADVANCED_CONFIG_FILE="$d/advanced.config"
		RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins"
		RABBITMQ_MNESIA_BASE="$d/mnesia"
		RABBITMQ_LOG_BASE="$d/log"
		RABBITMQ_PID_FILE="$d/rabbitmq.pid"
		RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}"
		RABBITMQ_CTL_ERL_ARGS="-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}"
	)
}

# pv_rabbitmq_cli TOOL ARGS...: rabbitmqctl, rabbitmq-diagnostics, rabbitmq-plugins or
# rabbitmq-queues against the test node (private or shared).
pv_rabbitmq_cli()
{
	local tool=$1 sbin
	shift
	sbin=$(_pv_rmq_sbin) || { _pv_srv_say "no RabbitMQ scripts found"; return 1; }
	if [[ -z ${PV_TEST_AMQP_NODE:-} || -z ${PV_TEST_AMQP_HOME:-} ]]; then
		_pv_srv_say "pv_rabbitmq_cli: no test RabbitMQ node (call pv_servers_need rabbitmq)"
		return 1
	fi
	HOME=$PV_TEST_AMQP_HOME ERL_EPMD_PORT=$PV_TEST_AMQP_EPMD_PORT \
		RABBITMQ_CONF_ENV_FILE=/dev/null \
		RABBITMQ_CTL_ERL_ARGS="-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}" \
		timeout "$PV_TEST_SERVER_TIMEOUT" "$sbin/$tool" -n "$PV_TEST_AMQP_NODE" "$@"
}

# True when an AMQP 0-9-1 server on PORT answers the protocol header with a Connection.Start
# frame (type 1, channel 0, class 10, method 10): a check at the protocol level, without a
# client library.
_pv_amqp_probe()
{
	local hex
	hex=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf "AMQP\x00\x00\x09\x01" >&3
		head -c 11 <&3' _ "$1" 2>/dev/null | od -An -tx1 | tr -d ' \n')
	[[ $hex == 010000????????000a000a ]]
}

_pv_rmq_epmd_up()
{
	local deadline
	_pv_srv_alive "${_pv_rmq_epmd_pid:-}" && return 0
	_pv_srv_session
	"${_pv_srv_ss[@]}" "$_pv_rmq_epmd_bin" -port "$_pv_rmq_epmd_port" -address 127.0.0.1 \
		</dev/null >>"${_pv_srv_dir[rabbitmq]}/epmd.log" 2>&1 &
	_pv_rmq_epmd_pid=$!
	echo "$_pv_rmq_epmd_pid" >"${_pv_srv_dir[rabbitmq]}/epmd.pid"
	deadline=$(($(_pv_srv_now) + 10 * 1000000))
	while (($(_pv_srv_now) < deadline)); do
		_pv_srv_alive "$_pv_rmq_epmd_pid" || return 1
		"$_pv_rmq_epmd_bin" -port "$_pv_rmq_epmd_port" -names >/dev/null 2>&1 &&
			_pv_srv_alive "$_pv_rmq_epmd_pid" && return 0
		sleep 0.05
	done
	return 1
}

# Starts the node and waits for it: first for its AMQP listener (cheap to poll), then for the
# broker to finish booting (rabbitmqctl await_startup, one call).
_pv_rmq_launch()
{
	local d=${_pv_srv_dir[rabbitmq]} sbin=$1 deadline pid left
	_pv_rmq_env
	if ! _pv_rmq_epmd_up; then
		_pv_srv_fail rabbitmq "private epmd on 127.0.0.1:$_pv_rmq_epmd_port did not start" \
			"$d/epmd.log"
		return 1
	fi
	_pv_srv_session
	(cd "$d" && exec env "${_pv_rmq_envv[@]}" "${_pv_srv_ss[@]}" "$sbin/rabbitmq-server") \
		</dev/null >>"$d/server.log" 2>&1 &
	pid=$!
	_pv_srv_pid[rabbitmq]=$pid
	echo "$pid" >"$d/leader.pid"
	deadline=$(($(_pv_srv_now) + PV_TEST_SERVER_TIMEOUT * 1000000))
	while ! _pv_amqp_probe "${_pv_srv_port[rabbitmq]}"; do
		if ! _pv_srv_alive "$pid"; then
			wait "$pid" 2>/dev/null
			return 2
		fi
		if (($(_pv_srv_now) >= deadline)); then
			_pv_srv_fail rabbitmq "no AMQP answer on 127.0.0.1:${_pv_srv_port[rabbitmq]} within ${PV_TEST_SERVER_TIMEOUT}s" \
				"$d/server.log" "$d/log/$PV_TEST_AMQP_NODE.log"
			return 1
		fi
		sleep 0.2
	done
	left=$(((deadline - $(_pv_srv_now)) / 1000000 + 1))
	if ! pv_rabbitmq_cli rabbitmqctl -q await_startup --timeout "$left" >"$d/await.log" 2>&1; then
		_pv_srv_fail rabbitmq "rabbitmqctl await_startup failed" "$d/await.log" \
			"$d/log/$PV_TEST_AMQP_NODE.log"
		return 1
	fi
}

_pv_rmq_start()
{
	local d sbin try rc
	sbin=$(_pv_rmq_sbin) ||
		_pv_srv_fail rabbitmq "no RabbitMQ scripts (/usr/lib/rabbitmq/bin)" || return 1
	_pv_rmq_epmd_bin=$(_pv_rmq_epmd) || _pv_srv_fail rabbitmq "no epmd found" || return 1
	if [[ -n ${_pv_srv_dir[rabbitmq]:-} ]]; then
		d=${_pv_srv_dir[rabbitmq]}
		_pv_rmq_launch "$sbin"
		rc=$?
		((rc == 2)) && _pv_srv_fail rabbitmq "node exited while starting" "$d/server.log" \
			"$d/log/$PV_TEST_AMQP_NODE.log"
		((rc == 0)) || return 1
	else
		_pv_srv_mkroot || return 1
		d=$_pv_srv_root/rabbitmq
		mkdir -m 700 "$d" "$d/home" || return 1
		_pv_srv_dir[rabbitmq]=$d
		printf 'pvtest%s%s%s' "$RANDOM" "$RANDOM" "$RANDOM" >"$d/home/.erlang.cookie"
		chmod 400 "$d/home/.erlang.cookie"
		# The consistent-hash exchange is part of the architecture.  The disk limit is low so
		# a nearly full test machine does not block publishers.  Erlang terms rather than
		# rabbitmq.conf (which stays absent, so /etc's is not read either): translating the
		# .conf schema costs seconds of start-up.
		printf '[rabbitmq_consistent_hash_exchange].\n' >"$d/enabled_plugins"
		printf '[{rabbit, [{disk_free_limit, 1000000}]}].\n' >"$d/advanced.config"
		PV_TEST_AMQP_NODE=pvtest-$$-$RANDOM@localhost
		PV_TEST_AMQP_HOME=$d/home
		export PV_TEST_AMQP_NODE PV_TEST_AMQP_HOME
		for try in 1 2 3 4 5; do
			_pv_srv_pick_port _pv_rmq_epmd_port || return 1
			_pv_srv_pick_port _pv_rmq_dist_port || return 1
			_pv_srv_pick_port "_pv_srv_port[rabbitmq]" || return 1
			PV_TEST_AMQP_EPMD_PORT=$_pv_rmq_epmd_port
			export PV_TEST_AMQP_EPMD_PORT
			_pv_rmq_launch "$sbin"
			rc=$?
			((rc == 2)) || break
			# Erlang says dist_port_already_used when its distribution port was taken.
			if ! grep -qi -e eaddrinuse -e 'address already in use' -e dist_port_already_used \
				"$d/server.log" \
				"$d/epmd.log" "$d/log/$PV_TEST_AMQP_NODE.log" 2>/dev/null; then
				_pv_srv_fail rabbitmq "node exited while starting" "$d/server.log" \
					"$d/log/$PV_TEST_AMQP_NODE.log"
				return 1
			fi
			_pv_srv_say "rabbitmq: a port was taken meanwhile, trying others"
			_pv_srv_kill_group "${_pv_rmq_epmd_pid:-}" 5
			rm -rf "$d/mnesia" "$d/log"
		done
		((rc == 0)) || { ((rc == 2)) && _pv_srv_fail rabbitmq "no free ports after $try tries"; return 1; }
	fi
	PV_TEST_AMQP_PORT=${_pv_srv_port[rabbitmq]}
	# %2f is the default virtual host "/"; a bare trailing slash would name the empty vhost.
	PV_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:$PV_TEST_AMQP_PORT/%2f
	export PV_TEST_AMQP_PORT PV_TEST_AMQP_URL
}

# Stops the node and keeps the private epmd, so the tools never find the port free and a
# restart registers with the same epmd; pv_servers_stop_all ends epmd too.
_pv_rmq_stop()
{
	local pid=${_pv_srv_pid[rabbitmq]:-} home=${_pv_srv_dir[rabbitmq]}/home
	# The server script turns TERM into an orderly broker stop.  The VM names its private HOME
	# on its command line, which finds a VM that escaped its process group.
	_pv_srv_kill_group "$pid" 30
	if pgrep -f -- "-home $home " >/dev/null 2>&1; then
		pkill -KILL -f -- "-home $home "
		sleep 0.2
	fi
	! pgrep -f -- "-home $home " >/dev/null 2>&1
}

_pv_rmq_stop_epmd()
{
	_pv_srv_kill_group "${_pv_rmq_epmd_pid:-}" 5
	_pv_rmq_epmd_pid=
}

# ---------------------------------------------------------------------------------------------
# Cosmos DB stand-in (@vercel/cosmosdb-server, pinned in tests/cosmos).

# The folder holding the installed stand-in: PV_TEST_COSMOS_DIR, else tests/cosmos in the
# source tree, else tests/cosmos in the build tree.  Installs it with `npm ci` from the committed
# lockfile when missing, one installer at a time.
_pv_cosmos_dir()
{
	local src=$_pv_srv_libdir/../cosmos d
	src=$(cd "$src" && pwd) || return 1
	for d in ${PV_TEST_COSMOS_DIR:-} "$src" ${top_builddir:+"$top_builddir/tests/cosmos"}; do
		if [[ -f $d/node_modules/@vercel/cosmosdb-server/lib/cli.js ]]; then
			printf '%s' "$d"
			return 0
		fi
	done
	# Out of the source tree when there is a separate build tree: a source tree may be
	# read-only (make distcheck), and root would write into it all the same.
	d=$src
	if [[ -n ${top_builddir:-} && $(cd "$top_builddir" && pwd) != "$(cd "$src/../.." && pwd)" ]] ||
		[[ ! -w $d ]]; then
		[[ -n ${top_builddir:-} ]] || return 1
		d=$top_builddir/tests/cosmos
		mkdir -p "$d" && cp "$src/package.json" "$src/package-lock.json" "$d/" || return 1
	fi
	_pv_srv_say "cosmos: npm ci in $d"
	(cd "$d" && flock -w 600 . sh -c 'test -f node_modules/@vercel/cosmosdb-server/lib/cli.js ||
		npm ci --no-audit --no-fund --loglevel=error') >&2 || return 1
	printf '%s' "$d"
}

# The Cosmos DB TLS server's certificates are made for each run (tests/lib/certs.sh): the
# certificate bundled with the stand-in expired in January 2021 and names only "cosmosdb", so no
# verifying client accepts it.
# shellcheck source=tests/lib/certs.sh
. "$_pv_srv_libdir/../lib/certs.sh"

_pv_cosmos_check()
{
	local name=$1 port=$2
	if [[ $name == cosmos ]]; then
		curl -sf --max-time 3 -o /dev/null "http://127.0.0.1:$port/"
	else
		curl -sf --max-time 3 --cacert "${_pv_srv_dir[$name]}/ca.pem" -o /dev/null \
			"https://127.0.0.1:$port/"
	fi
}

# Returns 2 when the server exited while starting (its port may have been taken).
_pv_cosmos_launch()
{
	local name=$1 cdir=$2 d=${_pv_srv_dir[$1]} port=${_pv_srv_port[$1]} pid deadline
	_pv_srv_session
	if [[ $name == cosmos ]]; then
		(cd "$d" && NODE_PATH=$cdir/node_modules exec "${_pv_srv_ss[@]}" node \
			"$_pv_srv_libdir/cosmos-server.js" 127.0.0.1 "$port") </dev/null >>"$d/server.log" 2>&1 &
	else
		(cd "$d" && NODE_PATH=$cdir/node_modules exec "${_pv_srv_ss[@]}" node \
			"$_pv_srv_libdir/cosmos-tls-server.js" 127.0.0.1 "$port" "$d/server.pem" \
			"$d/server.key") </dev/null >>"$d/server.log" 2>&1 &
	fi
	pid=$!
	_pv_srv_pid[$name]=$pid
	echo "$pid" >"$d/leader.pid"
	deadline=$(($(_pv_srv_now) + PV_TEST_SERVER_TIMEOUT * 1000000))
	while ! _pv_cosmos_check "$name" "$port"; do
		if ! _pv_srv_alive "$pid"; then
			wait "$pid" 2>/dev/null
			return 2
		fi
		if (($(_pv_srv_now) >= deadline)); then
			_pv_srv_fail "$name" "no answer on 127.0.0.1:$port within ${PV_TEST_SERVER_TIMEOUT}s" \
				"$d/server.log"
			return 1
		fi
		sleep 0.1
	done
}

_pv_cosmos_start()
{
	local name=$1 cdir d try rc port
	command -v node >/dev/null 2>&1 || _pv_srv_fail "$name" "node is not installed" || return 1
	cdir=$(_pv_cosmos_dir) ||
		_pv_srv_fail "$name" "the stand-in is not installed (npm ci in tests/cosmos failed)" ||
		return 1
	cdir=$(cd "$cdir" && pwd) || return 1 # NODE_PATH is read after a cd
	PV_TEST_COSMOS_DIR=$cdir
	export PV_TEST_COSMOS_DIR
	if [[ -n ${_pv_srv_dir[$name]:-} ]]; then
		_pv_cosmos_launch "$name" "$cdir"
		rc=$?
	else
		_pv_srv_mkroot || return 1
		d=$_pv_srv_root/$name
		mkdir -m 700 "$d" || return 1
		_pv_srv_dir[$name]=$d
		if [[ $name == cosmos-tls ]] && ! pv_test_certs "$d"; then
			_pv_srv_fail "$name" "cannot make the test certificates" "$d/openssl.log"
			return 1
		fi
		for try in 1 2 3 4 5; do
			_pv_srv_pick_port "_pv_srv_port[$name]" || return 1
			_pv_cosmos_launch "$name" "$cdir"
			rc=$?
			if ((rc != 2)) || ! grep -q EADDRINUSE "$d/server.log"; then
				break
			fi
			_pv_srv_say "$name: port ${_pv_srv_port[$name]} taken meanwhile, trying another"
		done
	fi
	((rc == 2)) && _pv_srv_fail "$name" "server exited while starting" "$d/server.log"
	((rc == 0)) || return 1
	port=${_pv_srv_port[$name]}
	if [[ $name == cosmos ]]; then
		PV_TEST_COSMOS_URL=http://127.0.0.1:$port
		export PV_TEST_COSMOS_URL
	else
		PV_TEST_COSMOS_TLS_URL=https://127.0.0.1:$port
		PV_TEST_COSMOS_CA=${_pv_srv_dir[$name]}/ca.pem
		export PV_TEST_COSMOS_TLS_URL PV_TEST_COSMOS_CA
	fi
}

_pv_cosmos_stop()
{
	_pv_srv_kill_group "${_pv_srv_pid[$1]:-}" 10
	! _pv_srv_alive "${_pv_srv_pid[$1]:-}"
}

# ---------------------------------------------------------------------------------------------
# Public interface

_pv_srv_inherited()
{
	case $1 in
	postgres) [[ -n ${PV_TEST_PG_CONNINFO:-} ]] ;;
	rabbitmq) [[ -n ${PV_TEST_AMQP_URL:-} ]] ;;
	cosmos) [[ -n ${PV_TEST_COSMOS_URL:-} ]] ;;
	cosmos-tls) [[ -n ${PV_TEST_COSMOS_TLS_URL:-} && -n ${PV_TEST_COSMOS_CA:-} ]] ;;
	esac
}

_pv_srv_start()
{
	local name=$1 t0 rc
	t0=$(_pv_srv_now)
	case $name in
	postgres) _pv_pg_start ;;
	rabbitmq) _pv_rmq_start ;;
	cosmos | cosmos-tls) _pv_cosmos_start "$name" ;;
	esac
	rc=$?
	if ((rc != 0)); then
		# Whatever half-started goes now.  A failed restart keeps the folder and port for
		# another try; a failed first start forgets them (the exit trap removes the folder).
		_pv_srv_stop "$name"
		if [[ ${_pv_srv_state[$name]:-} != stopped ]]; then
			[[ $name == rabbitmq ]] && _pv_rmq_stop_epmd
			unset "_pv_srv_state[$name]" "_pv_srv_dir[$name]" "_pv_srv_pid[$name]" \
				"_pv_srv_port[$name]"
		fi
		return 1
	fi
	_pv_srv_state[$name]=running
	_pv_srv_say "$name ready on 127.0.0.1:${_pv_srv_port[$name]} in $((($(_pv_srv_now) - t0) / 1000)) ms"
}

_pv_srv_stop()
{
	case $1 in
	postgres) [[ -n ${_pv_srv_dir[postgres]:-} ]] && _pv_pg_stop ;;
	rabbitmq) [[ -n ${_pv_srv_dir[rabbitmq]:-} ]] && _pv_rmq_stop ;;
	cosmos | cosmos-tls) _pv_cosmos_stop "$1" ;;
	esac
}

# Splits arguments on commas too, so "postgres,rabbitmq" and "postgres rabbitmq" both work.
_pv_srv_names()
{
	local IFS=$' \t\n,'
	# shellcheck disable=SC2206
	_pv_srv_namev=($*)
}

# pv_servers_need NAME...: reuse the run's servers when their variables are set, else start
# private ones.
pv_servers_need()
{
	local name
	_pv_srv_names "$@"
	for name in "${_pv_srv_namev[@]}"; do
		_pv_srv_valid "$name" || return 1
		case ${_pv_srv_state[$name]:-} in
		running | shared) continue ;;
		stopped) pv_server_start "$name" || return 1; continue ;;
		esac
		if _pv_srv_inherited "$name"; then
			_pv_srv_state[$name]=shared
			continue
		fi
		_pv_srv_start "$name" || return 1
	done
}

# pv_servers_need_private NAME...: start private servers whatever the environment says (for
# tests that stop and restart them, and for `with-servers`).
pv_servers_need_private()
{
	local name
	_pv_srv_names "$@"
	for name in "${_pv_srv_namev[@]}"; do
		_pv_srv_valid "$name" || return 1
		case ${_pv_srv_state[$name]:-} in
		running) continue ;;
		stopped) pv_server_start "$name" || return 1; continue ;;
		esac
		_pv_srv_start "$name" || return 1
	done
}

# pv_server_start NAME: start a server this shell stopped, on the same port with the same data.
pv_server_start()
{
	local name=$1
	_pv_srv_valid "$name" || return 1
	case ${_pv_srv_state[$name]:-} in
	running) return 0 ;;
	shared)
		_pv_srv_say "$name is shared by the run; use pv_servers_need_private to own one"
		return 1
		;;
	stopped)
		# Only a listener counts: the server's own closed connections linger in TIME_WAIT.
		if [[ -n $(ss -Htln "( sport = :${_pv_srv_port[$name]} )" 2>/dev/null) ]]; then
			_pv_srv_say "$name: port ${_pv_srv_port[$name]} was taken while the server was down"
			return 1
		fi
		_pv_srv_start "$name"
		;;
	*) pv_servers_need_private "$name" ;;
	esac
}

# pv_server_stop NAME: stop a server this shell owns; its variables, port and data stay for
# pv_server_start.
pv_server_stop()
{
	local name=$1
	_pv_srv_valid "$name" || return 1
	case ${_pv_srv_state[$name]:-} in
	running)
		if ! _pv_srv_stop "$name"; then
			_pv_srv_say "$name: could not stop the server"
			return 1
		fi
		_pv_srv_state[$name]=stopped
		;;
	shared)
		_pv_srv_say "$name is shared by the run and cannot be stopped here; use pv_servers_need_private"
		return 1
		;;
	esac
	return 0
}

# pv_servers_stop_all: stop every server this shell owns, remove the temporary folder and drop
# the variables naming them.
pv_servers_stop_all()
{
	local name rc=0
	for name in "${_pv_srv_kinds[@]}"; do
		case ${_pv_srv_state[$name]:-} in
		running | stopped)
			pv_server_stop "$name" || rc=1
			case $name in
			postgres) unset PV_TEST_PG_CONNINFO PV_TEST_PG_PORT ;;
			rabbitmq)
				unset PV_TEST_AMQP_URL PV_TEST_AMQP_PORT PV_TEST_AMQP_NODE \
					PV_TEST_AMQP_EPMD_PORT PV_TEST_AMQP_HOME
				;;
			cosmos) unset PV_TEST_COSMOS_URL ;;
			cosmos-tls) unset PV_TEST_COSMOS_TLS_URL PV_TEST_COSMOS_CA ;;
			esac
			unset "_pv_srv_state[$name]" "_pv_srv_dir[$name]" "_pv_srv_pid[$name]" \
				"_pv_srv_port[$name]"
			;;
		esac
	done
	_pv_rmq_stop_epmd
	if [[ -n $_pv_srv_root ]]; then
		rm -rf "$_pv_srv_root"
		_pv_srv_root=
	fi
	_pv_srv_taken=()
	return $rc
}

# pv_server_dir NAME: the private folder of a server this shell owns (logs, data).
pv_server_dir()
{
	[[ -n ${_pv_srv_dir[$1]:-} ]] && printf '%s\n' "${_pv_srv_dir[$1]}"
}

# pv_server_pid NAME: the process leading a server this shell owns.
pv_server_pid()
{
	[[ -n ${_pv_srv_pid[$1]:-} ]] && printf '%s\n' "${_pv_srv_pid[$1]}"
}

# pv_free_port: prints a free loopback TCP port for a server a test starts itself, picked as
# the servers' own are (below the ephemeral range).
pv_free_port()
{
	local _pv_free_port_got
	_pv_srv_pick_port _pv_free_port_got || return 1
	printf '%s\n' "$_pv_free_port_got"
}

# pv_lighttpd_fcgi DIR FCGI [BIN_ENV]: lighttpd on a free loopback port serving /api from the
# FastCGI program FCGI (one process, socket DIR/fcgi.sock), its files in DIR; BIN_ENV: entries of
# lighttpd's "bin-environment" for the program.  Sets PV_LIGHTTPD_PORT and PV_LIGHTTPD_PID once
# lighttpd logs "server started", which it does once bound, so that a port another server holds
# never passes for ours; a port taken between the pick and the bind (tests run side by side) is
# tried again on another one.  Stopped when the script exits.
pv_lighttpd_fcgi()
{
	local dir=$1 fcgi=$2 env=${3:-} attempt i port pid
	mkdir -p "$dir/www"
	for ((attempt = 1; attempt <= 5; attempt++)); do
		_pv_srv_pick_port port || return 1
		cat >"$dir/lighttpd.conf" <<CONF
server.document-root = "$dir/www"
server.bind = "127.0.0.1"
server.port = $port
server.pid-file = "$dir/lighttpd.pid"
server.errorlog = "$dir/lighttpd-error.log"
server.modules = ("mod_fastcgi")
fastcgi.server = ("/api" => ((
	"bin-path" => "$fcgi",
	"socket" => "$dir/fcgi.sock",
	${env:+\"bin-environment\" => ($env),}
	"check-local" => "disable",
	"max-procs" => 1,
)))
CONF
		: >"$dir/lighttpd.out"
		: >"$dir/lighttpd-error.log"
		lighttpd -D -f "$dir/lighttpd.conf" >>"$dir/lighttpd.out" 2>&1 &
		pid=$!
		pv_on_exit "kill $pid 2>/dev/null; wait $pid 2>/dev/null"
		for ((i = 0; i < 300; i++)); do
			grep -q "server started" "$dir/lighttpd-error.log" 2>/dev/null && break
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			PV_LIGHTTPD_PORT=$port PV_LIGHTTPD_PID=$pid
			return 0
		fi
		grep -q "Address already in use" "$dir/lighttpd.out" || break
		echo "# port $port was taken before lighttpd bound it; another port"
	done
	echo "# lighttpd did not start:"
	tail -n 20 "$dir/lighttpd-error.log" "$dir/lighttpd.out" 2>/dev/null | sed 's/^/#   /'
	return 1
}

# pv_wait_port PORT [SECONDS [PID]]: until 127.0.0.1:PORT accepts a connection, for SECONDS
# (default 10), or until process PID (the server that should listen) is gone; 1 when it never
# did.
pv_wait_port()
{
	local port=$1 pid=${3:-} deadline=$((SECONDS + ${2:-10}))
	while ((SECONDS < deadline)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
		[[ -z $pid ]] || kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.01
	done
	return 1
}

# pv_wait_ready BASE OUT [PID]: until BASE/readyz answers 200 (photovote.fcgi's servers up),
# for 30 s, or until process PID (the web server in front) is gone; OUT holds the last answer.
# On failure prints "# not ready; the last /readyz answered CODE: BODY" and returns 1.
pv_wait_ready()
{
	local base=$1 out=$2 pid=${3:-} code= deadline=$((SECONDS + 30))
	while ((SECONDS < deadline)); do
		code=$(curl -s -m 5 -o "$out" -w '%{http_code}' "$base/readyz")
		[[ $code == 200 ]] && return 0
		[[ -z $pid ]] || kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "# not ready; the last /readyz answered ${code:-nothing}: $(head -c 300 "$out" 2>/dev/null | tr -d '\r\n')"
	return 1
}

# pv_on_exit CMD: run CMD (evaluated) when the script exits, before the servers stop; the last
# added runs first.
pv_on_exit()
{
	_pv_exit_cmds+=("$*")
}

_pv_srv_on_exit()
{
	local i
	set +e
	for ((i = ${#_pv_exit_cmds[@]} - 1; i >= 0; i--)); do
		eval "${_pv_exit_cmds[i]}"
	done
	_pv_exit_cmds=()
	# A subshell inherits the variables but not the servers.
	[[ $BASHPID == "$_pv_srv_owner" ]] && pv_servers_stop_all
}

# Keep an EXIT trap set before us as the first cleanup, so it runs last of them.
_pv_srv_trap_chain()
{
	local spec words
	spec=$(trap -p EXIT)
	[[ -n $spec ]] || return 0
	# trap -p quotes for reuse: "trap -- 'CMD' EXIT".
	eval "words=($spec)"
	[[ ${words[2]} == _pv_srv_on_exit ]] || _pv_exit_cmds+=("${words[2]}")
}
_pv_srv_trap_chain
trap _pv_srv_on_exit EXIT
# A signal ends the script through exit, so the EXIT trap still stops the servers.
[[ -z $(trap -p INT) ]] && trap 'exit 130' INT
[[ -z $(trap -p TERM) ]] && trap 'exit 143' TERM
[[ -z $(trap -p HUP) ]] && trap 'exit 129' HUP
true
