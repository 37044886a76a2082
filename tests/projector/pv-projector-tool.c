/* Test equipment for the projector tests, configured like the programs
 * (PHOTOVOTE_* environment variables, no file):
 *
 *   pv-projector-tool append         appends each line of stdin (a broker
 *                                    envelope: event_id, type, data,
 *                                    metadata) to stream Election-<data's
 *                                    election_id>, runs of one election in
 *                                    one append of up to 2000 events
 *   pv-projector-tool fold ID VIEW   folds stream Election-ID with the
 *                                    domain and prints the view (full, owner,
 *                                    public) or "results", one line
 *   pv-projector-tool view ID VIEW   the same from the Cosmos DB documents
 *                                    (lib/projection.h)
 *   pv-projector-tool docs ID        every document of the election's
 *                                    partition without Cosmos DB's system
 *                                    properties, sorted by id, one a line
 *   pv-projector-tool rebuild ID     rebuilds the election's documents by
 *                                    replaying its stream
 *   pv-projector-tool upsert-loop FROM [THREADS]
 *                                    the benchmark's baseline: reads every
 *                                    document of database FROM's container,
 *                                    then upserts them into the configured
 *                                    database from THREADS threads (default:
 *                                    [projector] writers), each with a client
 *                                    of its own and nothing else to do;
 *                                    prints "N requests in S s, T threads"
 */
#define _POSIX_C_SOURCE 200809L

#include "config.h"
#include "options.h"
#include "cosmos.h"
#include "domain/election.h"
#include "eventstore.h"
#include "log.h"
#include "projection.h"
#include "thread.h"
#include "xalloc.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define APPEND_MAX 2000

static struct pv_config *cfg;

static void die(const char *what, const struct pv_error *err)
{
	fprintf(stderr, "pv-projector-tool: %s: %s\n", what, err->msg);
	exit(1);
}

static struct pv_es *open_store(void)
{
	struct pv_es_options o;
	struct pv_error err;
	struct pv_es *es;
	pv_es_options_from_config(cfg, &o);
	if (pv_es_open(&o, &es, &err) != PV_OK)
		die("event store", &err);
	return es;
}

/* database: NULL for the configured one. */
static struct pv_cosmos *open_cosmos_db(const char *database)
{
	struct pv_cosmos_options o;
	struct pv_cosmos *c;
	struct pv_error err;

	pv_cosmos_options_from_config(cfg, &o);
	if (database)
		o.database = database;
	o.emulator_quirks = pv_config_bool(cfg, "cosmos", "emulator_quirks");
	if (pv_cosmos_open(&o, &c, &err) != PV_OK)
		die("cosmos", &err);
	return c;
}

static struct pv_cosmos *open_cosmos(void)
{
	return open_cosmos_db(NULL);
}

struct pending {
	char stream[64];
	struct pv_es_new_event ev[APPEND_MAX];
	json_t *lines[APPEND_MAX];
	size_t n;
};

static void flush(struct pv_es *es, struct pending *p)
{
	struct pv_error err;
	int64_t version;

	if (p->n && pv_es_append(es, p->stream, PV_ES_ANY, p->ev, p->n, &version, &err) != PV_OK)
		die(p->stream, &err);
	for (size_t i = 0; i < p->n; i++)
		json_decref(p->lines[i]);
	p->n = 0;
}

static int append(void)
{
	struct pv_es *es = open_store();
	struct pending *p = pv_xcalloc(1, sizeof *p);
	char *line = NULL;
	size_t cap = 0, total = 0;

	while (getline(&line, &cap, stdin) > 0) {
		json_error_t jerr;
		json_t *j = json_loads(line, 0, &jerr);
		const char *eid = json_string_value(
			json_object_get(json_object_get(j, "data"), "election_id"));
		char stream[64];

		if (!j || !eid || !json_is_string(json_object_get(j, "event_id")) ||
		    !json_is_string(json_object_get(j, "type"))) {
			fprintf(stderr, "pv-projector-tool: line %zu is not an envelope\n",
				total + 1);
			return 1;
		}
		snprintf(stream, sizeof stream, "Election-%s", eid);
		if (p->n == APPEND_MAX || (p->n && strcmp(stream, p->stream) != 0))
			flush(es, p);
		snprintf(p->stream, sizeof p->stream, "%s", stream);
		p->lines[p->n] = j;
		p->ev[p->n] = (struct pv_es_new_event){
			.id = json_string_value(json_object_get(j, "event_id")),
			.type = json_string_value(json_object_get(j, "type")),
			.data = json_object_get(j, "data"),
			.metadata = json_object_get(j, "metadata"),
		};
		p->n++;
		total++;
	}
	flush(es, p);
	free(line);
	free(p);
	pv_es_close(es);
	fprintf(stderr, "pv-projector-tool: appended %zu events\n", total);
	return 0;
}

static int view_of(const char *word, enum pv_election_view *view)
{
	static const struct {
		const char *word;
		enum pv_election_view view;
	} views[] = {{"full", PV_VIEW_FULL}, {"owner", PV_VIEW_OWNER}, {"public", PV_VIEW_PUBLIC}};

	for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) {
		if (strcmp(word, views[i].word) == 0) {
			*view = views[i].view;
			return 0;
		}
	}
	if (strcmp(word, "results") == 0)
		return 1;
	fprintf(stderr, "pv-projector-tool: unknown view %s\n", word);
	exit(2);
}

static void print(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	if (!s)
		pv_oom("json_dumps", 0);
	puts(s);
	free(s);
}

static int fold(const char *eid, const char *word)
{
	struct pv_es *es = open_store();
	struct pv_election *e = pv_election_new(eid);
	char stream[64];
	int64_t from = 0;
	enum pv_election_view view = PV_VIEW_FULL;
	bool results = view_of(word, &view) == 1;
	struct pv_error err;
	json_t *out;

	snprintf(stream, sizeof stream, "Election-%s", eid);
	for (;;) {
		struct pv_es_page page = {0};
		enum pv_err rc = pv_es_read_stream(es, stream, from, 1000, false, &page, &err);
		bool end;

		if (rc == PV_ERR_NOT_FOUND)
			break;
		if (rc != PV_OK)
			die(stream, &err);
		for (size_t i = 0; i < page.count; i++) {
			const struct pv_es_event *r = &page.events[i];
			struct pv_event ev;
			struct pv_event_meta meta;

			if (pv_event_meta_from_json(r->metadata, &meta, &err) != PV_OK)
				die("metadata", &err);
			if (pv_event_init(&ev, r->id,
					  (enum pv_event_type)pv_event_type_parse(r->type),
					  json_incref(r->data), &meta, &err) != PV_OK ||
			    pv_election_apply(e, &ev, r->number, &err) != PV_OK)
				fprintf(stderr, "pv-projector-tool: event %" PRId64 ": %s\n",
					r->number, err.msg);
			pv_event_clear(&ev);
			pv_event_meta_clear(&meta);
			from = r->number + 1;
		}
		end = page.count == 0 || page.end_of_stream;
		pv_es_page_clear(&page);
		if (end)
			break;
	}
	out = results ? pv_election_results(e) : pv_election_to_json(e, view);
	print(out);
	json_decref(out);
	pv_election_free(e);
	pv_es_close(es);
	return 0;
}

static int view(const char *eid, const char *word)
{
	struct pv_cosmos *c = open_cosmos();
	enum pv_election_view v = PV_VIEW_FULL;
	bool results = view_of(word, &v) == 1;
	struct pv_error err;
	json_t *out;
	enum pv_err rc;

	if (results)
		rc = pv_projection_answer(c, eid, NULL, PV_ANSWER_RESULTS, &out, NULL, &err);
	else
		rc = pv_projection_view(c, eid, v, &out, NULL, &err);
	if (rc != PV_OK)
		die(eid, &err);
	print(out);
	json_decref(out);
	pv_cosmos_close(c);
	return 0;
}

/* Every document a query finds, system properties stripped.  eid: the
 * election's partition (@e in sql), or NULL for the whole container. */
static json_t *query_all(struct pv_cosmos *c, const char *sql, const char *eid)
{
	json_t *params = eid ? json_pack("{s:s}", "@e", eid) : NULL, *all = json_array(), *d;
	char *cont = NULL;
	struct pv_error err;
	size_t i;

	if (!all || (eid && !params)) {
		fprintf(stderr, "pv-projector-tool: json_array or json_pack: out of memory\n");
		exit(1);
	}
	do {
		json_t *page;
		char *next = NULL;

		if (pv_cosmos_query(c, sql, params, eid, 0, cont, &page, &next, &err) != PV_OK)
			die(eid ? eid : "read the documents", &err);
		free(cont);
		cont = next;
		if (json_array_extend(all, page) != 0) {
			fprintf(stderr, "pv-projector-tool: json_array_extend: out of memory\n");
			exit(1);
		}
		json_decref(page);
	} while (cont);
	json_decref(params);
	json_array_foreach(all, i, d) pv_cosmos_strip_system(d);
	return all;
}

static int by_id(const void *a, const void *b)
{
	const char *x = json_string_value(json_object_get(*(json_t *const *)a, "id"));
	const char *y = json_string_value(json_object_get(*(json_t *const *)b, "id"));

	return strcmp(x ? x : "", y ? y : "");
}

static int docs(const char *eid)
{
	struct pv_cosmos *c = open_cosmos();
	json_t *all = query_all(c, "SELECT * FROM c WHERE c.election_id = @e", eid), *d;
	json_t **v;
	size_t i, n = json_array_size(all);

	v = pv_xcalloc(n ? n : 1, sizeof *v);
	json_array_foreach(all, i, d) v[i] = d;
	qsort(v, n, sizeof *v, by_id);
	for (i = 0; i < n; i++)
		print(v[i]);
	free(v);
	json_decref(all);
	pv_cosmos_close(c);
	return 0;
}

static int rebuild(const char *eid)
{
	struct pv_es *es = open_store();
	struct pv_cosmos *c = open_cosmos();
	struct pv_projection *p = pv_projection_new(
		c, es, (size_t)pv_config_int(cfg, "projector", "max_document_bytes"), 0);
	struct pv_error err;

	if (pv_projection_rebuild(p, eid, &err) != PV_OK)
		die(eid, &err);
	pv_projection_free(p);
	pv_cosmos_close(c);
	pv_es_close(es);
	return 0;
}

struct upserter {
	json_t *docs; /* borrowed; this thread writes every n-th from first */
	size_t first, n;
	struct pv_cosmos *c;
	struct pv_error err;
	bool ok;
	pthread_t thread;
};

static void *upsert_some(void *arg)
{
	struct upserter *u = arg;
	size_t i;

	u->ok = true;
	for (i = u->first; i < json_array_size(u->docs); i += u->n) {
		json_t *d = json_array_get(u->docs, i);
		const char *pk = json_string_value(json_object_get(d, "election_id"));

		if (pv_cosmos_upsert(u->c, pk ? pk : "", d, NULL, NULL, NULL, &u->err) != PV_OK) {
			u->ok = false;
			break;
		}
	}
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int upsert_loop(const char *from, const char *threads_s)
{
	struct pv_cosmos *src = open_cosmos_db(from);
	json_t *docs = query_all(src, "SELECT * FROM c", NULL);
	struct upserter *u;
	unsigned long requests = 0;
	char *end = "";
	long threads = threads_s ? strtol(threads_s, &end, 10)
				 : pv_config_int(cfg, "projector", "writers");
	double started, elapsed;
	size_t i;
	int rc = 0;

	pv_cosmos_close(src);
	if (json_array_size(docs) == 0) {
		fprintf(stderr, "pv-projector-tool: database %s has no documents to upsert\n",
			from);
		json_decref(docs);
		return 1;
	}
	if (*end || threads < 1 || threads > 64) {
		fprintf(stderr, "pv-projector-tool: THREADS: 1 to 64, not \"%s\"\n",
			threads_s ? threads_s : "");
		json_decref(docs);
		return 2;
	}
	u = pv_xcalloc((size_t)threads, sizeof *u);
	for (i = 0; i < (size_t)threads; i++)
		u[i] = (struct upserter){
			.docs = docs, .first = i, .n = (size_t)threads, .c = open_cosmos()};
	started = now_s();
	for (i = 0; i < (size_t)threads; i++)
		pv_thread_start(&u[i].thread, upsert_some, &u[i], "pv-projector-tool",
				"an upserter");
	for (i = 0; i < (size_t)threads; i++)
		pthread_join(u[i].thread, NULL);
	elapsed = now_s() - started;
	for (i = 0; i < (size_t)threads; i++) {
		if (!u[i].ok) {
			fprintf(stderr, "pv-projector-tool: upsert: %s\n", u[i].err.msg);
			rc = 1;
		}
		requests += pv_cosmos_request_count(u[i].c);
		pv_cosmos_close(u[i].c);
	}
	if (rc == 0)
		printf("%lu requests in %.3f s, %ld threads\n",
		       (unsigned long)json_array_size(docs), elapsed, threads);
	fprintf(stderr,
		"pv-projector-tool: %lu Cosmos DB requests sent, retries and opening included\n",
		requests);
	free(u);
	json_decref(docs);
	return rc;
}

int main(int argc, char **argv)
{
	struct pv_error err;
	int rc = 2;

	pv_log_init("pv-projector-tool", PV_LOG_STDERR, PV_LOG_WARNING);
	if (pv_config_load(NULL, NULL, &cfg, &err) != PV_OK)
		die("config", &err);
	if (argc == 2 && strcmp(argv[1], "append") == 0)
		rc = append();
	else if (argc == 4 && strcmp(argv[1], "fold") == 0)
		rc = fold(argv[2], argv[3]);
	else if (argc == 4 && strcmp(argv[1], "view") == 0)
		rc = view(argv[2], argv[3]);
	else if (argc == 3 && strcmp(argv[1], "docs") == 0)
		rc = docs(argv[2]);
	else if (argc == 3 && strcmp(argv[1], "rebuild") == 0)
		rc = rebuild(argv[2]);
	else if ((argc == 3 || argc == 4) && strcmp(argv[1], "upsert-loop") == 0)
		rc = upsert_loop(argv[2], argc == 4 ? argv[3] : NULL);
	else
		fprintf(stderr, "usage: pv-projector-tool append | fold ID VIEW | view ID VIEW | "
				"docs ID | rebuild ID | upsert-loop FROM [THREADS]\n");
	pv_config_free(cfg);
	return rc;
}
