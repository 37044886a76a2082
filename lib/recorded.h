/* Events read back from the event store, made domain events again: the
 * bridge between lib/eventstore.h and lib/domain/event.h that the appender's
 * aggregates and the projection both fold through. */
#ifndef PV_RECORDED_H
#define PV_RECORDED_H

#include "domain/event.h"
#include "error.h"
#include "eventstore.h"

/* Fills ev (pv_event_clear it afterwards, also on failure) from a recorded
 * event.  The type must be one of ours and the data a JSON object.  Events
 * written by other tools may lack our metadata; the folds do not depend on
 * it, so an anonymous stand-in ("unknown", at the event's creation time)
 * takes its place rather than refusing the event. */
enum pv_err pv_recorded_event(const struct pv_es_event *r, struct pv_event *ev,
			      struct pv_error *err);

#endif
