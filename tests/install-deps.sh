#!/bin/sh
# Installs what building, testing and running PhotoVote locally need on
# Debian 12: Debian packages (only the missing ones, so a second run is
# quick and offline) and, from npm, the pinned Cosmos DB stand-in and OpenAPI linter.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)

packages="
build-essential autoconf automake libtool pkg-config
libfcgi-dev librabbitmq-dev libpq-dev libjansson-dev libcurl4-openssl-dev
libncurses-dev libinih-dev uuid-dev libssl-dev libcmocka-dev libsystemd-dev
libprotobuf-c-dev protobuf-c-compiler
postgresql postgresql-client rabbitmq-server amqp-tools
lighttpd apache2 nginx libapache2-mod-fcgid
curl jq python3 procps clang-format iproute2 tmux wrk bc time
dpkg-dev debhelper devscripts lintian autopkgtest debootstrap
"

missing=""
for p in $packages; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done

# Node.js: the machine's own (NodeSource builds ship npm inside nodejs, and
# Debian's npm package would conflict with them); Debian's otherwise.
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"

if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "install-deps: missing Debian packages:$missing (run as root to install them)" >&2
		exit 1
	fi
	echo "install-deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	# Services are started by the project's own scripts, never by dpkg.
	policy=/usr/sbin/policy-rc.d
	created_policy=no
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' > "$policy"
		chmod 755 "$policy"
		created_policy=yes
	fi
	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing
	[ "$created_policy" = no ] || rm -f "$policy"
fi

# The Cosmos DB stand-in, the KurrentDB stand-in with the official client, and the OpenAPI
# linter (@redocly/cli), exactly as pinned by their committed lockfiles.
for npm_dir in "$top/tests/cosmos" "$top/tests/kurrentdb" "$top/tests/redocly"; do
	if [ -f "$npm_dir/package-lock.json" ]; then
		stamp="$npm_dir/node_modules/.package-lock.json"
		if [ ! -f "$stamp" ] || [ "$npm_dir/package-lock.json" -nt "$stamp" ]; then
			echo "install-deps: npm ci in ${npm_dir#"$top"/}"
			(cd "$npm_dir" && npm ci --no-audit --no-fund --loglevel=error)
		fi
	fi
done
