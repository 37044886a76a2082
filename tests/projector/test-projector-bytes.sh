#!/bin/bash
# Documents bounded by bytes, through the test equipment's 2 MB item limit (413, as Cosmos DB):
# an election of 5,000 candidates with 2 KB descriptions and one of 20,000 voters each casting
# a ballot of 15 ratings (generated straight into the event store, not through HTTP, to keep
# the test short) project completely into documents that each stay under the projector's
# budget; the documents give the domain's fold in every view; GET /elections/{id} and
# /results answer it through photovote.fcgi; a rebuild by replay gives the same documents.
# Under sanitizers the elections are a tenth of the size (a skipped case says so).
set -u
# shellcheck source=lib.sh
. "$top_srcdir/tests/projector/lib.sh"

if pvp_sanitized; then echo "1..15"; else echo "1..14"; fi
if ! pvp_setup bytes; then
	echo "# servers unavailable"
	exit 77
fi
# The issue's full size (the projector reads a backlog in pages of up to 32,768 events, so the
# ballots election is encoded a dozen times, not once per 4,096 events).
cands=2500 voters=20000 scale=
if pvp_sanitized; then
	cands=250 voters=2000
	scale=" (a tenth: sanitizer build)"
	pv_tap_n=$((pv_tap_n + 1))
	echo "ok $pv_tap_n # SKIP the full size (5,000 candidates, 20,000 ballots) is not run under" \
		"sanitizers, to keep that pass short (the plain run projects it); a tenth runs instead"
fi
t0=$SECONDS
pvp_generate cands --elections 1 --voters 20 --candidates "$cands" --description-bytes 2048 \
	--seed 11
pvp_generate ballots --elections 1 --voters "$voters" --candidates 10 --ratings 15 --seed 12
ec=$(cat "$pvp_work/cands.elections")
eb=$(cat "$pvp_work/ballots.elections")
total=$(($(wc -l <"$pvp_work/cands.events") + $(wc -l <"$pvp_work/ballots.events")))
pvp_check "$((2 * cands)) candidates with 2 KB descriptions and $voters ballots of 15 ratings \
appended$scale ($total events)" \
	eval 'pvp_append "$pvp_work/cands.events" && pvp_append "$pvp_work/ballots.events"'
echo "# generated and appended in $((SECONDS - t0)) s"
start=$SECONDS
pvp_check "projected with --once" pvp_once PHOTOVOTE_PROJECTOR_BATCH_SIZE=16384
echo "# projected $total events in $((SECONDS - start)) s"
head=$(pvp_sql "SELECT max(position) FROM es_events" 2>/dev/null)
pvp_check "the checkpoint is past every event: nothing refused, nothing parked" \
	eval 'test "$(pvp_checkpoint)" = "$head" &&
	      test "$(pvp_sql "SELECT count(*) FROM projection_parked")" = 0 &&
	      ! grep -q "HTTP 413\|parked election" "$pvp_work/projector.log"'
pvp_docs "$pvp_work/docs" "$ec" "$eb"
largest=$(awk '{ if (length($0) > m) m = length($0) } END { print m }' "$pvp_work/docs")
pvp_check "$(wc -l <"$pvp_work/docs") documents, each under the 1 MB budget (largest: \
$largest bytes)" test "$(awk 'length($0) > 1048576 - 512' "$pvp_work/docs" | wc -l)" = 0
pvp_check "the heads hold no candidates, voters or ballots" \
	eval 'test "$(jq -c "select(.id == \"$ec\" or .id == \"$eb\")
		| [.voters, .ballots, ([.competitions[].candidates] | add)]" "$pvp_work/docs" |
		sort -u)" = "[null,null,null]"'
pvp_check "candidates in several parts, ballots in several parts" \
	eval 'test "$(jq -r "select(.id == \"$ec\") | .parts.candidates" "$pvp_work/docs")" -gt 1 &&
	      test "$(jq -r "select(.id == \"$eb\") | .parts.ballots" "$pvp_work/docs")" -gt 1'
# The full view and the results (every view derives from the full document; the owner's is
# checked through photovote.fcgi below): one fold of each stream, it is long.
same_full_and_results()
{
	local e
	for e in "$@"; do
		"$pvp_tool" fold "$e" full >"$pvp_work/fold-full-$e" &&
			"$pvp_tool" view "$e" full | cmp -s "$pvp_work/fold-full-$e" - &&
			"$pvp_tool" fold "$e" results >"$pvp_work/want-results-$e" &&
			"$pvp_tool" view "$e" results | cmp -s "$pvp_work/want-results-$e" - || return 1
	done
}
pvp_check "the full documents and the results equal the domain's fold" \
	same_full_and_results "$ec" "$eb"
cp "$pvp_work/fold-full-$eb" "$pvp_work/fold-full"
pvp_check "$voters ballots of 15 ratings, as many cast as the fold says" \
	test "$(jq -c '[.ballot_count, .cast_count, ([.ballots[].ratings | length] | min)]' \
		"$pvp_work/fold-full")" = "$(jq -c "[$voters, .cast_count, 15]" "$pvp_work/fold-full")"

if ! command -v lighttpd >/dev/null; then
	for _ in 1 2 3; do
		pv_tap_n=$((pv_tap_n + 1))
		echo "ok $pv_tap_n # SKIP lighttpd is not installed"
	done
elif pvp_web; then
	pvp_check "GET .../results of the ballots election: 200, the fold's results" eval \
		'test "$(pvp_get "elections/$eb/results" "$pvp_work/got")" = 200 &&
		 test "$(jq -cS . "$pvp_work/got")" = "$(jq -cS . "$pvp_work/want-results-$eb")"'
	"$pvp_tool" fold "$ec" owner >"$pvp_work/want-owner"
	pvp_check "GET /elections/{id} of the candidates election: 200, all $((2 * cands)) \
candidates with their descriptions, as the fold" eval \
		'test "$(pvp_get "elections/$ec" "$pvp_work/got")" = 200 &&
		 test "$(jq -cS . "$pvp_work/got")" = "$(jq -cS . "$pvp_work/want-owner")" &&
		 test "$(jq "[.competitions[].candidates[]] | length" "$pvp_work/got")" = $((2 * cands))'
	pvp_check "GET .../results of the candidates election: all candidates ranked" eval \
		'test "$(pvp_get "elections/$ec/results" "$pvp_work/got")" = 200 &&
		 test "$(jq -cS . "$pvp_work/got")" = "$(jq -cS . "$pvp_work/want-results-$ec")"'
else
	for _ in 1 2 3; do pv_tap_ok 1 "photovote.fcgi behind lighttpd did not start"; done
fi

cp "$pvp_work/docs" "$pvp_work/docs-live"
pvp_check "a rebuild of both by replay" eval '"$pvp_tool" rebuild "$ec" && "$pvp_tool" rebuild "$eb"'
pvp_docs "$pvp_work/docs" "$ec" "$eb"
pvp_check "gives the same documents as the live projection" cmp -s "$pvp_work/docs-live" \
	"$pvp_work/docs"
pvp_check "no sanitizer report in the logs" \
	test "$(grep -c -i 'sanitizer\|runtime error' "$pvp_work/projector.log")" = 0
exit 0
