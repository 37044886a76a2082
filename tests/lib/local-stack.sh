# shellcheck shell=bash
# The services of ./run-local, kept in one folder that outlives the run: PostgreSQL (its data
# folder), RabbitMQ (its Mnesia folder, under a fixed node name), the Cosmos DB stand-in (in
# memory), lighttpd in front of photovote.fcgi, the appender and the projector.  Sourced by
# run-local; reuses the server helpers of tests/servers/servers.sh (binary lookup, liveness,
# ports, the AMQP probe, the stand-in's install) but none of its throwaway state.
#
# Design.  pvl_init VAR names the folder: VAR/<service>/ holds each server's data and
# configuration, VAR/logs/<service>.log what each service printed, VAR/run/<service>.pid the
# process leading each one ("PID NAME").  Every service runs in a session of its own (setsid),
# so Ctrl-C in the terminal reaches run-local alone, which then stops the services in the
# reverse order of their starts (pvl_stop_all): the web server and the programs before the
# servers they use.  Each service's output goes through a filter that prefixes its lines with
# "[name] " on run-local's standard output and copies them into its log.  A run that was
# killed outright leaves its pid files behind: pvl_sweep ends what they still name.
#
# Ports: each service has a fixed default (pvl_port), replaced by a free one when the default
# is taken; everything listens on 127.0.0.1 only.  PostgreSQL trusts loopback connections (a
# developer's machine; nothing here is meant for a shared host).
#
# Functions: pvl_init, pvl_sweep, pvl_port, pvl_prefix, pvl_spawn, pvl_record, pvl_alive_all,
# pvl_spawn_supervised, pvl_supervise, pvl_alive_unsupervised, pvl_stop_all, pvl_say,
# pvl_service_wait, pvl_postgres_start/_ready, pvl_sql, pvl_rabbitmq_start/_ready,
# pvl_rabbitmqctl, pvl_cosmos_start/_ready.  The starts do not wait, so the three servers boot
# at the same time; the _ready functions wait for each.

[[ -n ${_pvl_loaded:-} ]] && return 0
_pvl_loaded=1

_pvl_libdir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/servers/servers.sh
. "$_pvl_libdir/../servers/servers.sh" || return 1
for _pvl_f in _pv_pg_bindir _pv_pg_as _pv_rmq_sbin _pv_rmq_epmd _pv_amqp_probe _pv_cosmos_dir \
	_pv_srv_alive _pv_srv_kill_group _pv_srv_port_busy _pv_srv_pick_port; do
	if ! declare -F "$_pvl_f" >/dev/null; then
		echo "local-stack: tests/servers/servers.sh no longer defines $_pvl_f" >&2
		return 1
	fi
done
unset _pvl_f

declare -gA PVL_PID=()
PVL_ORDER=()
PVL_VAR=
# Set by the starts, for the caller.
export PVL_PG_CONNINFO PVL_AMQP_PORT PVL_COSMOS_URL
: "${PVL_TIMEOUT:=120}"

pvl_say()
{
	printf '[run-local] %s\n' "$*"
}

_pvl_fail()
{
	local msg=$1 log
	shift
	pvl_say "error: $msg" >&2
	for log in "$@"; do
		[[ -f $log ]] || continue
		printf '[run-local] --- last lines of %s ---\n' "$log" >&2
		tail -n 25 "$log" | sed 's/^/  | /' >&2
	done
	return 1
}

# pvl_init VAR: the data folder (created), its logs/ and run/ folders.
pvl_init()
{
	PVL_VAR=$1
	mkdir -p "$PVL_VAR/logs" "$PVL_VAR/run" || return 1
	PVL_VAR=$(cd "$PVL_VAR" && pwd)
}

# pvl_sweep: ends the services a killed run left running (their pid files remain), checking
# that each pid still runs the program it was recorded for.
pvl_sweep()
{
	local f pid name comm
	for f in "$PVL_VAR"/run/*.pid; do
		[[ -f $f ]] || continue
		read -r pid name <"$f"
		rm -f "$f"
		[[ $pid =~ ^[0-9]+$ ]] || continue
		_pv_srv_alive "$pid" || continue
		comm=$(cat "/proc/$pid/comm" 2>/dev/null)
		[[ -n $comm && $comm == "$name" ]] || continue
		pvl_say "ending $name (pid $pid), left running by a run that was killed"
		_pv_srv_kill_group "$pid" 20
	done
	# The Erlang VM names its HOME on its command line; it may have escaped its group.
	pkill -KILL -f -- "-home $PVL_VAR/rabbitmq/home " 2>/dev/null
	return 0
}

# True when something listens on 127.0.0.1:PORT (or on every address).  Only listeners count:
# the connections of a previous run linger in TIME_WAIT on its ports, and the servers bind with
# SO_REUSEADDR, so a quick restart keeps its ports.
_pvl_port_listening()
{
	[[ -n $(ss -Htln "( sport = :$1 )" 2>/dev/null) ]]
}

# pvl_port VAR DEFAULT [strict]: DEFAULT when nothing listens on it, else a free port.  strict:
# no socket at all may use DEFAULT, for servers that bind without SO_REUSEADDR (Erlang's
# distribution port).
pvl_port()
{
	local var=$1 port=$2 busy=_pvl_port_listening
	[[ ${3:-} == strict ]] && busy=_pv_srv_port_busy
	if [[ " ${_pv_srv_taken[*]} " != *" $port "* ]] && ! "$busy" "$port"; then
		_pv_srv_taken+=("$port")
		printf -v "$var" '%s' "$port"
		return 0
	fi
	_pv_srv_pick_port "$var" || return 1
	pvl_say "port $port is taken; using ${!var} instead"
}

# pvl_prefix NAME: copies standard input to VAR/logs/NAME.log and, each line prefixed with
# "[NAME] ", to standard output, line by line (tee writes what it reads at once; sed -u too,
# where Debian's awk, mawk, would hold lines back in its input buffer).
pvl_prefix()
{
	tee -a "$PVL_VAR/logs/$1.log" | sed -u "s/^/[$1] /"
}

# pvl_spawn NAME CMD [ARG...]: CMD in a session of its own, its output prefixed with [NAME] and
# copied to VAR/logs/NAME.log.  Sets PVL_PID[NAME]; stops come in reverse order of spawns.  The
# filter ignores INT, TERM and HUP, which a terminal or a kill of run-local's process group
# sends it too: it ends when the service closes its output, so a service never writes into a
# broken pipe while it stops.
pvl_spawn()
{
	_pvl_launch "$@"
	PVL_ORDER+=("$1")
}

# _pvl_launch NAME CMD [ARG...]: pvl_spawn, but NAME keeps its place in the order of stops.
_pvl_launch()
{
	local name=$1 log pid
	shift
	log=$PVL_VAR/logs/$name.log
	printf '==== %s: %s\n' "$(date -u +%FT%TZ)" "$*" >>"$log"
	setsid "$@" 9>&- </dev/null > >(
		trap '' INT TERM HUP
		pvl_prefix "$name"
	) 2>&1 &
	pid=$!
	PVL_PID[$name]=$pid
	echo "$pid" >"$PVL_VAR/run/$name.pid"
}

# pvl_record NAME: adds to NAME's pid file the program name /proc shows, once the service
# answered (setsid, setpriv and env have executed it by then), for pvl_sweep.
pvl_record()
{
	local pid=${PVL_PID[$1]} comm
	comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 0
	echo "$pid $comm" >"$PVL_VAR/run/$1.pid"
}

# pvl_alive_all: prints the name of the first spawned service that is gone; false if none is.
pvl_alive_all()
{
	local name
	for name in "${PVL_ORDER[@]}"; do
		if ! _pv_srv_alive "${PVL_PID[$name]}"; then
			printf '%s' "$name"
			return 0
		fi
	done
	return 1
}

# ---------------------------------------------------------------------------------------------
# Supervision, as systemd's Restart=on-failure with a start limit would do it: a service spawned
# with pvl_spawn_supervised that exits is started again by pvl_supervise (which the caller runs
# about once a second), after a delay that doubles with each restart (1 s, 2 s, 4 s... at most
# PVL_RESTART_DELAY_MAX), each step said on standard output.  A service that exits more than
# PVL_RESTART_BURST times within PVL_RESTART_INTERVAL seconds is left stopped (StartLimitBurst)
# and said so on standard error; the others keep running.  Servers are spawned with pvl_spawn
# and not supervised: pvl_alive_unsupervised names one that is gone.

declare -gA PVL_CMD=() _pvl_deaths=() _pvl_restart_at=() _pvl_recorded=()
declare -gA PVL_FAILED=()
: "${PVL_RESTART_BURST:=5}" "${PVL_RESTART_INTERVAL:=120}" "${PVL_RESTART_DELAY_MAX:=30}"

# pvl_spawn_supervised NAME CMD [ARG...]: pvl_spawn, and NAME started again when it exits.
pvl_spawn_supervised()
{
	local name=$1
	shift
	PVL_CMD[$name]=$(printf '%q ' "$@")
	pvl_spawn "$name" "$@"
}

# _pvl_exit_words STATUS: how a process with that wait status ended, in words.
_pvl_exit_words()
{
	local st=$1 sig
	if ((st > 128)); then
		sig=$(kill -l $((st - 128)) 2>/dev/null)
		printf 'was killed by SIG%s' "${sig:-$((st - 128))}"
	else
		printf 'exited with status %s' "$st"
	fi
}

# pvl_supervise: one look at the supervised services: restarts those whose delay has passed,
# schedules those that exited (or gives up on them), records the program of those that run.
pvl_supervise()
{
	local name pid st t deaths n delay
	for name in "${!PVL_CMD[@]}"; do
		[[ -n ${PVL_FAILED[$name]:-} ]] && continue
		pid=${PVL_PID[$name]}
		if [[ -n ${_pvl_restart_at[$name]:-} ]]; then
			((SECONDS >= _pvl_restart_at[$name])) || continue
			unset "_pvl_restart_at[$name]"
			eval "_pvl_launch \"\$name\" ${PVL_CMD[$name]}"
			pvl_say "$name started again (pid ${PVL_PID[$name]})"
			continue
		fi
		if _pv_srv_alive "$pid"; then
			if [[ ${_pvl_recorded[$name]:-} != "$pid" ]]; then
				pvl_record "$name"
				_pvl_recorded[$name]=$pid
			fi
			continue
		fi
		wait "$pid" 2>/dev/null
		st=$?
		deaths=
		for t in ${_pvl_deaths[$name]:-}; do
			((SECONDS - t < PVL_RESTART_INTERVAL)) && deaths+="$t "
		done
		deaths+="$SECONDS"
		_pvl_deaths[$name]=$deaths
		n=$(wc -w <<<"$deaths")
		if ((n > PVL_RESTART_BURST)); then
			PVL_FAILED[$name]=1
			rm -f "$PVL_VAR/run/$name.pid"
			pvl_say "error: $name $(_pvl_exit_words "$st"), its exit number $n within" \
				"${PVL_RESTART_INTERVAL}s: not starting it again (the other services keep" \
				"running; see $PVL_VAR/logs/$name.log, fix it and start run-local again)" >&2
			continue
		fi
		delay=$((1 << (n - 1)))
		((delay > PVL_RESTART_DELAY_MAX)) && delay=$PVL_RESTART_DELAY_MAX
		_pvl_restart_at[$name]=$((SECONDS + delay))
		pvl_say "$name (pid $pid) $(_pvl_exit_words "$st"); starting it again in ${delay}s" \
			"(restart $n of at most $PVL_RESTART_BURST within ${PVL_RESTART_INTERVAL}s)"
	done
}

# pvl_alive_unsupervised: prints the name of the first spawned, unsupervised service that is
# gone; false if none is.
pvl_alive_unsupervised()
{
	local name
	for name in "${PVL_ORDER[@]}"; do
		[[ -n ${PVL_CMD[$name]:-} ]] && continue
		if ! _pv_srv_alive "${PVL_PID[$name]}"; then
			printf '%s' "$name"
			return 0
		fi
	done
	return 1
}

# The stop of each service: a signal, a grace period, then KILL for the whole group.
_pvl_stop_one()
{
	local name=$1 pid=${PVL_PID[$1]}
	case $name in
	postgres)
		# SIGINT: fast shutdown (sessions cut, a checkpoint written).
		if _pv_srv_alive "$pid"; then
			kill -INT "$pid" 2>/dev/null
			local deadline=$((SECONDS + 30))
			while _pv_srv_alive "$pid" && ((SECONDS < deadline)); do
				sleep 0.1
			done
		fi
		_pv_srv_kill_group "$pid" 5
		;;
	rabbitmq)
		# The server script turns TERM into an orderly stop of the broker.
		_pv_srv_kill_group "$pid" 30
		pkill -KILL -f -- "-home $PVL_VAR/rabbitmq/home " 2>/dev/null
		;;
	*) _pv_srv_kill_group "$pid" 15 ;;
	esac
	wait "$pid" 2>/dev/null
	rm -f "$PVL_VAR/run/$name.pid"
}

# pvl_stop_all: every service, last started first.
pvl_stop_all()
{
	local i name
	for ((i = ${#PVL_ORDER[@]} - 1; i >= 0; i--)); do
		name=${PVL_ORDER[i]}
		_pv_srv_alive "${PVL_PID[$name]}" && pvl_say "stopping $name"
		_pvl_stop_one "$name"
	done
	PVL_ORDER=()
}

# pvl_service_wait NAME SECONDS CMD...: until CMD succeeds; false (with the log's tail) when NAME
# exits or the time is up.
pvl_service_wait()
{
	local name=$1 deadline=$((SECONDS + $2))
	shift 2
	until "$@" >/dev/null 2>&1; do
		if ! _pv_srv_alive "${PVL_PID[$name]}"; then
			_pvl_fail "$name exited while starting" "$PVL_VAR/logs/$name.log"
			return 1
		fi
		if ((SECONDS >= deadline)); then
			_pvl_fail "$name did not answer within $(($2))s" "$PVL_VAR/logs/$name.log"
			return 1
		fi
		sleep 0.2
	done
	pvl_record "$name"
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL: VAR/postgres/data, made by initdb once.  As root the server runs as the postgres
# user, which must be able to reach the folder.

# Gives other users search (x, not read) permission on the folders above DIR that the postgres
# user cannot enter, so a checkout under /root works; says what it changed.
_pvl_pg_reach()
{
	local dir=$1 path="" part
	((EUID == 0)) || return 0
	runuser -u postgres -- test -x "$dir" 2>/dev/null && return 0
	local IFS=/
	for part in $dir; do
		[[ -n $part ]] || continue
		path=$path/$part
		if ! runuser -u postgres -- test -x "$path" 2>/dev/null; then
			chmod o+x "$path" || return 1
			pvl_say "gave other users search permission (o+x) on $path so the postgres user reaches $dir"
		fi
	done
}

pvl_sql()
{
	PGCONNECT_TIMEOUT=5 "$PVL_PG_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 \
		"host=127.0.0.1 port=$PVL_PG_PORT dbname=${2:-photovote} user=photovote" -c "$1"
}

# pvl_postgres_start DEFAULT_PORT: initdb the first time, then starts the server (without
# waiting: see pvl_postgres_ready); sets PVL_PG_PORT, PVL_PG_CONNINFO.
pvl_postgres_start()
{
	local d=$PVL_VAR/postgres as=()
	PVL_PG_BINDIR=$(_pv_pg_bindir) ||
		_pvl_fail "no PostgreSQL server binaries (is the postgresql package installed?)" ||
		return 1
	mkdir -p "$d" && chmod 700 "$d" || return 1
	if ((EUID == 0)); then
		chown postgres: "$d" || return 1
		_pvl_pg_reach "$d" || _pvl_fail "the postgres user cannot reach $d" || return 1
		as=(setpriv --reuid=postgres --regid=postgres --init-groups --)
	fi
	if [[ ! -f $d/data/PG_VERSION ]]; then
		rm -rf "$d/data"
		pvl_say "postgres: creating the database cluster in $d/data"
		if ! (cd "$d" && _pv_pg_as "$PVL_PG_BINDIR/initdb" -D "$d/data" -U photovote \
			-A trust -E UTF8 --locale=C.UTF-8 --no-instructions) >"$d/initdb.log" 2>&1; then
			_pvl_fail "initdb failed" "$d/initdb.log"
			return 1
		fi
		# Loopback only; the port comes on the command line, since it may change per run.
		cat >>"$d/data/postgresql.conf" <<-EOF
			listen_addresses = '127.0.0.1'
			unix_socket_directories = '$d'
		EOF
	fi
	pvl_port PVL_PG_PORT "$1" || return 1
	pvl_spawn postgres "${as[@]}" "$PVL_PG_BINDIR/postgres" -D "$d/data" -p "$PVL_PG_PORT" \
		-c logging_collector=off
	PVL_PG_CONNINFO="host=127.0.0.1 port=$PVL_PG_PORT dbname=photovote user=photovote"
}

# pvl_postgres_ready: waits for the server; creates the database photovote the first time.
pvl_postgres_ready()
{
	pvl_service_wait postgres "$PVL_TIMEOUT" pvl_sql 'select 1' postgres || return 1
	if [[ -z $(pvl_sql "select 1 from pg_database where datname = 'photovote'" postgres) ]]; then
		pvl_sql 'create database photovote' postgres ||
			_pvl_fail "cannot create the database photovote" || return 1
	fi
}

# ---------------------------------------------------------------------------------------------
# RabbitMQ: a node named photovote@localhost with its own epmd, its data in VAR/rabbitmq/mnesia
# (durable queues and persistent messages survive a restart).  Run as the current user through
# the scripts in /usr/lib/rabbitmq/bin, as tests/servers/servers.sh does.

_pvl_rmq_env()
{
	local d=$PVL_VAR/rabbitmq
	_pvl_rmq_envv=(
		HOME="$d/home"
		RABBITMQ_CONF_ENV_FILE=/dev/null
		RABBITMQ_NODENAME="$PVL_AMQP_NODE"
		RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
		RABBITMQ_NODE_PORT="$PVL_AMQP_PORT"
		RABBITMQ_DIST_PORT="$_pvl_dist_port"
		ERL_EPMD_PORT="$_pvl_epmd_port"
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

pvl_rabbitmqctl()
{
	_pvl_rmq_env
	env "${_pvl_rmq_envv[@]}" timeout "$PVL_TIMEOUT" "$_pvl_rmq_sbin/rabbitmqctl" \
		-n "$PVL_AMQP_NODE" "$@"
}

# pvl_rabbitmq_start AMQP_PORT EPMD_PORT DIST_PORT (defaults): starts epmd and the node (without
# waiting for the node: see pvl_rabbitmq_ready); sets PVL_AMQP_PORT, PVL_AMQP_NODE.
pvl_rabbitmq_start()
{
	local d=$PVL_VAR/rabbitmq epmd
	_pvl_rmq_sbin=$(_pv_rmq_sbin) ||
		_pvl_fail "no RabbitMQ scripts (is the rabbitmq-server package installed?)" || return 1
	epmd=$(_pv_rmq_epmd) || _pvl_fail "no epmd found (erlang)" || return 1
	mkdir -p "$d/home" "$d/mnesia" "$d/log" && chmod 700 "$d" || return 1
	if [[ ! -s $d/home/.erlang.cookie ]]; then
		(umask 077 && od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$d/home/.erlang.cookie")
		chmod 400 "$d/home/.erlang.cookie"
	fi
	# The consistent-hash exchange is part of the architecture.  Erlang terms rather than
	# rabbitmq.conf (which stays absent, so /etc's is not read either): faster to start.  The
	# console shows warnings and errors; the full log is in VAR/rabbitmq/log.
	printf '[rabbitmq_consistent_hash_exchange].\n' >"$d/enabled_plugins"
	cat >"$d/advanced.config" <<-EOF
		[{rabbit, [{disk_free_limit, 50000000},
		           {log, [{console, [{enabled, true}, {level, warning}]},
		                  {file, [{level, info}]}]}]}].
	EOF
	PVL_AMQP_NODE=photovote@localhost
	pvl_port PVL_AMQP_PORT "$1" || return 1
	pvl_port _pvl_epmd_port "$2" strict || return 1
	pvl_port _pvl_dist_port "$3" strict || return 1
	pvl_spawn epmd "$epmd" -port "$_pvl_epmd_port" -address 127.0.0.1
	pvl_service_wait epmd 10 "$epmd" -port "$_pvl_epmd_port" -names || return 1
	_pvl_rmq_env
	_pvl_rmq_log=$d/log/$PVL_AMQP_NODE.log
	_pvl_rmq_log_from=$(($(stat -c %s "$_pvl_rmq_log" 2>/dev/null || echo 0) + 1))
	pvl_spawn rabbitmq env "${_pvl_rmq_envv[@]}" "$_pvl_rmq_sbin/rabbitmq-server"
}

# The node has booted: it says so in its log (written since this start), and answers AMQP.
# Cheaper than `rabbitmqctl await_startup`, which boots an Erlang VM of its own for seconds.
_pvl_rmq_booted()
{
	tail -c "+$_pvl_rmq_log_from" "$_pvl_rmq_log" 2>/dev/null |
		grep -q 'Server startup complete' && _pv_amqp_probe "$PVL_AMQP_PORT"
}

# pvl_rabbitmq_ready: waits for the broker to finish booting.
pvl_rabbitmq_ready()
{
	pvl_service_wait rabbitmq "$PVL_TIMEOUT" _pvl_rmq_booted
}

# ---------------------------------------------------------------------------------------------
# The Cosmos DB stand-in (@vercel/cosmosdb-server): in memory, empty at each start.

# pvl_cosmos_start DEFAULT_PORT: starts the stand-in (pvl_cosmos_ready waits for it); sets
# PVL_COSMOS_URL.
pvl_cosmos_start()
{
	local cdir
	command -v node >/dev/null 2>&1 || _pvl_fail "node is not installed" || return 1
	cdir=$(_pv_cosmos_dir) ||
		_pvl_fail "the Cosmos DB stand-in is not installed (npm ci in tests/cosmos failed)" ||
		return 1
	pvl_port PVL_COSMOS_PORT "$1" || return 1
	mkdir -p "$PVL_VAR/cosmos"
	pvl_spawn cosmos node "$cdir/node_modules/@vercel/cosmosdb-server/lib/cli.js" \
		--host 127.0.0.1 -p "$PVL_COSMOS_PORT" --no-ssl
	PVL_COSMOS_URL=http://127.0.0.1:$PVL_COSMOS_PORT
}

pvl_cosmos_ready()
{
	pvl_service_wait cosmos "$PVL_TIMEOUT" curl -sf --max-time 3 -o /dev/null "$PVL_COSMOS_URL/"
}
