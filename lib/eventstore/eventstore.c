/* The event store dispatcher: pv_es_open() picks a backend by name from a
 * table, and the page/list helpers shared by every backend. */
#include "eventstore.h"
#include "config.h"
#include "eventstore/esdb.h"
#include "eventstore/kurrentdb.h"
#include "eventstore/pg.h"

#include <stdlib.h>
#include <string.h>

static const struct {
	const char *name;
	enum pv_err (*open)(const struct pv_es_options *opts, struct pv_es **out,
			    struct pv_error *err);
} backends[] = {
	{"esdb", pv_es_esdb_open},
	{"kurrentdb", pv_es_kurrentdb_open},
	{"postgres", pv_es_pg_open},
};

enum pv_err pv_es_open(const struct pv_es_options *opts, struct pv_es **out, struct pv_error *err)
{
	*out = NULL;
	if (!opts || !opts->backend)
		return pv_error_set(err, PV_ERR_CONFIG, "event store: no backend named");
	for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
		if (strcmp(backends[i].name, opts->backend) == 0)
			return backends[i].open(opts, out, err);
	return pv_error_set(err, PV_ERR_CONFIG, "event store: unknown backend \"%s\"",
			    opts->backend);
}

void pv_es_page_clear(struct pv_es_page *page)
{
	if (!page)
		return;
	for (size_t i = 0; i < page->count; i++) {
		struct pv_es_event *e = &page->events[i];
		free(e->type);
		free(e->stream);
		free(e->created);
		json_decref(e->data);
		json_decref(e->metadata);
	}
	free(page->events);
	*page = (struct pv_es_page){.next = -1};
}

void pv_es_stream_list_clear(struct pv_es_stream_list *list)
{
	if (!list)
		return;
	for (size_t i = 0; i < list->count; i++) {
		free(list->streams[i].name);
		free(list->streams[i].updated);
	}
	free(list->streams);
	list->streams = NULL;
	list->count = 0;
}

void pv_es_options_from_config(const struct pv_config *cfg, struct pv_es_options *o)
{
	const char *ca = pv_config_str(cfg, "eventstore", "ca_file");

	memset(o, 0, sizeof *o);
	o->backend = pv_config_str(cfg, "eventstore", "backend");
	o->url = pv_config_str(cfg, "eventstore", "url");
	o->username = pv_config_str(cfg, "eventstore", "username");
	o->password = pv_config_str(cfg, "eventstore", "password");
	o->ca_file = *ca ? ca : NULL;
	o->timeout_ms = (long)pv_config_int(cfg, "eventstore", "timeout_ms");
	o->pg_conninfo = pv_config_str(cfg, "postgres", "conninfo");
}
