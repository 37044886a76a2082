#include "recorded.h"

#include <string.h>

enum pv_err pv_recorded_event(const struct pv_es_event *r, struct pv_event *ev,
			      struct pv_error *err)
{
	struct pv_event_meta meta, fallback;
	struct pv_error ignored;
	int type = pv_event_type_parse(r->type);
	enum pv_err rc;

	memset(ev, 0, sizeof *ev);
	if (type < 0)
		return pv_error_set(err, PV_ERR_INVALID, "unknown event type");
	if (!json_is_object(r->data))
		return pv_error_set(err, PV_ERR_JSON, "event data is not a JSON object");
	if (pv_event_meta_from_json(r->metadata, &meta, &ignored) != PV_OK) {
		memset(&fallback, 0, sizeof fallback);
		fallback.user = "unknown";
		fallback.at = r->created;
		return pv_event_init(ev, r->id, (enum pv_event_type)type, json_incref(r->data),
				     &fallback, err);
	}
	rc = pv_event_init(ev, r->id, (enum pv_event_type)type, json_incref(r->data), &meta, err);
	pv_event_meta_clear(&meta);
	return rc;
}

enum pv_err pv_recorded_fold(struct pv_election **state, const struct pv_es_event *r,
			     bool *restarted, struct pv_error *err)
{
	struct pv_event ev;
	enum pv_err rc = pv_recorded_event(r, &ev, err);

	*restarted = false;
	if (rc == PV_OK && ev.type == PV_EV_ELECTION_CREATED && pv_election_version(*state) >= 0) {
		struct pv_election *fresh = pv_election_new(pv_election_id(*state));

		pv_election_free(*state);
		*state = fresh;
		*restarted = true;
	}
	if (rc == PV_OK)
		rc = pv_election_apply(*state, &ev, r->number, err);
	pv_event_clear(&ev);
	return rc;
}
