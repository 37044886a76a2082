/* libFuzzer target: RabbitMQ message properties and headers as the
 * appender and photovote-admin read them, dead letters included.  The
 * input is the length of a content header's property list (two bytes, big
 * endian), the list as it comes off the wire (flags, then the fields;
 * librabbitmq decodes it, as it does for every delivery), the routing key,
 * a NUL, then the body.
 *
 * What runs: the header look-ups of the appender's dead-lettering and the
 * console's dead-letter list (pv_amqp_header_text, pv_amqp_bytes_strdup),
 * and the copy a requeue publishes (pv_dl_copy_build, admin/).
 * Invariants: the copy keeps none of the dead-lettering headers and is
 * persistent; the copy's properties encode, and decode back equal
 * (librabbitmq's encoder and decoder, the pair a requeue goes through);
 * a routing key is found when the dead letter carries one. */
#include <amqp.h>
#include <amqp_framing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "amqp_conn.h"
#include "dead_letter_copy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...) FUZZ_FAIL("fuzz-amqp: " __VA_ARGS__)

static bool bytes_equal(amqp_bytes_t a, amqp_bytes_t b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.bytes, b.bytes, a.len) == 0);
}

static bool starts(amqp_bytes_t key, const char *prefix)
{
	size_t n = strlen(prefix);

	return key.len >= n && memcmp(key.bytes, prefix, n) == 0;
}

static void check_copy(const struct pv_dl_copy *c, amqp_bytes_t got)
{
	const amqp_basic_properties_t *p = &c->props;
	amqp_basic_properties_t *back = NULL;
	amqp_pool_t pool;
	char buf[131072];
	amqp_bytes_t enc = {sizeof buf, buf};
	int len;

	if (!(p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG) || p->delivery_mode != 2)
		FAIL("the copy is not persistent");
	if (got.len && !c->routing_key)
		FAIL("a dead letter with a routing key gave a copy without one");
	if (p->_flags & AMQP_BASIC_HEADERS_FLAG)
		for (int i = 0; i < p->headers.num_entries; i++) {
			amqp_bytes_t k = p->headers.entries[i].key;

			if (starts(k, "x-photovote-") || starts(k, "x-first-death-") ||
			    starts(k, "x-last-death-") ||
			    (k.len == 7 && memcmp(k.bytes, "x-death", 7) == 0))
				FAIL("the copy keeps the header %.*s", (int)k.len,
				     (const char *)k.bytes);
		}
	len = amqp_encode_properties(AMQP_BASIC_CLASS, (void *)p, enc);
	if (len < 0)
		return; /* too large for the buffer, or a value librabbitmq cannot write */
	enc.len = (size_t)len;
	init_amqp_pool(&pool, 4096);
	if (amqp_decode_properties(AMQP_BASIC_CLASS, &pool, enc, (void **)&back) != 0)
		FAIL("the copy's properties do not decode");
	if (back->_flags != p->_flags || !bytes_equal(back->message_id, p->message_id) ||
	    !bytes_equal(back->type, p->type) || back->delivery_mode != p->delivery_mode ||
	    ((p->_flags & AMQP_BASIC_HEADERS_FLAG) &&
	     back->headers.num_entries != p->headers.num_entries) ||
	    ((p->_flags & AMQP_BASIC_APP_ID_FLAG) && !bytes_equal(back->app_id, p->app_id)) ||
	    ((p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) &&
	     !bytes_equal(back->correlation_id, p->correlation_id)))
		FAIL("the copy's properties decode back different");
	if (p->_flags & AMQP_BASIC_HEADERS_FLAG)
		for (int i = 0; i < p->headers.num_entries; i++)
			if (!bytes_equal(back->headers.entries[i].key, p->headers.entries[i].key))
				FAIL("header %d decodes back under another name", i);
	empty_amqp_pool(&pool);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *rest, *nul;
	amqp_bytes_t props_raw, got;
	amqp_basic_properties_t *props = NULL;
	amqp_message_t msg;
	struct pv_dl_copy copy;
	amqp_pool_t pool;
	const amqp_bytes_t *h;
	size_t left;

	if (size < 2 || (size_t)(data[0] << 8 | data[1]) > size - 2)
		return 0;
	props_raw.len = (size_t)(data[0] << 8 | data[1]);
	props_raw.bytes = (void *)(data + 2);
	rest = data + 2 + props_raw.len;
	left = size - 2 - props_raw.len;
	nul = memchr(rest, '\0', left);
	got.len = nul ? (size_t)(nul - rest) : left;
	got.bytes = (void *)rest;
	init_amqp_pool(&pool, 4096);
	if (amqp_decode_properties(AMQP_BASIC_CLASS, &pool, props_raw, (void **)&props) != 0) {
		empty_amqp_pool(&pool);
		return 0; /* librabbitmq refuses the frame: the connection fails */
	}
	/* The appender's dead letter and the console's list. */
	if (props->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
		free(pv_amqp_bytes_strdup(props->message_id));
	if ((h = pv_amqp_header_text(props, "x-photovote-reason")))
		free(pv_amqp_bytes_strdup(*h));
	/* A requeue's copy. */
	memset(&msg, 0, sizeof msg);
	msg.properties = *props;
	if (nul) {
		msg.body.len = left - got.len - 1;
		msg.body.bytes = (void *)(nul + 1);
	}
	pv_dl_copy_build(&msg, got, &copy);
	check_copy(&copy, got);
	if (getenv("PV_FUZZ_VERBOSE")) /* what a corpus file does, for its author */
		fprintf(stderr, "flags %04x, %d headers, copy: %d headers, routing key %s\n",
			props->_flags, props->headers.num_entries, copy.props.headers.num_entries,
			copy.routing_key ? copy.routing_key : "(none)");
	pv_dl_copy_clear(&copy);
	empty_amqp_pool(&pool);
	return 0;
}
