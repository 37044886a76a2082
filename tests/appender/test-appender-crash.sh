#!/bin/bash
# Crash safety: the appender kills itself with SIGKILL (PHOTOVOTE_FAULT) after the append,
# after the audit row, or before the ack, again and again at random message counts, and is
# restarted each time; it runs in batches of one to three messages.  (With the postgres backend
# a batch is one transaction: a kill after the append rolls the batch back, one after the audit
# row comes after the commit.)  Afterwards every event is in its stream and in the audit log
# exactly once, with its first verdict, and the queue is empty.
set -u
# shellcheck source=lib.sh
. "$top_srcdir/tests/appender/lib.sh"

points=(after_append after_audit before_ack)
echo "1..$((${#points[@]} * 5))"
for point in "${points[@]}"; do
	if ! pva_setup "crash_$point"; then
		echo "# servers unavailable"
		exit 77
	fi
	pva_generate 2
	total=$(wc -l <"$pva_work/messages")
	pva_publish
	kills=0 others=0 done=1
	for ((run = 0; run < 200; run++)); do
		# Small batches (1 to 3 messages), so that each point is reached many times.
		pva_start PHOTOVOTE_FAULT="$point:$((RANDOM % 4 + 1))" \
			PHOTOVOTE_APPENDER_BATCH_SIZE=$((RANDOM % 3 + 1))
		if pva_wait_verdicts "$total" 60; then
			done=0
			break
		fi
		wait "$APPENDER_PID"
		rc=$?
		APPENDER_PID=
		if [[ $rc == 137 ]]; then kills=$((kills + 1)); else others=$((others + 1)); fi
		((others > 3)) && break
	done
	# The last kill may come after the last verdict but before its ack.
	if [[ $done == 0 ]]; then
		sleep 1
		pva_stop
		pva_start
		sleep 2
	fi
	echo "# $point: killed $kills times"
	pva_check "$point: killed by the fault point several times ($kills)" \
		test "$kills" -ge 3 -a "$others" = 0
	pva_check "$point: every command has its verdict after restarts" test "$done" = 0
	pva_check "$point: verdicts are the first ones, once each" pva_check_verdicts
	pva_check "$point: streams hold each accepted event once, in order" pva_check_streams
	pva_check "$point: nothing left in the queue" test "$("$pva_tool" pending)" = 0 -a \
		"$(pva_sql "SELECT count(*) - count(DISTINCT id) FROM es_events")" = 0
	pva_stop
done
exit 0
