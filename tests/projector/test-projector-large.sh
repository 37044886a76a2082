#!/bin/bash
# An election with 20,000 ballots (generated straight into the event store, not through HTTP,
# to keep the test short): projected into a head and parts that each stay far under Cosmos DB's
# 2 MB item limit, and giving exactly the domain's fold and results.
set -u
# shellcheck source=lib.sh
. "$top_srcdir/tests/projector/lib.sh"

echo "1..6"
if ! pvp_setup large; then
	echo "# servers unavailable"
	exit 77
fi
t0=$SECONDS
pvp_generate big --elections 1 --voters 20000 --seed 7
e=$(cat "$pvp_work/big.elections")
total=$(wc -l <"$pvp_work/big.events")
pvp_check "a 20,000 voter election appended to the store ($total events)" \
	pvp_append "$pvp_work/big.events"
echo "# generated and appended in $((SECONDS - t0)) s"
start=$SECONDS
start=$SECONDS
pvp_check "projected with --once" pvp_once PHOTOVOTE_PROJECTOR_BATCH_SIZE=4096
echo "# projected $total events in $((SECONDS - start)) s"
pvp_docs "$pvp_work/docs" "$e"
pvp_check "a head and 10 parts" test "$(wc -l <"$pvp_work/docs")" = 11
largest=$(awk '{ if (length($0) > m) m = length($0) } END { print m }' "$pvp_work/docs")
pvp_check "every item under 2 MB (largest: $largest bytes)" \
	test "$(awk 'length($0) >= 2 * 1024 * 1024' "$pvp_work/docs" | wc -l)" = 0
"$pvp_tool" fold "$e" full >"$pvp_work/fold-full"
"$pvp_tool" view "$e" full >"$pvp_work/view-full"
pvp_check "20,000 ballots, as many cast as the fold says" test \
	"$(jq -c '[.ballot_count, .cast_count]' "$pvp_work/view-full")" = \
	"$(jq -c '[20000, .cast_count]' "$pvp_work/fold-full")"
pvp_check "the whole document and the results equal the domain's fold" eval \
	'cmp -s "$pvp_work/fold-full" "$pvp_work/view-full" &&
	 test "$("$pvp_tool" fold "$e" results)" = "$("$pvp_tool" view "$e" results)"'
exit 0
