#!/bin/bash
# TAP test of servers.sh and with-servers: each kind of server starts privately (whatever the
# run exported), answers on 127.0.0.1 only, survives a stop and start on the same port with its
# data, and leaves no process or folder behind.  Also the sharing rules (a shared server is
# reused and cannot be stopped), the exit-trap chain and with-servers' exit status and signals.
set -u

here=$(cd "$(dirname "$0")" && pwd)
# Private servers only; the install location of the Cosmos stand-in is kept.
unset PV_TEST_PG_CONNINFO PV_TEST_PG_PORT PV_TEST_AMQP_URL PV_TEST_AMQP_PORT \
	PV_TEST_AMQP_NODE PV_TEST_AMQP_EPMD_PORT PV_TEST_AMQP_HOME PV_TEST_COSMOS_URL \
	PV_TEST_COSMOS_TLS_URL PV_TEST_COSMOS_CA
# shellcheck source=tests/servers/servers.sh
source "$here/servers.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/pv-test-servers.XXXXXX") || exit 1
pv_on_exit 'rm -rf "$work"'

n=0
ok()
{
	local name=$1
	shift
	n=$((n + 1))
	if "$@"; then
		echo "ok $n - $name"
	else
		echo "not ok $n - $name"
	fi
}

skip()
{
	n=$((n + 1))
	echo "ok $n - $1 # SKIP $2"
}

diag()
{
	printf '# %s\n' "$@"
}

# Every socket listening on PORT is bound to a loopback address, and there is at least one.
loopback_only()
{
	local lines
	lines=$(ss -Htln "( sport = :$1 )" | awk '{print $4}')
	[[ -n $lines ]] || return 1
	! grep -qv -e '^127\.0\.0\.1:' -e '^\[::1\]:' <<<"$lines"
}

port_closed()
{
	[[ ${1:-} =~ ^[0-9]+$ && -z $(ss -Htln "( sport = :$1 )") ]]
}

# Runs a command without the servers this test exported, as a fresh run would.  A command and
# not a function, so that `$!` of a background use is the process itself.
fresh=(env -u PV_TEST_PG_CONNINFO -u PV_TEST_PG_PORT -u PV_TEST_AMQP_URL -u PV_TEST_AMQP_PORT
	-u PV_TEST_AMQP_NODE -u PV_TEST_AMQP_EPMD_PORT -u PV_TEST_AMQP_HOME
	-u PV_TEST_COSMOS_URL -u PV_TEST_COSMOS_TLS_URL -u PV_TEST_COSMOS_CA)

sql()
{
	PGCONNECT_TIMEOUT=5 "$PV_TEST_PG_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 \
		"$PV_TEST_PG_CONNINFO" -c "$1"
}

http_code()
{
	curl -s --max-time 10 -o /dev/null -w '%{http_code}' "$@"
}

have_amqp_tools()
{
	command -v amqp-publish >/dev/null && command -v amqp-get >/dev/null &&
		command -v amqp-declare-queue >/dev/null
}

amqp_get()
{
	timeout 20 amqp-get -u "$PV_TEST_AMQP_URL" -q "$1" 2>/dev/null
}

queue_depth()
{
	pv_rabbitmq_cli rabbitmqctl -q list_queues name messages 2>/dev/null |
		awk -v q="$1" '$1 == q {print $2}'
}

# --- PostgreSQL -------------------------------------------------------------------------------

ok "postgres: private server starts" pv_servers_need_private postgres
pg_port=${PV_TEST_PG_PORT:-none}
diag "postgres on $pg_port: ${PV_TEST_PG_CONNINFO:-}"
ok "postgres: conninfo names 127.0.0.1, the port, database and user photovote" \
	test "${PV_TEST_PG_CONNINFO:-}" = \
	"host=127.0.0.1 port=$pg_port dbname=photovote user=photovote"
ok "postgres: listens on loopback only" loopback_only "$pg_port"
ok "postgres: create table, insert, select" \
	test "$(sql 'create table t (v text); insert into t values ($$kept$$); select v from t' 2>&1)" = kept
ok "postgres: the role may create databases" \
	eval 'sql "create database pv_scratch" && sql "drop database pv_scratch"'

# --- RabbitMQ ---------------------------------------------------------------------------------

ok "rabbitmq: private node starts" pv_servers_need_private rabbitmq
amqp_port=${PV_TEST_AMQP_PORT:-none}
diag "rabbitmq on $amqp_port: ${PV_TEST_AMQP_URL:-} node ${PV_TEST_AMQP_NODE:-}"
ok "rabbitmq: AMQP URL names guest, 127.0.0.1, the port and vhost /" \
	test "${PV_TEST_AMQP_URL:-}" = "amqp://guest:guest@127.0.0.1:$amqp_port/%2f"
ok "rabbitmq: AMQP port listens on loopback only" loopback_only "$amqp_port"
ok "rabbitmq: private epmd listens on loopback only" loopback_only "${PV_TEST_AMQP_EPMD_PORT:-0}"
ok "rabbitmq: consistent-hash exchange type registered" \
	test "$(pv_rabbitmq_cli rabbitmqctl -q eval \
		"rabbit_registry:lookup_module(exchange, 'x-consistent-hash')." 2>&1)" = \
	"{ok,rabbit_exchange_type_consistent_hash}"
if have_amqp_tools; then
	ok "rabbitmq: declare a durable queue" \
		eval 'timeout 20 amqp-declare-queue -u "$PV_TEST_AMQP_URL" -q pv-servers-test -d >/dev/null'
	ok "rabbitmq: publish persistent messages" \
		timeout 20 amqp-publish -u "$PV_TEST_AMQP_URL" -r pv-servers-test -p -b first
	timeout 20 amqp-publish -u "$PV_TEST_AMQP_URL" -r pv-servers-test -p -b second
	ok "rabbitmq: rabbitmqctl on the private node sees 2 messages" \
		test "$(queue_depth pv-servers-test)" = 2
	ok "rabbitmq: get the first message back" test "$(amqp_get pv-servers-test)" = first
else
	for t in "declare a durable queue" "publish persistent messages" \
		"rabbitmqctl on the private node sees 2 messages" "get the first message back"; do
		skip "rabbitmq: $t" "amqp-tools is not installed"
	done
fi

# --- Cosmos stand-in --------------------------------------------------------------------------

ok "cosmos: private HTTP stand-in starts" pv_servers_need_private cosmos
ok "cosmos-tls: private HTTPS stand-in starts" pv_servers_need_private cosmos-tls
cosmos_port=${PV_TEST_COSMOS_URL##*:}
tls_port=${PV_TEST_COSMOS_TLS_URL##*:}
diag "cosmos ${PV_TEST_COSMOS_URL:-}, cosmos-tls ${PV_TEST_COSMOS_TLS_URL:-} (CA ${PV_TEST_COSMOS_CA:-})"
ok "cosmos: URLs are http://127.0.0.1:N and https://127.0.0.1:N" \
	test "${PV_TEST_COSMOS_URL:-}" = "http://127.0.0.1:$cosmos_port" -a \
	"${PV_TEST_COSMOS_TLS_URL:-}" = "https://127.0.0.1:$tls_port"
ok "cosmos: both listen on loopback only" \
	eval 'loopback_only "$cosmos_port" && loopback_only "$tls_port"'
ok "cosmos: create a database over HTTP (201)" \
	test "$(http_code -X POST -H 'Content-Type: application/json' -d '{"id":"pvhttp"}' \
		"$PV_TEST_COSMOS_URL/dbs")" = 201
ok "cosmos: read it back over HTTP (200)" \
	test "$(http_code "$PV_TEST_COSMOS_URL/dbs/pvhttp")" = 200
ok "cosmos-tls: create a database over HTTPS verified with the CA (201)" \
	test "$(http_code --cacert "$PV_TEST_COSMOS_CA" -X POST -H 'Content-Type: application/json' \
		-d '{"id":"pvtls"}' "$PV_TEST_COSMOS_TLS_URL/dbs")" = 201
ok "cosmos-tls: the certificate also verifies for localhost" \
	test "$(http_code --cacert "$PV_TEST_COSMOS_CA" "https://localhost:$tls_port/dbs/pvtls")" = 200
ok "cosmos-tls: without the CA the certificate is refused" \
	eval '! curl -s --max-time 10 -o /dev/null "$PV_TEST_COSMOS_TLS_URL/"'
# The service keeps a client's connection open between requests; the stand-in's default closes
# each one (a TCP connection per request), so the launchers ask it not to.
reuses_connection()
{
	local out
	out=$(curl -sv --max-time 10 "$@" -o /dev/null -o /dev/null 2>&1) || return 1
	grep -qi '^< connection: keep-alive' <<<"$out" && grep -qi 'Re-using existing connection' <<<"$out"
}
ok "cosmos: two requests go over one connection (keep-alive)" \
	reuses_connection "$PV_TEST_COSMOS_URL/dbs/pvhttp" "$PV_TEST_COSMOS_URL/dbs/pvhttp"
ok "cosmos-tls: two requests go over one connection (keep-alive)" \
	reuses_connection --cacert "$PV_TEST_COSMOS_CA" "$PV_TEST_COSMOS_TLS_URL/dbs/pvtls" \
	"$PV_TEST_COSMOS_TLS_URL/dbs/pvtls"

# --- Stop and start on the same port ----------------------------------------------------------

ok "postgres: stops" pv_server_stop postgres
ok "postgres: down means down" eval '! sql "select 1" >/dev/null 2>&1'
ok "postgres: starts again" pv_server_start postgres
ok "postgres: same port, data kept" \
	eval 'test "$PV_TEST_PG_PORT" = "$pg_port" && test "$(sql "select v from t")" = kept'

ok "rabbitmq: stops" pv_server_stop rabbitmq
ok "rabbitmq: AMQP port closed while down" port_closed "$amqp_port"
ok "rabbitmq: starts again" pv_server_start rabbitmq
ok "rabbitmq: same port" test "${PV_TEST_AMQP_PORT:-}" = "$amqp_port"
if have_amqp_tools; then
	ok "rabbitmq: the persistent message survived the restart" \
		test "$(amqp_get pv-servers-test)" = second
else
	skip "rabbitmq: the persistent message survived the restart" "amqp-tools is not installed"
fi

ok "cosmos: stops" pv_server_stop cosmos
ok "cosmos: port closed while down" port_closed "$cosmos_port"
ok "cosmos: starts again on the same port" \
	eval 'pv_server_start cosmos && test "$PV_TEST_COSMOS_URL" = "http://127.0.0.1:$cosmos_port"'
ok "cosmos: answers again (its data lived in memory)" \
	test "$(http_code "$PV_TEST_COSMOS_URL/")" = 200

# --- Sharing and exit rules -------------------------------------------------------------------

# A child script inherits the variables: it reuses the servers and may not stop them.
child_out=$(bash -c 'source "$1/servers.sh" && pv_servers_need postgres cosmos &&
	echo "$PV_TEST_PG_PORT ${PV_TEST_COSMOS_URL##*:}" && ! pv_server_stop postgres' _ "$here" 2>/dev/null)
ok "shared: a child reuses the run's servers and cannot stop them" \
	test "$child_out" = "$pg_port $cosmos_port"
ok "shared: the servers still answer after the child exits" \
	eval 'test "$(sql "select v from t")" = kept && test "$(http_code "$PV_TEST_COSMOS_URL/")" = 200'

# A child's private server, its cleanups, an EXIT trap set before sourcing, and its status.
bash -c 'trap "echo prior >>\"$2/order\"" EXIT
	source "$1/servers.sh"
	pv_on_exit "echo first >>\"$2/order\""
	pv_on_exit "echo second >>\"$2/order\""
	pv_servers_need_private cosmos || exit 1
	echo "${PV_TEST_COSMOS_URL##*:} $(pv_server_pid cosmos) $(pv_server_dir cosmos)" >"$2/child"
	exit 7' _ "$here" "$work" 2>/dev/null
child_status=$?
read -r c_port c_pid c_dir <"$work/child" 2>/dev/null
ok "exit: the script's exit status is kept" test "$child_status" = 7
ok "exit: cleanups run last-added first, then the earlier EXIT trap" \
	test "$(cat "$work/order" 2>/dev/null | tr '\n' ' ')" = "second first prior "
ok "exit: a child's private server is stopped and its folder removed" \
	eval 'test -n "${c_port:-}" && port_closed "$c_port" && ! _pv_srv_alive "$c_pid" &&
		test ! -e "$c_dir"'

# A script killed with KILL runs no exit trap: the watchdog ends its servers within seconds.
# (Its orphaned server may linger as a zombie until init reaps it: _pv_srv_alive says gone.)
# The subshell keeps bash's "Killed" report out of the log.
(bash -c 'source "$1/servers.sh"
	pv_servers_need_private cosmos || exit 1
	echo "${PV_TEST_COSMOS_URL##*:} $(pv_server_pid cosmos) $(pv_server_dir cosmos)" >"$2/killed"
	kill -KILL $$' _ "$here" "$work"
	true) 2>/dev/null
read -r k_port k_pid k_dir <"$work/killed" 2>/dev/null
for ((i = 0; i < 100; i++)); do
	[[ -n ${k_dir:-} && ! -e ${k_dir%/*} ]] && break
	sleep 0.1
done
ok "watchdog: a killed script's server is stopped and its folder removed" \
	eval 'test -n "${k_port:-}" && port_closed "$k_port" && ! _pv_srv_alive "$k_pid" &&
		test ! -e "${k_dir%/*}"'

# A server that cannot start: the start fails in bounded time and shows the server's output.
mkdir -p "$work/broken/node_modules/@vercel/cosmosdb-server/lib"
# (cli.js marks the folder as an installed stand-in; index.js is what cosmos-server.js loads.)
echo 'console.error("pv-broken-standin: refusing to start"); process.exit(1);' |
	tee "$work/broken/node_modules/@vercel/cosmosdb-server/lib/cli.js" \
		>"$work/broken/node_modules/@vercel/cosmosdb-server/index.js"
broken_err=$(PV_TEST_COSMOS_DIR=$work/broken PV_TEST_SERVER_TIMEOUT=20 bash -c \
	'source "$1/servers.sh"; pv_servers_need_private cosmos && echo STARTED' _ "$here" 2>&1)
ok "failure: a server that exits at once fails the start and its log is shown" \
	eval '[[ $broken_err != *STARTED* && $broken_err == *"pv-broken-standin: refusing to start"* ]]'

# --- with-servers -----------------------------------------------------------------------------

ws_out=$("${fresh[@]}" "$here/with-servers" cosmos -- sh -c 'echo "$PV_TEST_COSMOS_URL"; exit 3' \
	2>"$work/ws.err")
ws_status=$?
diag "with-servers exited $ws_status, printed $ws_out"
[[ $ws_status == 3 ]] || diag "$(cat "$work/ws.err")"
ok "with-servers: runs the command with its own server's variables and returns its status" \
	eval '[[ $ws_status == 3 && $ws_out == http://127.0.0.1:* && ${ws_out##*:} != "$cosmos_port" ]]'
ok "with-servers: the servers are gone afterwards" port_closed "${ws_out##*:}"

"${fresh[@]}" "$here/with-servers" cosmos -- sh -c 'echo "$PV_TEST_COSMOS_URL" >"$1/ws-url"; exec sleep 120' \
	_ "$work" 2>/dev/null &
ws_pid=$!
for ((i = 0; i < 300; i++)); do
	[[ -s $work/ws-url ]] && break
	sleep 0.1
done
ws_url=$(cat "$work/ws-url" 2>/dev/null)
ok "with-servers: the server answers while the command runs" \
	test "$(http_code "${ws_url:-http://127.0.0.1:1}/")" = 200
kill -TERM "$ws_pid" 2>/dev/null
ws_deadline=$((SECONDS + 40))
while kill -0 "$ws_pid" 2>/dev/null && ((SECONDS < ws_deadline)); do
	sleep 0.1
done
kill -KILL "$ws_pid" 2>/dev/null
wait "$ws_pid"
ws_status=$?
ok "with-servers: TERM ends the command and exits 143" test "$ws_status" = 143
ok "with-servers: after TERM the server is gone" port_closed "${ws_url##*:}"
"$here/with-servers" cosmos 2>/dev/null
ok "with-servers: a usage error exits 2" test $? = 2

# --- Stop everything --------------------------------------------------------------------------

root=$_pv_srv_root
epmd_port=${PV_TEST_AMQP_EPMD_PORT:-0}
ok "stop_all: every server stops" pv_servers_stop_all
ok "stop_all: no process mentions the private folder" eval '! pgrep -f -- "$root" >/dev/null'
ok "stop_all: no epmd left on the private port" eval '! pgrep -f -- "epmd -port $epmd_port " >/dev/null'
ok "stop_all: every port is closed" eval 'port_closed "$pg_port" && port_closed "$amqp_port" &&
	port_closed "$epmd_port" && port_closed "$cosmos_port" && port_closed "$tls_port"'
ok "stop_all: the temporary folder is removed" test ! -e "$root"
ok "stop_all: the variables are gone" \
	test -z "${PV_TEST_PG_CONNINFO:-}${PV_TEST_AMQP_URL:-}${PV_TEST_COSMOS_URL:-}${PV_TEST_COSMOS_TLS_URL:-}"

echo "1..$n"
