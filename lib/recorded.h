/* Events read back from the event store, made domain events again: the
 * bridge between lib/eventstore.h and lib/domain/event.h that the appender's
 * aggregates and the projection both fold through. */
#ifndef PV_RECORDED_H
#define PV_RECORDED_H

#include "domain/election.h"
#include "domain/event.h"
#include "error.h"
#include "eventstore.h"

#include <stdbool.h>

/* Fills ev (pv_event_clear it afterwards, also on failure) from a recorded
 * event.  The type must be one of ours and the data a JSON object.  Events
 * written by other tools may lack our metadata; the folds do not depend on
 * it, so an anonymous stand-in ("unknown", at the event's creation time)
 * takes its place rather than refusing the event. */
enum pv_err pv_recorded_event(const struct pv_es_event *r, struct pv_event *ev,
			      struct pv_error *err);

/* Folds a recorded event into *state, the election of its stream, as event
 * number r->number.  An ElectionCreated after other events starts the
 * election again: the appender never appends a second one, so the stream
 * was deleted by hand and created anew (its numbers go on) and the election
 * before it is gone; *state is then a new election first and *restarted is
 * set.  PV_OK, or why the event does not fold (*state is left as it was,
 * or started again). */
enum pv_err pv_recorded_fold(struct pv_election **state, const struct pv_es_event *r,
			     bool *restarted, struct pv_error *err);

#endif
