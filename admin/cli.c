/* photovote-admin's scriptable subcommands (cli.h).
 *
 * Output is one record a line: tab-separated fields in text mode, one JSON
 * object a line with --json.  Every field that came from a server is
 * escaped (escape.h) before it is printed, so tabs and newlines inside a
 * field cannot split a record and no control sequence reaches a terminal. */
#define _POSIX_C_SOURCE 200809L

#include "cli.h"

#include "audit_query.h"
#include "auth_token.h"
#include "dead_letters.h"
#include "escape.h"
#include "projection.h"
#include "rebuild.h"
#include "xalloc.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EVENTS_PAGE 500
#define DEAD_LETTER_BODY 200
#define DEAD_LETTERS_DEFAULT 10

void pv_cli_usage(FILE *out)
{
	fprintf(out,
		"usage: photovote-admin [-c FILE] [COMMAND [ARG...]]\n"
		"  -c, --config FILE   configuration (default $PHOTOVOTE_CONFIG, or\n"
		"                      /etc/photovote/photovote.conf if it exists)\n"
		"  -h, --help          this text\n"
		"commands:\n"
		"  console                          the interactive console (the default on a\n"
		"                                   terminal)\n"
		"  streams [--json]                 every stream and its version\n"
		"  events STREAM [--from N] [--count N] [--json]\n"
		"                                   the events of a stream\n"
		"  status [--json]                  queue depths, dead letters, feed head, "
		"checkpoint, lag\n"
		"  dead-letters [--count N] [--json]\n"
		"                                   peek at dead letters (they stay queued)\n"
		"  dead-letters requeue [--id EVENT_ID] [--count N] [--json]\n"
		"                                   move dead letters back to the appender: each\n"
		"                                   is republished with confirms and removed only\n"
		"                                   once the broker confirmed it\n"
		"  dead-letters purge [--id EVENT_ID] [--json] --yes\n"
		"                                   delete dead letters for good (without --yes:\n"
		"                                   say how many, delete nothing, exit 2)\n"
		"  rebuild ELECTION_ID | --all [--restart] [--json]\n"
		"                                   rebuild Cosmos DB documents by replay (--all\n"
		"                                   resumes where an earlier run stopped)\n"
		"  rebuild --all --into CONTAINER   build every election into another container\n"
		"  rebuild --switch CONTAINER       serve the read model from that container\n"
		"  rebuild --drop CONTAINER --yes   delete a container not in use\n"
		"  audit [--user U] [--election ID] [--type T] [--status appended|rejected]\n"
		"        [--since TIME] [--until TIME] [--correlation-id C] [--count N]\n"
		"        [--before CURSOR] [--json] the appender's verdicts, newest first\n"
		"  token create USER [--admin] [--json]\n"
		"                                   create an API token (printed once)\n"
		"  token revoke USER [--json]       revoke every token of USER\n"
		"exit status: 0 ok, 1 server or configuration error, 2 usage, 130 SIGINT,\n"
		"143 SIGTERM\n");
}

int pv_cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("photovote-admin: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(photovote-admin --help for usage)\n", stderr);
	return PV_EXIT_USAGE;
}

int pv_cli_fail(const char *what, const struct pv_error *err)
{
	char *msg = pv_escape_str(err->msg);

	fprintf(stderr, "photovote-admin: %s: %s\n", what, msg);
	free(msg);
	return PV_EXIT_SERVER;
}

/* ---- options ---- */

static bool parse_number(const char *s, long long min, long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min)
		return false;
	*out = v;
	return true;
}

enum {
	OPT_JSON = 256,
	OPT_FROM,
	OPT_COUNT,
	OPT_ALL,
	OPT_ADMIN,
	OPT_ID,
	OPT_YES,
	OPT_RESTART,
	/* options with a text value, kept in opts.text[] */
	OPT_USER,
	OPT_ELECTION,
	OPT_TYPE,
	OPT_STATUS,
	OPT_SINCE,
	OPT_UNTIL,
	OPT_CORRELATION,
	OPT_BEFORE,
	OPT_INTO,
	OPT_SWITCH,
	OPT_DROP,
	OPT__END
};
#define OPT_TEXT_FIRST OPT_USER
#define TEXT(o, opt) ((o)->text[(opt)-OPT_TEXT_FIRST])

struct opts {
	const char *arg; /* the positional argument, NULL when none */
	const char *id;  /* --id */
	bool json, all, admin, yes, restart;
	bool has_from, has_count;
	long long from, count;
	const char *text[OPT__END - OPT_TEXT_FIRST]; /* --user ... --drop, NULL when absent */
};

/* Parses the options `allowed` (OPT_* bits as 1 << (opt - 256)) of a
 * subcommand and at most `positional` (0 or 1) other argument. */
static int parse_opts(int argc, char **argv, unsigned allowed, int positional, struct opts *o)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, OPT_JSON},
		{"from", required_argument, NULL, OPT_FROM},
		{"count", required_argument, NULL, OPT_COUNT},
		{"all", no_argument, NULL, OPT_ALL},
		{"admin", no_argument, NULL, OPT_ADMIN},
		{"id", required_argument, NULL, OPT_ID},
		{"yes", no_argument, NULL, OPT_YES},
		{"restart", no_argument, NULL, OPT_RESTART},
		{"user", required_argument, NULL, OPT_USER},
		{"election", required_argument, NULL, OPT_ELECTION},
		{"type", required_argument, NULL, OPT_TYPE},
		{"status", required_argument, NULL, OPT_STATUS},
		{"since", required_argument, NULL, OPT_SINCE},
		{"until", required_argument, NULL, OPT_UNTIL},
		{"correlation-id", required_argument, NULL, OPT_CORRELATION},
		{"before", required_argument, NULL, OPT_BEFORE},
		{"into", required_argument, NULL, OPT_INTO},
		{"switch", required_argument, NULL, OPT_SWITCH},
		{"drop", required_argument, NULL, OPT_DROP},
		{NULL, 0, NULL, 0},
	};
	int opt;

	memset(o, 0, sizeof *o);
	optind = 0; /* glibc: start over on this argv */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		if (opt == '?' || opt == ':' || !(allowed & (1u << (opt - 256)))) {
			const char *bad = argv[optind - 1];

			if (opt == ':')
				return pv_cli_usage_error("%s: %s needs a value", argv[0], bad);
			return pv_cli_usage_error("%s: unknown option %s", argv[0], bad);
		}
		if (opt >= OPT_TEXT_FIRST) {
			if (!*optarg)
				return pv_cli_usage_error("%s: %s: an empty value", argv[0],
							  argv[optind - 1]);
			TEXT(o, opt) = optarg;
			continue;
		}
		switch (opt) {
		case OPT_JSON: o->json = true; break;
		case OPT_ALL: o->all = true; break;
		case OPT_ADMIN: o->admin = true; break;
		case OPT_YES: o->yes = true; break;
		case OPT_RESTART: o->restart = true; break;
		case OPT_ID:
			if (!*optarg)
				return pv_cli_usage_error("%s: --id: an empty message id", argv[0]);
			o->id = optarg;
			break;
		case OPT_FROM:
			o->has_from = true;
			if (!parse_number(optarg, 0, &o->from))
				return pv_cli_usage_error("%s: --from: \"%s\" is not a number >= 0",
							  argv[0], optarg);
			break;
		case OPT_COUNT:
			o->has_count = true;
			if (!parse_number(optarg, 1, &o->count))
				return pv_cli_usage_error(
					"%s: --count: \"%s\" is not a number >= 1", argv[0],
					optarg);
			break;
		}
	}
	if (positional && optind < argc)
		o->arg = argv[optind++];
	if (optind < argc)
		return pv_cli_usage_error("%s: unexpected argument \"%s\"", argv[0], argv[optind]);
	return PV_EXIT_OK;
}

#define ALLOW(x) (1u << ((x)-256))
_Static_assert(OPT__END - 256 <= 32, "the options fit an unsigned mask");

/* ---- printing ---- */

static void fputs_escaped(const char *s, FILE *out)
{
	char *e = pv_escape_str(s);

	fputs(e, out);
	free(e);
}

static void print_escaped(const char *s)
{
	fputs_escaped(s, stdout);
}

/* One JSON line (the object is consumed). */
static void print_json(json_t *o)
{
	char *text, *safe;

	if (!o)
		pv_oom("json_pack", 0);
	text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	if (!text)
		pv_oom("json_dumps", 0);
	safe = pv_escape_json(text);
	puts(safe);
	free(safe);
	free(text);
	json_decref(o);
}

/* ---- streams ---- */

static int list_streams(struct pv_session *s, const char *category, struct pv_es_stream_list *list,
			const char *what)
{
	struct pv_error err;
	struct pv_es *es = NULL;

	if (pv_session_es(s, &es, &err) != PV_OK)
		return pv_cli_fail(what, &err);
	if (pv_es_list_streams(es, category, list, &err) != PV_OK) {
		pv_session_es_failed(s, &err);
		return pv_cli_fail(what, &err);
	}
	return PV_EXIT_OK;
}

int pv_cli_streams(struct pv_session *s, int argc, char **argv)
{
	struct pv_es_stream_list list = {0};
	struct opts o;
	int rc = parse_opts(argc, argv, ALLOW(OPT_JSON), 0, &o);

	if (rc == PV_EXIT_OK)
		rc = list_streams(s, NULL, &list, "streams");
	if (rc != PV_EXIT_OK)
		return rc;
	for (size_t i = 0; i < list.count; i++) {
		const struct pv_es_stream_info *si = &list.streams[i];

		if (o.json) {
			print_json(json_pack("{s:s?, s:I}", "name", si->name, "version",
					     (json_int_t)si->version));
			continue;
		}
		print_escaped(si->name);
		printf("\t%" PRId64 "\n", si->version);
	}
	pv_es_stream_list_clear(&list);
	return PV_EXIT_OK;
}

/* ---- events ---- */

static void print_event(const struct pv_es_event *ev, bool json)
{
	char *data;

	if (json) {
		print_json(json_pack("{s:I, s:s?, s:s, s:s?, s:O?, s:O?}", "number",
				     (json_int_t)ev->number, "type", ev->type, "id", ev->id,
				     "created", ev->created, "data", ev->data, "metadata",
				     ev->metadata));
		return;
	}
	data = ev->data ? json_dumps(ev->data, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	printf("%" PRId64 "\t", ev->number);
	print_escaped(ev->type);
	putchar('\t');
	print_escaped(ev->id);
	putchar('\t');
	print_escaped(ev->created);
	putchar('\t');
	print_escaped(data ? data : "null");
	putchar('\n');
	free(data);
}

int pv_cli_events(struct pv_session *s, int argc, char **argv)
{
	struct pv_error err;
	struct pv_es *es = NULL;
	struct opts o;
	int64_t from;
	long long left;
	int rc =
		parse_opts(argc, argv, ALLOW(OPT_JSON) | ALLOW(OPT_FROM) | ALLOW(OPT_COUNT), 1, &o);

	if (rc != PV_EXIT_OK)
		return rc;
	if (!o.arg)
		return pv_cli_usage_error("events: which stream? (events STREAM)");
	if (pv_session_es(s, &es, &err) != PV_OK)
		return pv_cli_fail("events", &err);
	from = o.from;
	left = o.has_count ? o.count : -1;
	while (left != 0) {
		struct pv_es_page page = {0};
		size_t want = left < 0 || left > EVENTS_PAGE ? EVENTS_PAGE : (size_t)left;
		bool end;

		if (pv_es_read_stream(es, o.arg, from, want, false, &page, &err) != PV_OK) {
			pv_session_es_failed(s, &err);
			return pv_cli_fail("events", &err);
		}
		for (size_t i = 0; i < page.count; i++)
			print_event(&page.events[i], o.json);
		if (left > 0)
			left -= (long long)page.count;
		end = page.count == 0 || page.end_of_stream;
		if (page.count)
			from = page.events[page.count - 1].number + 1;
		pv_es_page_clear(&page);
		if (end)
			break;
	}
	return PV_EXIT_OK;
}

/* ---- audit ---- */

/* A field of an audit row as text ("-" when absent). */
static const char *row_text(const json_t *row, const char *key, char *num, size_t size)
{
	const json_t *v = json_object_get(row, key);

	if (json_is_integer(v)) {
		snprintf(num, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return num;
	}
	return json_is_string(v) ? json_string_value(v) : "-";
}

int pv_cli_audit(struct pv_session *s, int argc, char **argv)
{
	/* Text columns, in order. */
	static const char *const shown[] = {"recorded",       "status",   "type",
					    "stream",         "number",   "user",
					    "correlation_id", "event_id", "reason"};
	struct pv_audit_filter f = {0};
	struct pv_error err;
	PGconn *conn = NULL;
	json_t *rows, *row;
	struct opts o;
	bool more;
	size_t i;
	int rc = parse_opts(argc, argv,
			    ALLOW(OPT_JSON) | ALLOW(OPT_COUNT) | ALLOW(OPT_USER) |
				    ALLOW(OPT_ELECTION) | ALLOW(OPT_TYPE) | ALLOW(OPT_STATUS) |
				    ALLOW(OPT_SINCE) | ALLOW(OPT_UNTIL) | ALLOW(OPT_CORRELATION) |
				    ALLOW(OPT_BEFORE),
			    0, &o);

	if (rc != PV_EXIT_OK)
		return rc;
	f.user = TEXT(&o, OPT_USER);
	f.election_id = TEXT(&o, OPT_ELECTION);
	f.type = TEXT(&o, OPT_TYPE);
	f.status = TEXT(&o, OPT_STATUS);
	f.since = TEXT(&o, OPT_SINCE);
	f.until = TEXT(&o, OPT_UNTIL);
	f.correlation_id = TEXT(&o, OPT_CORRELATION);
	f.before = TEXT(&o, OPT_BEFORE);
	f.limit = o.has_count ? (size_t)o.count : 0;
	if (pv_audit_filter_check(&f, &err) != PV_OK) {
		char *e = pv_escape_str(err.msg);

		rc = pv_cli_usage_error("audit: %s", e);
		free(e);
		return rc;
	}
	if (pv_session_pg(s, &conn, &err) != PV_OK)
		return pv_cli_fail("audit", &err);
	if (pv_audit_query(conn, &f, &rows, &more, &err) != PV_OK) {
		if (err.code == PV_ERR_INVALID) {
			/* PostgreSQL could not read a time of --since or --until. */
			char *e = pv_escape_str(err.msg);

			rc = pv_cli_usage_error("audit: %s", e);
			free(e);
			return rc;
		}
		pv_session_pg_failed(s, &err);
		return pv_cli_fail("audit", &err);
	}
	json_array_foreach(rows, i, row)
	{
		char num[32];

		if (o.json) {
			print_json(json_incref(row));
			continue;
		}
		for (size_t c = 0; c < sizeof shown / sizeof shown[0]; c++) {
			if (c)
				putchar('\t');
			print_escaped(row_text(row, shown[c], num, sizeof num));
		}
		putchar('\n');
	}
	/* The next page's command, for a person; scripts take the last
	 * row's "cursor" from --json. */
	if (more && !o.json && json_array_size(rows) > 0) {
		row = json_array_get(rows, json_array_size(rows) - 1);
		fputs("photovote-admin: audit: more rows: add --before ", stderr);
		fputs_escaped(json_string_value(json_object_get(row, "cursor")), stderr);
		fputc('\n', stderr);
	}
	json_decref(rows);
	return PV_EXIT_OK;
}

/* ---- status ---- */

static const char *text_of(const json_t *row, const char *key)
{
	const char *v = json_string_value(json_object_get(row, key));

	return v ? v : "";
}

/* "parked_elections: N", then one line each:
 * "parked: ID event N position P status S since T: REASON". */
static void print_parked(const json_t *parked)
{
	const json_t *row;
	size_t i;

	printf("parked_elections: %zu\n", json_array_size(parked));
	json_array_foreach(parked, i, row)
	{
		fputs("parked: ", stdout);
		print_escaped(text_of(row, "election_id"));
		printf(" event %" JSON_INTEGER_FORMAT " position %" JSON_INTEGER_FORMAT
		       " status %" JSON_INTEGER_FORMAT " since ",
		       json_integer_value(json_object_get(row, "event_number")),
		       json_integer_value(json_object_get(row, "position")),
		       json_integer_value(json_object_get(row, "status")));
		print_escaped(text_of(row, "parked_at"));
		fputs(": ", stdout);
		print_escaped(text_of(row, "reason"));
		putchar('\n');
	}
}

int pv_cli_status(struct pv_session *s, int argc, char **argv)
{
	struct pv_status st;
	struct pv_error err, parked_err;
	struct opts o;
	json_t *parked = NULL;
	enum pv_err parked_rc;
	int rc = parse_opts(argc, argv, ALLOW(OPT_JSON), 0, &o);

	if (rc != PV_EXIT_OK)
		return rc;
	pv_session_status(s, &st, &err);
	parked_rc = st.checkpoint_rc == PV_OK ? pv_session_parked(s, &parked, &parked_err)
					      : PV_ERR_UNAVAILABLE;
	if (o.json) {
		json_t *j = json_pack("{s:s}", "projector_feed", pv_session_feed(s));

		if (!j)
			pv_oom("json_pack", 0);
		if (st.broker_rc == PV_OK) {
			json_object_set_new(j, "appender_queue_ready",
					    json_integer(st.queue_ready));
			json_object_set_new(j, "appender_queue_consumers",
					    json_integer(st.queue_consumers));
			json_object_set_new(j, "dead_letters", json_integer(st.dead_letters));
		}
		if (st.store_rc == PV_OK)
			json_object_set_new(j, "store_head", json_integer(st.head));
		if (st.checkpoint_rc == PV_OK)
			json_object_set_new(j, "projector_checkpoint", json_integer(st.checkpoint));
		if (st.store_rc == PV_OK && st.checkpoint_rc == PV_OK) {
			json_object_set_new(j, "projector_lag", json_integer(st.lag));
			json_object_set_new(j, "projector_lag_capped", json_boolean(st.lag_capped));
		}
		if (parked_rc == PV_OK)
			json_object_set(j, "parked_elections", parked);
		print_json(j);
	} else {
		printf("projector_feed: ");
		print_escaped(pv_session_feed(s));
		putchar('\n');
		if (st.broker_rc == PV_OK)
			printf("appender_queue_ready: %lu\nappender_queue_consumers: %lu\n"
			       "dead_letters: %lu\n",
			       st.queue_ready, st.queue_consumers, st.dead_letters);
		if (st.store_rc == PV_OK)
			printf("store_head: %" PRId64 "\n", st.head);
		if (st.checkpoint_rc == PV_OK)
			printf("projector_checkpoint: %" PRId64 "\n", st.checkpoint);
		if (st.store_rc == PV_OK && st.checkpoint_rc == PV_OK)
			printf("projector_lag: %lu%s\n", st.lag, st.lag_capped ? "+" : "");
		if (parked_rc == PV_OK)
			print_parked(parked);
	}
	rc = PV_EXIT_OK;
	if (st.broker_rc != PV_OK)
		rc = pv_cli_fail("status", &st.broker_err);
	if (st.store_rc != PV_OK)
		rc = pv_cli_fail("status", &st.store_err);
	if (st.checkpoint_rc != PV_OK)
		rc = pv_cli_fail("status", &st.checkpoint_err);
	else if (parked_rc != PV_OK)
		rc = pv_cli_fail("status", &parked_err);
	json_decref(parked);
	return rc;
}

/* ---- dead letters ---- */

/* The outcome of a requeue or purge: the count on stdout, then what went
 * wrong on stderr. */
static int dead_letters_done(const char *cmd, const char *verb, bool json,
			     const struct pv_dl_op *op, enum pv_err rc, const struct pv_error *err)
{
	if (json) {
		json_t *j = json_pack("{s:I}", verb, (json_int_t)op->done);

		if (j && rc == PV_OK)
			json_object_set_new(j, "dead_letters_left",
					    json_integer((json_int_t)op->left));
		if (j && op->no_key)
			json_object_set_new(j, "no_routing_key",
					    json_integer((json_int_t)op->no_key));
		print_json(j);
	} else if (rc == PV_OK) {
		printf("%lu dead letter(s) %s, %lu left in the dead-letter queue\n", op->done, verb,
		       op->left);
	} else {
		printf("%lu dead letter(s) %s before the failure\n", op->done, verb);
	}
	if (rc != PV_OK)
		return pv_cli_fail(cmd, err);
	if (op->no_key) {
		fprintf(stderr,
			"photovote-admin: %s: %lu dead letter(s) left queued: no routing key (none "
			"recorded, no data.election_id in the body)\n",
			cmd, op->no_key);
		return PV_EXIT_SERVER;
	}
	return PV_EXIT_OK;
}

/* dead-letters requeue, or purge (which only counts without --yes). */
static int dead_letters_act(struct pv_session *s, int argc, char **argv, bool purge)
{
	static char requeue_name[] = "dead-letters requeue", purge_name[] = "dead-letters purge";
	struct pv_dl_op op = {.action = purge ? PV_DL_COUNT : PV_DL_REQUEUE};
	struct pv_error err;
	struct opts o;
	enum pv_err rc;
	int prc;

	argv[0] = purge ? purge_name : requeue_name;
	prc = parse_opts(argc, argv,
			 ALLOW(OPT_JSON) | ALLOW(OPT_ID) | ALLOW(purge ? OPT_YES : OPT_COUNT), 0,
			 &o);
	if (prc != PV_EXIT_OK)
		return prc;
	op.id = o.id;
	op.max = o.has_count ? (unsigned long)o.count : 0;
	if (!purge || o.yes) {
		if (purge)
			op.action = PV_DL_PURGE;
		rc = pv_dead_letters_act(s, &op, &err);
		return dead_letters_done(argv[0], purge ? "deleted" : "requeued", o.json, &op, rc,
					 &err);
	}
	/* Refused, but first counted: the operator sees what --yes would do. */
	if (pv_dead_letters_act(s, &op, &err) != PV_OK)
		return pv_cli_fail(argv[0], &err);
	fprintf(stderr, "photovote-admin: %s: would delete %lu dead letter(s)", argv[0],
		op.matched);
	if (o.id) {
		fputs(" with message id ", stderr);
		fputs_escaped(o.id, stderr);
	}
	fputs("; nothing deleted: add --yes to delete them for good\n", stderr);
	return PV_EXIT_USAGE;
}

int pv_cli_dead_letters(struct pv_session *s, int argc, char **argv)
{
	struct pv_dead_letters dl;
	struct pv_error err;
	struct opts o;
	int rc;

	if (argc > 1 && (strcmp(argv[1], "requeue") == 0 || strcmp(argv[1], "purge") == 0))
		return dead_letters_act(s, argc - 1, argv + 1, strcmp(argv[1], "purge") == 0);
	rc = parse_opts(argc, argv, ALLOW(OPT_JSON) | ALLOW(OPT_COUNT), 0, &o);
	if (rc != PV_EXIT_OK)
		return rc;
	if (pv_session_dead_letters(s, o.has_count ? (size_t)o.count : DEAD_LETTERS_DEFAULT,
				    DEAD_LETTER_BODY, &dl, &err) != PV_OK)
		return pv_cli_fail("dead-letters", &err);
	for (size_t i = 0; i < dl.count; i++) {
		const struct pv_dead_letter *d = &dl.items[i];
		char *body = pv_escape_mem(d->body, d->body_kept);

		if (o.json) {
			/* body is the escaped text, so it is always valid UTF-8. */
			print_json(json_pack("{s:s?, s:s?, s:s?, s:b, s:I, s:s, s:b}", "message_id",
					     d->message_id, "type", d->type, "reason", d->reason,
					     "redelivered", d->redelivered, "body_bytes",
					     (json_int_t)d->body_len, "body", body,
					     "body_truncated", d->body_kept < d->body_len));
		} else {
			print_escaped(d->message_id ? d->message_id : "-");
			putchar('\t');
			print_escaped(d->type ? d->type : "-");
			putchar('\t');
			print_escaped(d->reason ? d->reason : "-");
			printf("\t%s", body);
			if (d->body_kept < d->body_len)
				printf("...(%zu bytes)", d->body_len);
			putchar('\n');
		}
		free(body);
	}
	pv_dead_letters_clear(&dl);
	return PV_EXIT_OK;
}

/* ---- rebuild ---- */

struct rebuild_ui {
	bool json, tty;
	bool drawn;     /* a progress line is on stderr */
	json_t *failed; /* --json: [{"election_id", "error"}] */
};

void pv_cli_clock(double seconds, char *out, size_t size)
{
	long t = seconds < 0 ? 0 : (long)(seconds + 0.5);

	if (t >= 3600)
		snprintf(out, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(out, size, "%ld:%02ld", t / 60, t % 60);
}

/* The progress line, redrawn in place on a terminal: at most 79 columns. */
static void rebuild_progress(void *ctx, const struct pv_rebuild_progress *p)
{
	struct rebuild_ui *ui = ctx;
	char elapsed[48], eta[48], line[200];

	if (!ui->tty)
		return;
	pv_cli_clock(p->elapsed, elapsed, sizeof elapsed);
	if (p->eta >= 0)
		pv_cli_clock(p->eta, eta, sizeof eta);
	else
		snprintf(eta, sizeof eta, "?");
	if (strcmp(p->phase, "catching up") == 0)
		snprintf(line, sizeof line, "catching up: feed position %" PRId64 ", %s elapsed",
			 p->caught_up_to, elapsed);
	else
		snprintf(line, sizeof line,
			 "%lu/%lu elections %" PRId64 "/%" PRId64 " events %.0f/s %s ETA %s",
			 p->elections_done + p->elections_failed, p->elections_total,
			 p->events_done, p->events_total, p->rate, elapsed, eta);
	fprintf(stderr, "\r%-79.79s", line);
	fflush(stderr);
	ui->drawn = true;
}

static void rebuild_line_end(struct rebuild_ui *ui)
{
	if (ui->drawn)
		fputc('\n', stderr);
	ui->drawn = false;
}

static void rebuild_failed(void *ctx, const char *id, const struct pv_error *err)
{
	struct rebuild_ui *ui = ctx;
	char *e = pv_escape_str(err->msg);

	rebuild_line_end(ui);
	fprintf(stderr, "photovote-admin: rebuild: election %s failed: %s\n", id, e);
	if (ui->json && json_array_append_new(ui->failed, json_pack("{s:s, s:s}", "election_id", id,
								    "error", e)) != 0)
		pv_oom("json_array_append_new", 0);
	free(e);
}

static void rebuild_summary(const struct pv_rebuild_options *ro,
			    const struct pv_rebuild_progress *p, struct rebuild_ui *ui,
			    enum pv_err rc)
{
	if (ui->json) {
		json_t *j = json_pack(
			"{s:s, s:s?, s:s?, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:I, s:I, s:b, s:b, "
			"s:O}",
			"outcome",
			rc != PV_OK    ? "failed"
			: p->cancelled ? "cancelled"
				       : "done",
			"election_id", ro->election_id, "into", ro->into, "elections_total",
			(json_int_t)p->elections_total, "elections_rebuilt",
			(json_int_t)p->elections_done, "elections_failed",
			(json_int_t)p->elections_failed, "events_total",
			(json_int_t)p->events_total, "events_done", (json_int_t)p->events_done,
			"seconds", p->elapsed, "events_per_second", p->rate, "cosmos_requests",
			(json_int_t)p->cosmos_requests, "documents", (json_int_t)p->documents,
			"resumed", p->resumed, "cancelled", p->cancelled, "failed", ui->failed);

		if (j && ro->into && p->caught_up_to >= 0)
			json_object_set_new(j, "caught_up_to", json_integer(p->caught_up_to));
		print_json(j);
		return;
	}
	if (ro->election_id) {
		if (rc == PV_OK && !p->elections_failed)
			printf("rebuilt %s\n", ro->election_id);
		return;
	}
	printf("%lu elections rebuilt, %lu failed, %lu left%s (%" PRId64
	       " events in %.1f s, %.0f events/s; %lu Cosmos DB requests for %lu documents)\n",
	       p->elections_done, p->elections_failed,
	       p->elections_total - p->elections_done - p->elections_failed,
	       p->resumed ? ", resumed" : "", p->events_done, p->elapsed, p->rate,
	       p->cosmos_requests, p->documents);
	if (ro->into && rc == PV_OK && !p->cancelled)
		printf("container %s is ready at feed position %" PRId64
		       "; switch with: photovote-admin rebuild --switch %s\n",
		       ro->into, p->caught_up_to, ro->into);
}

/* rebuild --switch CONTAINER, rebuild --drop CONTAINER --yes */
static int rebuild_container_command(struct pv_session *s, const struct opts *o)
{
	const char *sw = TEXT(o, OPT_SWITCH), *drop = TEXT(o, OPT_DROP);
	struct pv_error err;
	enum pv_err rc;

	if ((sw && drop) || o->all || o->arg || TEXT(o, OPT_INTO) || o->restart)
		return pv_cli_usage_error("rebuild: --switch CONTAINER or --drop CONTAINER, alone");
	if (sw) {
		if (o->yes)
			return pv_cli_usage_error("rebuild: --yes is for --drop");
		pv_cli_cancellable = 1;
		rc = pv_rebuild_switch(s, sw, &pv_cli_signal, &err);
		pv_cli_cancellable = 0;
		if (rc != PV_OK)
			return pv_cli_fail("rebuild --switch", &err);
		if (o->json)
			print_json(json_pack("{s:s}", "active", sw));
		else
			printf("the read model is served from %s\n", sw);
		return PV_EXIT_OK;
	}
	if (!o->yes) {
		fprintf(stderr, "photovote-admin: rebuild --drop: would delete container ");
		fputs_escaped(drop, stderr);
		fputs(" and every document in it; nothing deleted: add --yes\n", stderr);
		return PV_EXIT_USAGE;
	}
	if (pv_rebuild_drop(s, drop, &err) != PV_OK)
		return pv_cli_fail("rebuild --drop", &err);
	if (o->json)
		print_json(json_pack("{s:s}", "dropped", drop));
	else
		printf("container %s dropped\n", drop);
	return PV_EXIT_OK;
}

/* A container name as lib/cosmos.h takes it: 1..255 of [A-Za-z0-9._~:@-]. */
static bool container_name_ok(const char *name)
{
	size_t n = strlen(name);

	return n >= 1 && n <= 255 &&
	       strspn(name,
		      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~:@-") == n;
}

int pv_cli_rebuild(struct pv_session *s, int argc, char **argv)
{
	struct pv_rebuild_options ro = {0};
	struct rebuild_ui ui = {0};
	struct pv_rebuild_progress p;
	struct pv_error err;
	struct opts o;
	enum pv_err rc;
	int prc =
		parse_opts(argc, argv,
			   ALLOW(OPT_ALL) | ALLOW(OPT_JSON) | ALLOW(OPT_RESTART) | ALLOW(OPT_INTO) |
				   ALLOW(OPT_SWITCH) | ALLOW(OPT_DROP) | ALLOW(OPT_YES),
			   1, &o);

	if (prc != PV_EXIT_OK)
		return prc;
	for (int opt = OPT_INTO; opt <= OPT_DROP; opt++)
		if (TEXT(&o, opt) && !container_name_ok(TEXT(&o, opt))) {
			char *e = pv_escape_str(TEXT(&o, opt));

			prc = pv_cli_usage_error(
				"rebuild: \"%s\" is not a container name (1 to 255 "
				"of A-Z a-z 0-9 . _ ~ : @ -)",
				e);
			free(e);
			return prc;
		}
	if (TEXT(&o, OPT_SWITCH) || TEXT(&o, OPT_DROP))
		return rebuild_container_command(s, &o);
	if (o.all && o.arg)
		return pv_cli_usage_error("rebuild: an election id or --all, not both");
	if (!o.all && !o.arg)
		return pv_cli_usage_error(
			"rebuild: which election? (rebuild ELECTION_ID or --all)");
	if (o.arg && !pv_ulid_valid(o.arg))
		return pv_cli_usage_error("rebuild: \"%s\" is not an election id (a ULID)", o.arg);
	if (TEXT(&o, OPT_INTO) && !o.all)
		return pv_cli_usage_error("rebuild: --into builds every election: add --all");
	if (o.restart && !o.all)
		return pv_cli_usage_error("rebuild: --restart is for --all");
	if (o.yes)
		return pv_cli_usage_error("rebuild: --yes is for --drop");
	ro.election_id = o.arg;
	ro.into = TEXT(&o, OPT_INTO);
	ro.restart = o.restart;
	ro.progress = rebuild_progress;
	ro.failed = rebuild_failed;
	ro.ctx = &ui;
	ro.cancel = &pv_cli_signal;
	ui.json = o.json;
	ui.tty = isatty(STDERR_FILENO) == 1;
	ui.failed = json_array();
	if (!ui.failed)
		pv_oom("json_array", 0);
	pv_cli_cancellable = 1;
	rc = pv_rebuild_run(s, &ro, &p, &err);
	pv_cli_cancellable = 0;
	rebuild_line_end(&ui);
	rebuild_summary(&ro, &p, &ui, rc);
	json_decref(ui.failed);
	if (rc == PV_ERR_INVALID && !p.elections_total)
		return pv_cli_fail("rebuild", &err);
	if (rc != PV_OK) {
		pv_cli_fail("rebuild", &err);
		if (!ro.election_id && p.elections_total)
			fprintf(stderr,
				"photovote-admin: rebuild: stopped after %lu of %lu elections; run "
				"it again to resume\n",
				p.elections_done + p.elections_failed, p.elections_total);
		return PV_EXIT_SERVER;
	}
	if (p.cancelled) {
		fprintf(stderr,
			"photovote-admin: rebuild: cancelled after %lu of %lu elections; run it "
			"again to resume\n",
			p.elections_done + p.elections_failed, p.elections_total);
		return 128 + pv_cli_signal;
	}
	return p.elections_failed ? PV_EXIT_SERVER : PV_EXIT_OK;
}

/* ---- API tokens ---- */

int pv_cli_token(struct pv_session *s, int argc, char **argv)
{
	static char create_name[] = "token create", revoke_name[] = "token revoke";
	struct pv_error err;
	struct opts o;
	PGconn *conn = NULL;
	bool create;
	int rc;

	if (argc < 2 || (strcmp(argv[1], "create") != 0 && strcmp(argv[1], "revoke") != 0))
		return pv_cli_usage_error("token: create USER [--admin] or revoke USER");
	create = strcmp(argv[1], "create") == 0;
	/* argv[1] names the command in parse_opts' messages. */
	argv[1] = create ? create_name : revoke_name;
	rc = parse_opts(argc - 1, argv + 1, ALLOW(OPT_JSON) | (create ? ALLOW(OPT_ADMIN) : 0), 1,
			&o);
	if (rc != PV_EXIT_OK)
		return rc;
	if (!o.arg)
		return pv_cli_usage_error("%s: which user?", argv[1]);
	if (pv_session_pg(s, &conn, &err) != PV_OK)
		return pv_cli_fail("token", &err);
	if (create) {
		char token[PV_TOKEN_LEN + 1];

		if (pv_token_create(conn, o.arg, o.admin, token, &err) != PV_OK) {
			pv_session_pg_failed(s, &err);
			return pv_cli_fail("token create", &err);
		}
		if (o.json) {
			char *user = pv_escape_str(o.arg); /* always UTF-8 */

			print_json(json_pack("{s:s, s:b, s:s}", "user", user, "admin", o.admin,
					     "token", token));
			free(user);
		} else
			printf("%s\n", token);
	} else {
		int n = 0;

		if (pv_token_revoke(conn, o.arg, NULL, &n, &err) != PV_OK) {
			pv_session_pg_failed(s, &err);
			return pv_cli_fail("token revoke", &err);
		}
		if (o.json) {
			char *user = pv_escape_str(o.arg);

			print_json(json_pack("{s:s, s:i}", "user", user, "revoked", n));
			free(user);
		} else
			printf("%d token(s) revoked\n", n);
	}
	return PV_EXIT_OK;
}
