/* libFuzzer target: untrusted bytes from the broker go through the same
 * path as in the appender: JSON parse, strict envelope decode, then a check
 * and a fold against a small election.  Anything but a clean refusal or a
 * clean acceptance (a crash, a leak, undefined behaviour) is a finding. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "domain/election.h"
#include "domain/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	struct pv_event ev;
	struct pv_error err;

	if (!root)
		return 0;
	if (pv_event_from_json(root, &ev, &err) == PV_OK) {
		struct pv_election *e = pv_election_new(pv_event_election_id(&ev));
		struct pv_verdict verdict;

		if (pv_election_check(e, &ev, &verdict) == PV_VERDICT_ACCEPTED)
			pv_election_apply(e, &ev, 0, &err);
		json_decref(pv_election_to_json(e, PV_VIEW_FULL));
		json_decref(pv_event_to_json(&ev));
		pv_election_free(e);
		pv_event_clear(&ev);
	}
	json_decref(root);
	return 0;
}
