# shellcheck shell=bash
# CPU accounting for the benchmarks: where the machine's time went during a
# run, per request (or message), by process.  Sourced by bench-*.sh.
#
# Only processes alive at the second snapshot count; the short-lived ones
# (psql, curl) do not, so the "machine" figure, which counts everything
# including the kernel's interrupt work, is the total to compare with.

# cpu_snapshot FILE: each process's CPU ticks (user + system, all its
# threads) as "pid<TAB>command<TAB>ticks", and the machine's busy ticks as
# "0<TAB>ALL<TAB>ticks".
cpu_snapshot()
{
	{
		cat /proc/[0-9]*/stat 2>/dev/null | awk '{
			# The command is in parentheses and may hold spaces.
			o = index($0, "("); c = index($0, ") ")
			split(substr($0, c + 2), f, " ")
			printf "%s\t%s\t%d\n", $1, substr($0, o + 1, c - o - 1), f[12] + f[13]
		}'
		awk '/^cpu / { printf "0\tALL\t%d\n", $2 + $3 + $4 + $7 + $8 }' /proc/stat
	} >"$1"
}

# cpu_group FILE GROUP: GROUP's CPU milliseconds in FILE, a line cpu_report printed (0 when
# the group is not in it); GROUP "machine" is the whole machine's.
cpu_group()
{
	sed -n "s/.*\(^\|, \|(\)$2 \([0-9.]*\).*/\2/p" "$1" | grep . || echo 0
}

# cpu_report BEFORE AFTER COUNT: CPU milliseconds per unit of COUNT spent
# between two snapshots, by process group, largest first, on one line.
cpu_report()
{
	awk -F'\t' -v n="$3" -v hz="$(getconf CLK_TCK)" '
		function group(c) {
			if (c ~ /^(beam\.smp|erl_child_setup|epmd|inet_gethost)$/) return "rabbitmq"
			if (c ~ /^postgres/) return "postgresql"
			if (c ~ /^(kworker|jbd2|ksoftirqd|rcu_)/) return "kernel"
			return c
		}
		FNR == NR { before[$1] = $3; next }
		{ d = $3 - before[$1]; if (d > 0) use[group($2)] += d }
		END {
			if (n <= 0) exit
			for (g in use) if (g != "ALL" && use[g] * 1000 / hz / n >= 0.005)
				printf "%s %.3f\n", g, use[g] * 1000 / hz / n | "sort -k2,2nr"
			close("sort -k2,2nr")
			printf "(machine %.3f)\n", use["ALL"] * 1000 / hz / n
		}' "$1" "$2" | paste -sd' ' | sed 's/\([0-9]\) /\1, /g'
}
