/* The copy of a dead letter that a requeue publishes (see the top of
 * dead_letters.c for what it carries and how its routing key is found),
 * apart from the broker so that the fuzz target (tests/fuzz/fuzz-amqp.c)
 * builds it from untrusted properties exactly as the tool does. */
#ifndef PV_ADMIN_DEAD_LETTER_COPY_H
#define PV_ADMIN_DEAD_LETTER_COPY_H

#include <amqp.h>
#include <jansson.h>

struct pv_dl_copy {
	amqp_basic_properties_t props;
	amqp_table_entry_t *headers;
	char *routing_key; /* NULL: none found */
	json_t *envelope;  /* the body when it is a JSON object; strings above point into it */
};

/* The copy of dead letter m, which arrived with routing key got.  Its
 * strings point into m and c->envelope: clear it before m is destroyed. */
void pv_dl_copy_build(const amqp_message_t *m, amqp_bytes_t got, struct pv_dl_copy *c);
void pv_dl_copy_clear(struct pv_dl_copy *c);

#endif
