#include "dead_letter_copy.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "amqp_conn.h"
#include "xalloc.h"

/* Headers about the dead-lettering, not the command. */
static const struct {
	const char *name;
	bool prefix;
} dropped_headers[] = {
	{"x-photovote-", true},
	{"x-death", false},
	{"x-first-death-", true},
	{"x-last-death-", true},
};

/* The headers the API sets from the envelope's metadata, in its order. */
static const char *const api_headers[] = {"correlation_id", "user", "source"};

#define KEPT_FLAGS                                                                                 \
	(AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_CONTENT_ENCODING_FLAG |                         \
	 AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |           \
	 AMQP_BASIC_APP_ID_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_PRIORITY_FLAG |      \
	 AMQP_BASIC_REPLY_TO_FLAG)

static bool key_is(amqp_bytes_t key, const char *name, bool prefix)
{
	size_t n = strlen(name);

	if (prefix ? key.len < n : key.len != n)
		return false;
	return memcmp(key.bytes, name, n) == 0;
}

static bool header_dropped(amqp_bytes_t key)
{
	for (size_t i = 0; i < sizeof dropped_headers / sizeof dropped_headers[0]; i++)
		if (key_is(key, dropped_headers[i].name, dropped_headers[i].prefix))
			return true;
	return false;
}

static bool has_header(const amqp_table_entry_t *h, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (key_is(h[i].key, name, false))
			return true;
	return false;
}

/* The body as a JSON object, or NULL (a poison body is often no JSON). */
static json_t *parse_object(amqp_bytes_t body)
{
	json_error_t jerr;
	json_t *j = json_loadb(body.bytes, body.len, 0, &jerr);

	if (!j && json_error_code(&jerr) == json_error_out_of_memory)
		pv_oom("json_loadb", 0);
	if (j && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* The routing key (see the top), NULL when there is none. */
static char *routing_key(const amqp_message_t *m, amqp_bytes_t got, const json_t *envelope)
{
	const amqp_bytes_t *h = pv_amqp_header_text(&m->properties, "x-photovote-routing-key");
	const char *eid;

	if (h && h->len)
		return pv_amqp_bytes_strdup(*h);
	if (got.len)
		return pv_amqp_bytes_strdup(got);
	eid = json_string_value(json_object_get(json_object_get(envelope, "data"), "election_id"));
	return eid && *eid ? pv_xstrdup(eid) : NULL;
}

/* What the API put in the headers and properties, back from the envelope
 * (see the top); n is the number of headers so far, returns the new one. */
static int restore_api_fields(struct pv_dl_copy *c, int n)
{
	const json_t *meta = json_object_get(c->envelope, "metadata");
	const char *corr = json_string_value(json_object_get(meta, "correlation_id"));

	if (!json_is_object(meta))
		return n;
	if (!(c->props._flags & AMQP_BASIC_APP_ID_FLAG)) {
		c->props._flags |= AMQP_BASIC_APP_ID_FLAG;
		c->props.app_id = amqp_cstring_bytes("photovote");
	}
	if (corr && !(c->props._flags & AMQP_BASIC_CORRELATION_ID_FLAG)) {
		c->props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
		c->props.correlation_id = amqp_cstring_bytes(corr);
	}
	for (size_t i = 0; i < sizeof api_headers / sizeof api_headers[0]; i++) {
		const char *v = json_string_value(json_object_get(meta, api_headers[i]));
		amqp_table_entry_t *e = &c->headers[n];

		if (!v || has_header(c->headers, n, api_headers[i]))
			continue;
		e->key = amqp_cstring_bytes(api_headers[i]);
		e->value.kind = AMQP_FIELD_KIND_UTF8;
		e->value.value.bytes = amqp_cstring_bytes(v);
		n++;
	}
	return n;
}

void pv_dl_copy_build(const amqp_message_t *m, amqp_bytes_t got, struct pv_dl_copy *c)
{
	const amqp_basic_properties_t *o = &m->properties;
	int norig = (o->_flags & AMQP_BASIC_HEADERS_FLAG) ? o->headers.num_entries : 0;
	int n = 0;

	memset(c, 0, sizeof *c);
	c->envelope = parse_object(m->body);
	c->routing_key = routing_key(m, got, c->envelope);
	/* Fields whose flag is off are ignored by librabbitmq. */
	c->props = *o;
	c->props._flags = (o->_flags & KEPT_FLAGS) | AMQP_BASIC_DELIVERY_MODE_FLAG;
	c->props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
	c->headers = pv_xcalloc((size_t)norig + sizeof api_headers / sizeof api_headers[0],
				sizeof *c->headers);
	for (int i = 0; i < norig; i++)
		if (!header_dropped(o->headers.entries[i].key))
			c->headers[n++] = o->headers.entries[i];
	if (pv_amqp_header_text(o, "x-photovote-reason"))
		n = restore_api_fields(c, n);
	if (n) {
		c->props._flags |= AMQP_BASIC_HEADERS_FLAG;
		c->props.headers.num_entries = n;
		c->props.headers.entries = c->headers;
	} else {
		c->props.headers = amqp_empty_table;
	}
}

void pv_dl_copy_clear(struct pv_dl_copy *c)
{
	free(c->headers);
	free(c->routing_key);
	json_decref(c->envelope);
	memset(c, 0, sizeof *c);
}
