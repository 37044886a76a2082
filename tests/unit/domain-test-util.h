/* Shared helpers of the domain unit tests: data files and events. */
#ifndef PV_DOMAIN_TEST_UTIL_H
#define PV_DOMAIN_TEST_UTIL_H

#include <jansson.h>
#include <stddef.h>

#include "domain/event.h"

/* Loads tests/data/domain/<rel> below $top_srcdir; fails the test if it cannot. */
json_t *td_load(const char *rel);
/* Sorted names of the *.json files of tests/data/domain/<dir>; NULL-terminated,
 * free with td_names_free. */
char **td_list(const char *dir);
void td_names_free(char **names);
/* Builds an event (fails the test if it is refused).  data is borrowed. */
void td_event(struct pv_event *ev, enum pv_event_type type, const json_t *data, const char *user,
	      int admin, const char *at);
/* Compact, order-preserving text of a JSON value (caller frees). */
char *td_dump(const json_t *j);

#endif
