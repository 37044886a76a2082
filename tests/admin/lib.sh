# shellcheck shell=bash
# Shared by the photovote-admin tests: the projector tests' set-up (servers, a private
# database migrated, a private Cosmos DB database, the event store of PVADM_BACKEND: postgres
# or esdb, the EventStoreDB stand-in) plus RabbitMQ with private names, and the appender and
# projector tools to seed the pipeline.  Source after setting top_srcdir/top_builddir.

: "${top_srcdir:?}" "${top_builddir:?}"
PVP_BACKEND=${PVADM_BACKEND:-postgres}
# shellcheck source=../projector/lib.sh
. "$top_srcdir/tests/projector/lib.sh"

adm=$top_builddir/admin/photovote-admin
adm_appender=$top_builddir/workers/photovote-appender
adm_pub=$top_builddir/tests/appender/pv-appender-tool
APPENDER_PID=

# adm_setup NAME: everything above; the work folder is $pvp_work.
adm_setup()
{
	local name=$1
	pvp_setup "adm$name" || return 1
	pv_servers_need rabbitmq || return 1
	export PHOTOVOTE_AMQP_HOST=127.0.0.1 PHOTOVOTE_AMQP_PORT=$PV_TEST_AMQP_PORT
	export PHOTOVOTE_AMQP_USER=guest PHOTOVOTE_AMQP_PASSWORD=guest PHOTOVOTE_AMQP_VHOST=/
	export PHOTOVOTE_AMQP_EXCHANGE=pvadm.$name.$$.events
	export PHOTOVOTE_AMQP_QUEUE=pvadm.$name.$$.appender
	export PHOTOVOTE_AMQP_DEAD_LETTER_EXCHANGE=pvadm.$name.$$.dead
	export PHOTOVOTE_AMQP_DEAD_LETTER_QUEUE=pvadm.$name.$$.dead
	pv_on_exit adm_stop_appender
}

# The seed of the subcommand and console tests: election $adm_e1 with three events whose data
# holds control characters, keys in the order PostgreSQL's jsonb keeps them (shorter first) so
# that both backends give back the same text.  adm_seed FILE writes them as envelopes for
# pv-projector-tool append; $adm_meta is their metadata.
adm_e1=01ARZ3NDEKTSV4RRFFQ69G5FAV
adm_c1=01BX5ZZKBKACTAV9WEVGEMMVS0
adm_meta='"metadata":{"user":"o@example.org","admin":false,"at":"2023-11-14T22:13:20.000Z"}'
adm_seed()
{
	local e=$adm_e1 m=$adm_meta
	cat >"$1" <<EOT
{"event_id":"00000000-0000-4000-8000-000000000001","type":"ElectionCreated","data":{"name":"Red \u001b[31m alert \u007f","election_id":"$e"},$m}
{"event_id":"00000000-0000-4000-8000-000000000002","type":"ElectionNameChanged","data":{"name":"Tab\there","election_id":"$e"},$m}
{"event_id":"00000000-0000-4000-8000-000000000003","type":"CompetitionAdded","data":{"name":"Portraits","election_id":"$e","competition_id":"$adm_c1"},$m}
EOT
}

adm_start_appender()
{
	"$adm_appender" >>"$pvp_work/appender.log" 2>&1 &
	APPENDER_PID=$!
}

adm_stop_appender()
{
	[[ -n $APPENDER_PID ]] || return 0
	kill -TERM "$APPENDER_PID" 2>/dev/null
	wait "$APPENDER_PID" 2>/dev/null
	APPENDER_PID=
}

# adm_status_field NAME: one figure of `photovote-admin status`.
adm_status_field()
{
	"$adm" status 2>/dev/null | sed -n "s/^$1: //p"
}

# adm_wait_status NAME VALUE [SECONDS]: until status shows NAME: VALUE.
adm_wait_status()
{
	local deadline=$((SECONDS + ${3:-30})) got
	while ((SECONDS < deadline)); do
		got=$(adm_status_field "$1")
		[[ $got == "$2" ]] && return 0
		sleep 0.2
	done
	echo "# status $1: ${got:-none}, waited for $2"
	return 1
}

# adm_closed_port: a loopback port nothing listens on (bound, then released).
adm_closed_port()
{
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# adm_run NAME EXPECTED_STATUS CMD...: runs CMD with stdout in $pvp_work/out and stderr in
# $pvp_work/err, and checks its exit status.
adm_run()
{
	local name=$1 want=$2 rc
	shift 2
	"$@" >"$pvp_work/out" 2>"$pvp_work/err"
	rc=$?
	if [[ $rc != "$want" ]]; then
		echo "# $name: exit status $rc, expected $want"
		sed 's/^/#   stderr: /' "$pvp_work/err" | head -5
		pvp_ok 1 "$name"
		return 1
	fi
	pvp_ok 0 "$name"
}

# adm_private_cosmos: a Cosmos DB of the test's own, to pause (SIGSTOP) by its PID,
# $cosmos_pid (resumed at exit); a request to it, paused, then waits for as long as the test
# runs, not the default 10 s.  Exits 77 (skip) when it does not start.
adm_private_cosmos()
{
	if ! pv_servers_need_private cosmos; then
		echo "# a private Cosmos DB did not start"
		exit 77
	fi
	export PHOTOVOTE_COSMOS_ENDPOINT=$PV_TEST_COSMOS_URL
	export PHOTOVOTE_COSMOS_TIMEOUT_MS=120000
	cosmos_pid=$(pv_server_pid cosmos)
	pv_on_exit "kill -CONT $cosmos_pid 2>/dev/null"
}

# ---- blue-green ----
# adm_feed_of CONTAINER: the projector's feed name for a container of this test's database.
adm_feed_of() { echo "Election@$PHOTOVOTE_EVENTSTORE_BACKEND:$PHOTOVOTE_COSMOS_DATABASE/$1"; }
# adm_position_of CONTAINER: its checkpoint; adm_state_of CONTAINER: its read_model_containers state.
adm_position_of()
{
	pvp_sql "SELECT position FROM projector_checkpoints WHERE name = '$(adm_feed_of "$1")'"
}
adm_state_of() { pvp_sql "SELECT state FROM read_model_containers WHERE container = '$1'"; }
# adm_wait_position CONTAINER POSITION: until that container's checkpoint reaches POSITION.
adm_wait_position()
{
	local deadline=$((SECONDS + 90)) got
	while ((SECONDS < deadline)); do
		got=$(adm_position_of "$1")
		[[ -n $got ]] && ((got >= $2)) && return 0
		sleep 0.2
	done
	echo "# $1: checkpoint ${got:-none}, waited for $2"
	return 1
}

# adm_check_same_as_scratch CONTAINER ELECTIONS_FILE...: two cases: a rebuild from scratch into
# another database exits 0, and CONTAINER's documents of the elections listed equal its.
adm_check_same_as_scratch()
{
	local c=$1 w=$pvp_work db=$PHOTOVOTE_COSMOS_DATABASE all
	shift
	mapfile -t all < <(cat "$@")
	PHOTOVOTE_COSMOS_CONTAINER=$c pvp_docs "$w/$c.docs" "${all[@]}"
	adm_run "a rebuild from scratch into another database: exit 0" 0 \
		env PHOTOVOTE_COSMOS_DATABASE="$db-scratch" "$adm" rebuild --all
	PHOTOVOTE_COSMOS_DATABASE=$db-scratch pvp_docs "$w/scratch.docs" "${all[@]}"
	if ! cmp -s "$w/$c.docs" "$w/scratch.docs"; then
		diff <(cut -c1-300 "$w/scratch.docs") <(cut -c1-300 "$w/$c.docs") | head -10 |
			sed 's/^/#   /'
	fi
	pvp_check "$c equals a rebuild from scratch" cmp -s "$w/$c.docs" "$w/scratch.docs"
}

# ---- the console in tmux ----
# adm_tmux_start NAME COLS ROWS [ENV...]: a tmux server of the test's own (socket in the work
# folder) running the console in session NAME with TERM=xterm unless ENV says otherwise; the
# console's exit status lands in $pvp_work/NAME.rc, then the pane waits (so the screen can be
# read after the console ended).
adm_tmux_start()
{
	local name=$1 cols=$2 rows=$3
	shift 3
	adm_sock=$pvp_work/tmux.sock
	if [[ ! -e $adm_sock ]]; then
		pv_on_exit "tmux -S '$adm_sock' kill-server 2>/dev/null"
	fi
	rm -f "$pvp_work/$name.rc"
	tmux -S "$adm_sock" new-session -d -s "$name" -x "$cols" -y "$rows" \
		"env TERM=xterm LANG=C.UTF-8 LC_ALL=C.UTF-8 $* '$adm'; echo \$? >'$pvp_work/$name.rc'; exec sleep 600"
}
adm_tm() { tmux -S "$adm_sock" "$@"; }
# adm_screen NAME: the screen's text.
adm_screen() { adm_tm capture-pane -p -t "$1"; }
# adm_keys NAME KEY...: tmux key names (Enter, Escape, Home, C-l...) or text.
adm_keys() { local n=$1; shift; adm_tm send-keys -t "$n" "$@"; }
# adm_raw NAME BYTES: bytes as the terminal would send them (printf escapes: '\033[1~').
adm_raw()
{
	local hex
	read -ra hex < <(printf '%b' "$2" | od -An -tx1)
	adm_tm send-keys -t "$1" -H "${hex[@]}"
}
# adm_on NAME TEXT [SECONDS]: until TEXT (fixed string) is on the screen; shows it if not.
adm_on()
{
	local n=$1 text=$2 deadline=$((SECONDS + ${3:-10}))
	while ((SECONDS < deadline)); do
		adm_screen "$n" | grep -qF -- "$text" && return 0
		sleep 0.1
	done
	echo "# not on the screen: $text"
	adm_screen "$n" | sed 's/^/#   | /'
	return 1
}
# adm_on_re NAME REGEX [SECONDS]: until a line of the screen matches REGEX (grep -E).
adm_on_re()
{
	local n=$1 re=$2 deadline=$((SECONDS + ${3:-10}))
	while ((SECONDS < deadline)); do
		adm_screen "$n" | grep -qE -- "$re" && return 0
		sleep 0.1
	done
	echo "# no line matches: $re"
	adm_screen "$n" | sed 's/^/#   | /'
	return 1
}
# adm_off NAME TEXT [SECONDS]: until TEXT is no longer on the screen.
adm_off()
{
	local n=$1 text=$2 deadline=$((SECONDS + ${3:-10}))
	while ((SECONDS < deadline)); do
		adm_screen "$n" | grep -qF -- "$text" || return 0
		sleep 0.1
	done
	echo "# still on the screen: $text"
	adm_screen "$n" | sed 's/^/#   | /'
	return 1
}
# adm_ms_until N TEXT: milliseconds until TEXT is on the screen (polling every 20 ms), or 99999.
adm_ms_until()
{
	local n=$1 text=$2 t0 now
	t0=$(date +%s%N)
	while :; do
		adm_screen "$n" | grep -qF -- "$text" && break
		now=$(date +%s%N)
		if (((now - t0) / 1000000 > 5000)); then
			echo 99999
			return
		fi
		sleep 0.02
	done
	now=$(date +%s%N)
	echo $(((now - t0) / 1000000))
}
# adm_line NAME N: line N (1-based) of the screen.
adm_line() { adm_screen "$1" | sed -n "${2}p"; }
# adm_exited NAME [SECONDS]: until the console ended (its exit status is in $pvp_work/NAME.rc).
adm_exited()
{
	local deadline=$((SECONDS + ${2:-10}))
	while ((SECONDS < deadline)); do
		[[ -s $pvp_work/$1.rc ]] && return 0
		sleep 0.05
	done
	return 1
}
# adm_console_pid NAME: the console's process (the pane's shell's child).
adm_console_pid()
{
	local shell
	shell=$(adm_tm display-message -p -t "$1" '#{pane_pid}')
	pgrep -P "$shell" -x photovote-admin || pgrep -P "$shell" -f "$adm"
}
