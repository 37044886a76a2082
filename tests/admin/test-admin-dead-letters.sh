#!/bin/bash
# photovote-admin dead-letters requeue and purge against the real RabbitMQ (and PostgreSQL for
# the appender): commands published as photovote.fcgi does (pv-dlq-tool publish, lib's
# publisher), dead-lettered as the appender does (pv_amqp_consumer_dead_letter) or by RabbitMQ
# itself (basic.reject into x-dead-letter-exchange), then requeued: each copy read back from
# the appender's queue must equal the message the API published (exchange, routing key, every
# property, the headers in order, the body), also per partition of a consistent-hash exchange;
# --id and --count move only those, the others stay in order; purge refuses without --yes and
# deletes all or one id with it; a missing exchange, an exchange no queue is bound to and a
# broker that is down exit 1 and leave the dead letters as they were; with the appender running
# a requeued command is appended and a requeued poison message comes back once, not in a loop;
# a dead letter that kept no routing key gets the election id of its body, or stays queued; a
# requeue killed half-way loses nothing and leaves at most the message in hand in both queues.
set -u
# shellcheck source=lib.sh
. "$top_srcdir/tests/admin/lib.sh"

echo "1..75"
if ! adm_setup dlq; then
	echo "# servers unavailable"
	exit 77
fi
w=$pvp_work
tool=$top_builddir/tests/admin/pv-dlq-tool
q=$PHOTOVOTE_AMQP_QUEUE
dlq=$PHOTOVOTE_AMQP_DEAD_LETTER_QUEUE

# envelope N ELECTION [TYPE]: one command as the API publishes it, event id ...0000000000bN.
envelope()
{
	printf '{"event_id":"%s","type":"%s","data":{"name":"E %s","election_id":"%s"},"metadata":{"user":"o@example.org","admin":false,"at":"2023-11-14T22:13:20.000Z","correlation_id":"corr-%s","source":"192.0.2.7"}}\n' \
		"$(evid "$1")" "${3:-ElectionCreated}" "$1" "$2" "$1"
}
evid() { printf '00000000-0000-4000-8000-%012d' "$1"; }
ulid() { printf '01BX5ZZKBKACTAV9WEVGEMMW%02d' "$1"; }

# same [--any-header-order] WANT GOT ID...: GOT holds the messages of WANT with these event
# numbers, in this order, equal in everything pv-dlq-tool dumps (headers as a set with the
# option: RabbitMQ sorts them by name when it dead-letters a message itself).
same()
{
	local sort=0 i ids=()
	if [[ $1 == --any-header-order ]]; then
		sort=1
		shift
	fi
	local want=$1 got=$2
	shift 2
	for i in "$@"; do ids+=("$(evid "$i")"); done
	python3 - "$sort" "$want" "$got" "${ids[@]}" <<'PY'
import json, sys
sort = sys.argv.pop(1) == "1"
want = {}
for line in open(sys.argv[1]):
    o = json.loads(line)
    want[o["properties"].get("message_id")] = o
got = [json.loads(line) for line in open(sys.argv[2])]
ids = [o["properties"].get("message_id") for o in got]
if ids != sys.argv[3:]:
    print("# ids", ids, "expected", sys.argv[3:])
    sys.exit(1)
for o in got:
    w = want[o["properties"]["message_id"]]
    if sort:
        w = dict(w, headers=sorted(w["headers"]))
        o = dict(o, headers=sorted(o["headers"]))
    if o != w:
        print("#   want", json.dumps(w, sort_keys=True))
        print("#   got ", json.dumps(o, sort_keys=True))
        sys.exit(1)
PY
}

# dead_ids: the message ids of the dead letters, in queue order, one a line (a peek).
dead_ids() { "$adm" dead-letters --count 1000 | cut -f1; }
ids_are()
{
	local i want='' got
	for i in "$@"; do want+=$(evid "$i")$'\n'; done
	got=$(dead_ids)
	[[ $got == "${want%$'\n'}" ]] && return 0
	echo "# dead letters:" $got
	return 1
}
# out_is TEXT: the last command's standard output is TEXT.
out_is()
{
	[[ $(cat "$w/out") == "$1" ]] && return 0
	echo "# output: $(head -c 300 "$w/out")"
	return 1
}
dump() { "$tool" dump "$1" "$2" >"$w/$3"; }
lines() { [[ $(wc -l <"$w/$1") == "$2" ]]; }

# ---- the appender's way: pv_amqp_consumer_dead_letter, no appender running ----
for i in 1 2 3 4; do envelope $i "$(ulid $((i % 2)))"; done >"$w/cmds"
pvp_check "four commands published as the API does" "$tool" publish <"$w/cmds"
dump "$q" keep orig
pvp_check "they carry what the API sets: app id, correlation id, the three headers" python3 -c '
import json, sys
for line in open(sys.argv[1]):
    o = json.loads(line)
    p = o["properties"]
    assert p["app_id"] == "photovote" and p["delivery_mode"] == 2, o
    assert p["correlation_id"].startswith("corr-") and p["content_type"] == "application/json", o
    assert [h[0] for h in o["headers"]] == ["correlation_id", "user", "source"], o
    assert o["routing_key"].startswith("01BX5ZZ"), o' "$w/orig"
"$tool" dead-letter 4
pvp_check "dead-lettered: four dead letters, the appender's queue empty" eval \
	'adm_wait_status dead_letters 4 10 && adm_wait_status appender_queue_ready 0 10'
dump "$dlq" keep dead
pvp_check "the dead letters lost the API's headers and app id (restored on requeue)" python3 -c '
import json, sys
for line in open(sys.argv[1]):
    o = json.loads(line)
    keys = [h[0] for h in o["headers"]]
    assert "x-photovote-reason" in keys and "user" not in keys, o
    assert "app_id" not in o["properties"], o' "$w/dead"
pvp_check "the dead letters kept the message id, type, correlation id, content type and timestamp" python3 -c '
import json, sys
kept = ("message_id", "type", "correlation_id", "content_type", "timestamp")
orig = [json.loads(l) for l in open(sys.argv[1])]
dead = [json.loads(l) for l in open(sys.argv[2])]
assert len(orig) == len(dead) == 4, (len(orig), len(dead))
for o, d in zip(orig, dead):
    for k in kept:
        assert k in o["properties"] and d["properties"].get(k) == o["properties"][k], (k, o, d)' \
	"$w/orig" "$w/dead"

adm_run "requeue --id: exit 0" 0 "$adm" dead-letters requeue --id "$(evid 2)"
pvp_check "requeue --id: says one requeued, three left" \
	out_is "1 dead letter(s) requeued, 3 left in the dead-letter queue"
dump "$q" take got
pvp_check "requeue --id: only that one is back, equal to what the API published" \
	same "$w/orig" "$w/got" 2
pvp_check "requeue --id: the others stay, in order" ids_are 1 3 4

adm_run "requeue --count 1: exit 0" 0 "$adm" dead-letters requeue --count 1
pvp_check "requeue --count 1: the first one moved" eval \
	'out_is "1 dead letter(s) requeued, 2 left in the dead-letter queue" &&
	ids_are 3 4'
adm_run "requeue (all) --json: exit 0" 0 "$adm" dead-letters requeue --json
pvp_check "requeue --json: one object with the counts" \
	out_is '{"requeued":2,"dead_letters_left":0}'
pvp_check "requeue: the dead-letter queue is empty" adm_wait_status dead_letters 0 5
dump "$q" keep got
pvp_check "requeued: body, routing key, properties and headers equal to the originals" \
	same "$w/orig" "$w/got" 1 3 4

# ---- RabbitMQ's own dead-lettering (x-death), of the same three ----
"$tool" reject "$q" 3
pvp_check "rejected: three dead letters made by RabbitMQ" adm_wait_status dead_letters 3 10
dump "$dlq" keep dead
pvp_check "RabbitMQ's dead letters carry x-death and kept the API's headers" python3 -c '
import json, sys
for line in open(sys.argv[1]):
    keys = [h[0] for h in json.loads(line)["headers"]]
    assert "x-death" in keys and "user" in keys, keys' "$w/dead"
adm_run "requeue of RabbitMQ's dead letters: exit 0" 0 "$adm" dead-letters requeue
pvp_check "requeue: three requeued" \
	out_is "3 dead letter(s) requeued, 0 left in the dead-letter queue"
dump "$q" take got
pvp_check "requeued without x-death: equal to the originals" \
	same --any-header-order "$w/orig" "$w/got" 1 3 4

# ---- purge ----
for i in 5 6 7; do envelope $i "$(ulid 3)"; done | "$tool" publish
"$tool" dead-letter 3
pvp_check "three more dead letters" adm_wait_status dead_letters 3 10
adm_run "purge without --yes: exit 2" 2 "$adm" dead-letters purge
pvp_check "purge without --yes: says how many it would delete" \
	grep -q "would delete 3 dead letter(s); nothing deleted: add --yes" "$w/err"
pvp_check "purge without --yes: nothing deleted, nothing moved" eval \
	'ids_are 5 6 7 && [[ $(adm_status_field appender_queue_ready) == 0 ]]'
adm_run "purge --id without --yes: exit 2" 2 "$adm" dead-letters purge --id "$(evid 6)"
pvp_check "purge --id without --yes: counts only that id" \
	grep -q "would delete 1 dead letter(s) with message id $(evid 6);" "$w/err"
adm_run "purge --id --yes: exit 0" 0 "$adm" dead-letters purge --id "$(evid 6)" --yes
pvp_check "purge --id --yes: one deleted, the others stay in order" eval \
	'out_is "1 dead letter(s) deleted, 2 left in the dead-letter queue" &&
	ids_are 5 7'
adm_run "purge --id of an id not there: exit 0" 0 "$adm" dead-letters purge --id nothing --yes
pvp_check "purge --id of an id not there: nothing deleted" eval \
	'out_is "0 dead letter(s) deleted, 2 left in the dead-letter queue" &&
	ids_are 5 7'
adm_run "purge --yes --json: exit 0" 0 "$adm" dead-letters purge --yes --json
pvp_check "purge --yes: all deleted for good, none requeued" eval \
	'out_is "{\"deleted\":2,\"dead_letters_left\":0}" &&
	adm_wait_status dead_letters 0 5 && [[ $(adm_status_field appender_queue_ready) == 0 ]]'
adm_run "requeue of an empty dead-letter queue: exit 0" 0 "$adm" dead-letters requeue
pvp_check "requeue of an empty queue: none" \
	out_is "0 dead letter(s) requeued, 0 left in the dead-letter queue"

# ---- the broker refuses, or is down: exit 1, the dead letters as they were ----
envelope 8 "$(ulid 4)" >"$w/cmd8"
"$tool" publish <"$w/cmd8"
dump "$q" keep orig8
"$tool" dead-letter 1
pvp_check "one dead letter" adm_wait_status dead_letters 1 10
dump "$dlq" keep before
# The broker gives a closed connection's unacked messages back asynchronously: wait for it.
unchanged()
{
	adm_wait_status dead_letters 1 10 && dump "$dlq" keep after && cmp -s "$w/before" "$w/after"
}
adm_run "requeue to a missing exchange: exit 1" 1 env \
	PHOTOVOTE_AMQP_EXCHANGE="pvadm.missing.$$" "$adm" dead-letters requeue
pvp_check "missing exchange: the broker's refusal is named" \
	grep -q "^photovote-admin: dead-letters requeue: RabbitMQ at 127.0.0.1:$PV_TEST_AMQP_PORT: .*404 NOT_FOUND - no exchange" \
	"$w/err"
pvp_check "missing exchange: nothing requeued, the dead letter unchanged" eval \
	'out_is "0 dead letter(s) requeued before the failure" && unchanged'
"$tool" exchange "pvadm.unbound.$$"
adm_run "requeue to an exchange without queues: exit 1" 1 env \
	PHOTOVOTE_AMQP_EXCHANGE="pvadm.unbound.$$" "$adm" dead-letters requeue --json
pvp_check "unroutable: named, the dead letter unchanged" eval \
	'grep -q "exchange pvadm.unbound.$$ routed it to no queue (returned: 312 NO_ROUTE)" "$w/err" &&
	out_is "{\"requeued\":0}" && unchanged'
port=$(adm_closed_port)
adm_run "requeue with the broker down: exit 1" 1 env PHOTOVOTE_AMQP_PORT="$port" \
	"$adm" dead-letters requeue
pvp_check "broker down: named, the dead letter unchanged" eval \
	'grep -q "^photovote-admin: dead-letters requeue: RabbitMQ at 127.0.0.1:$port" "$w/err" &&
	unchanged'
adm_run "purge --yes with the broker down: exit 1" 1 env PHOTOVOTE_AMQP_PORT="$port" \
	"$adm" dead-letters purge --yes
adm_run "requeue once the cause is gone: exit 0" 0 "$adm" dead-letters requeue
dump "$q" take got
pvp_check "and it is back, equal to the original" same "$w/orig8" "$w/got" 8

# ---- a crash of the tool half-way: nothing lost, at most the one in hand in both queues ----
python3 -c 'for i in range(1000, 3000):
    print("{\"event_id\":\"00000000-0000-4000-8000-%012d\",\"type\":\"ElectionCreated\",\"data\":{\"name\":\"E\",\"election_id\":\"01BX5ZZKBKACTAV9WEVGEMMW%02d\"},\"metadata\":{\"user\":\"o@example.org\"}}" % (i, i % 100))' |
	"$tool" publish
"$tool" dead-letter 2000
pvp_check "crash: 2000 dead letters" adm_wait_status dead_letters 2000 30
"$adm" dead-letters requeue >"$w/crash.out" 2>&1 &
pid=$!
deadline=$((SECONDS + 60))
while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)) &&
	(($(adm_status_field appender_queue_ready || true) + 0 < 100)); do
	sleep 0.05
done
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
rc=$?
pvp_check "crash: the requeue was killed half-way (SIGKILL)" test "$rc" = 137
# message_ids QUEUE: the message ids of QUEUE, sorted (a peek).
message_ids()
{
	"$tool" dump "$1" keep | python3 -c 'import json, sys
print("\n".join(sorted(json.loads(l)["properties"]["message_id"] for l in sys.stdin)))'
}
settled()
{
	local deadline=$((SECONDS + 30)) d r
	while ((SECONDS < deadline)); do
		d=$(adm_status_field dead_letters) r=$(adm_status_field appender_queue_ready)
		((${d:-0} + ${r:-0} >= 2000)) && return 0
		sleep 0.2
	done
	return 1
}
python3 -c 'print("\n".join("00000000-0000-4000-8000-%012d" % i for i in range(1000, 3000)))' \
	>"$w/all-ids"
# lost_none FILE...: the ids of FILEs together are all 2000, one (the one in hand) at most twice.
lost_none()
{
	sort "$@" >"$w/both"
	[[ $(sort -u "$w/both" | cmp - "$w/all-ids" && echo same) == same ]] &&
		(($(wc -l <"$w/both") <= 2001))
}
settled
message_ids "$dlq" >"$w/crash-dead"
message_ids "$q" >"$w/crash-moved"
echo "# crash: $(wc -l <"$w/crash-moved") requeued, $(wc -l <"$w/crash-dead") still dead letters"
pvp_check "crash: each dead letter in one queue or the other, at most one in both" \
	lost_none "$w/crash-dead" "$w/crash-moved"
adm_run "requeue after the crash: exit 0" 0 "$adm" dead-letters requeue
message_ids "$q" >"$w/crash-moved"
pvp_check "after the crash: all 2000 on the appender's queue, at most one twice, none left" \
	eval 'lost_none "$w/crash-moved" && [[ $(adm_status_field dead_letters) == 0 ]]'
"$tool" dump "$q" take >/dev/null

# ---- usage ----
usage_ok()
{
	"$adm" dead-letters "$@" >/dev/null 2>"$w/err"
	[[ $? == 2 ]] && grep -q "^photovote-admin: dead-letters" "$w/err"
}
pvp_check "usage: requeue --yes, purge --count, extra arguments, an empty --id exit 2" eval \
	'usage_ok requeue --yes && usage_ok purge --count 1 --yes && usage_ok requeue x &&
	usage_ok requeue --id "" && usage_ok requeue --count 0 && usage_ok purge --bogus'
pvp_check "--help describes requeue and purge" eval \
	'"$adm" --help | grep -q "dead-letters requeue \[--id EVENT_ID\] \[--count N\]" &&
	"$adm" --help | grep -q "dead-letters purge \[--id EVENT_ID\] \[--json\] --yes"'

# ---- untrusted text stays escaped: the peek is unchanged ----
printf '{"event_id":"00000000-0000-4000-8000-0000000000e1","type":"Bad\\u001b[2J","data":{"election_id":"%s"}}\n' \
	"$(ulid 5)" | "$tool" publish
"$tool" dead-letter 1
adm_run "peek at a dead letter with an escape sequence: exit 0" 0 "$adm" dead-letters
pvp_check "peek: the escape sequence is escaped" \
	grep -q $'^00000000-0000-4000-8000-0000000000e1\tBad\\\\x1b\\[2J\t' "$w/out"
adm_run "purge it: exit 0" 0 "$adm" dead-letters purge --yes
pvp_check "purged" out_is "1 dead letter(s) deleted, 0 left in the dead-letter queue"

# ---- with the appender running: handled again; poison comes back once ----
e9=01BX5ZZKBKACTAV9WEVGEMMX09
envelope 9 "$e9" | "$tool" publish
"$tool" dead-letter 1
adm_start_appender
pvp_check "the appender consumes" adm_wait_status appender_queue_consumers 1 30
envelope 10 "$(ulid 6)" Bogus | "$tool" publish
pvp_check "the appender dead-lettered the poison command" adm_wait_status dead_letters 2 30
adm_run "requeue with the appender running: exit 0" 0 "$adm" dead-letters requeue
pvp_check "requeue: both requeued" grep -q "^2 dead letter(s) requeued, " "$w/out"
appended()
{
	local deadline=$((SECONDS + 30))
	while ((SECONDS < deadline)); do
		[[ $("$adm_pub" stream "$e9" 2>/dev/null) == "0 $(evid 9) ElectionCreated" ]] &&
			return 0
		sleep 0.2
	done
	return 1
}
pvp_check "the requeued command is appended to the event store" appended
pvp_check "the requeued poison is dead-lettered again" adm_wait_status dead_letters 1 30
sleep 2
poison_count() { grep -c "dead letter (message $(evid 10) " "$pvp_work/appender.log"; }
pvp_check "no loop: still one dead letter, set aside twice in all" eval \
	'[[ $(adm_status_field dead_letters) == 1 && $(poison_count) == 2 ]] && ids_are 10'
adm_stop_appender
adm_run "purge the poison: exit 0" 0 "$adm" dead-letters purge --id "$(evid 10)" --yes

# ---- partitions: the copy lands in the partition the original was in ----
export PHOTOVOTE_AMQP_PARTITIONS=2
export PHOTOVOTE_AMQP_EXCHANGE=pvadm.dlqp.$$.events PHOTOVOTE_AMQP_QUEUE=pvadm.dlqp.$$.appender
export PHOTOVOTE_AMQP_DEAD_LETTER_EXCHANGE=pvadm.dlqp.$$.dead
export PHOTOVOTE_AMQP_DEAD_LETTER_QUEUE=pvadm.dlqp.$$.dead
q=$PHOTOVOTE_AMQP_QUEUE
dlq=$PHOTOVOTE_AMQP_DEAD_LETTER_QUEUE
for i in $(seq 20 35); do envelope "$i" "$(ulid "$i")"; done | "$tool" publish
dump "$q.0" keep orig0
dump "$q.1" keep orig1
pvp_check "partitions: sixteen commands spread over both queues" eval \
	'[[ -s $w/orig0 && -s $w/orig1 ]] && (($(cat "$w/orig0" "$w/orig1" | wc -l) == 16))'
"$tool" dead-letter 16
pvp_check "partitions: all sixteen dead-lettered" adm_wait_status dead_letters 16 10
adm_run "partitions: requeue: exit 0" 0 "$adm" dead-letters requeue
pvp_check "partitions: sixteen requeued" \
	out_is "16 dead letter(s) requeued, 0 left in the dead-letter queue"
dump "$q.0" take got0
dump "$q.1" take got1
ids_of() { python3 -c 'import json, sys
print(*[int(json.loads(l)["properties"]["message_id"][-12:]) for l in open(sys.argv[1])])' "$1"; }
pvp_check "partitions: each copy in its original's queue, in order, equal to it" eval \
	'same "$w/orig0" "$w/got0" $(ids_of "$w/orig0") && same "$w/orig1" "$w/got1" $(ids_of "$w/orig1")'

# A dead letter that kept no routing key (another publisher's, in the dead-letter exchange):
# the key comes from the body's election id, so it lands where the API's publish did.
envelope 40 "$(ulid 40)" >"$w/cmd40"
"$tool" publish <"$w/cmd40"
dump "$q.0" keep p0
part=0
[[ -s $w/p0 ]] || part=1
dump "$q.$part" take orig40
printf '%s' "$(<"$w/cmd40")" | "$tool" raw "$PHOTOVOTE_AMQP_DEAD_LETTER_EXCHANGE" ""
pvp_check "a dead letter without routing key or headers" adm_wait_status dead_letters 1 10
adm_run "requeue of it: exit 0" 0 "$adm" dead-letters requeue
dump "$q.$part" take got40
pvp_check "its key from the body: in the API's partition, with its routing key and body" \
	python3 -c 'import json, sys
w, g = (json.loads(open(f).read()) for f in sys.argv[1:])
assert (g["exchange"], g["routing_key"], g["body"]) == (w["exchange"], w["routing_key"], w["body"]), g' \
	"$w/orig40" "$w/got40"
printf 'not json' | "$tool" raw "$PHOTOVOTE_AMQP_DEAD_LETTER_EXCHANGE" ""
pvp_check "a dead letter with no routing key anywhere" adm_wait_status dead_letters 1 10
adm_run "requeue of it: exit 1" 1 "$adm" dead-letters requeue
pvp_check "no routing key: said, and it stays queued" eval \
	'grep -q "1 dead letter(s) left queued: no routing key" "$w/err" &&
	out_is "0 dead letter(s) requeued, 1 left in the dead-letter queue"'
exit 0
