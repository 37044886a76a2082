#include "config.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "log.h"
#include "xalloc.h"

/* Every key the programs know, with its kind and default.  A key not in
 * this table is an error wherever it appears, so a typo never passes
 * silently.  Keys marked secret may instead be given as <key>_file. */
enum key_kind { KIND_STRING, KIND_INT, KIND_BOOL, KIND_ENUM };

struct key_spec {
	const char *section;
	const char *key;
	enum key_kind kind;
	const char *def;     /* NULL: required */
	long long min, max;  /* KIND_INT */
	const char *choices; /* KIND_ENUM: "a|b|c" */
	bool secret;
	const char *help;
};

#define STR(s, k, d, h)                                                                            \
	{                                                                                          \
		s, k, KIND_STRING, d, 0, 0, NULL, false, h                                         \
	}
#define SECRET(s, k, d, h)                                                                         \
	{                                                                                          \
		s, k, KIND_STRING, d, 0, 0, NULL, true, h                                          \
	}
#define INT(s, k, d, lo, hi, h)                                                                    \
	{                                                                                          \
		s, k, KIND_INT, d, lo, hi, NULL, false, h                                          \
	}
#define BOOL(s, k, d, h)                                                                           \
	{                                                                                          \
		s, k, KIND_BOOL, d, 0, 0, NULL, false, h                                           \
	}
#define ENUM(s, k, d, c, h)                                                                        \
	{                                                                                          \
		s, k, KIND_ENUM, d, 0, 0, c, false, h                                              \
	}

static const struct key_spec key_table[] = {
	ENUM("log", "level", "info", "error|warning|info|debug", "least severe level logged"),
	ENUM("log", "target", "stderr", "stderr|syslog", "where log lines go"),

	ENUM("http", "auth_mode", "token", "token|remote_user",
	     "token: Bearer tokens checked in PostgreSQL; remote_user: trust the web server"),
	INT("http", "body_limit", "65536", 256, 16777216, "largest request body in bytes"),
	INT("http", "publish_timeout_ms", "5000", 100, 600000,
	    "how long a write waits for the broker's confirm before answering 503"),
	INT("http", "broker_wait_ms", "2000", 0, 60000,
	    "how long a write waits for a connection to the broker (the first one after start, "
	    "or a new one after an outage; it is retried at once, then every 50 ms doubling to "
	    "250 ms) before answering 503 (the command not published)"),
	INT("http", "threads", "8", 1, 256, "request threads per photovote.fcgi process"),
	INT("http", "max_wait", "30", 0, 300, "cap in seconds for Prefer: wait=N"),
	STR("http", "admins", "",
	    "in remote_user mode: user names (separated by commas or spaces) that are "
	    "administrators"),
	INT("http", "idempotency_capacity", "10000", 1, 10000000,
	    "Idempotency-Key answers remembered per process"),
	INT("http", "idempotency_ttl", "86400", 1, 31536000,
	    "seconds an Idempotency-Key answer is remembered"),
	INT("http", "health_interval_ms", "1000", 100, 60000,
	    "how often each photovote.fcgi process probes PostgreSQL (and the projector's "
	    "heartbeat) and Cosmos DB in the background for /healthz"),
	INT("http", "health_stale_ms", "3000", 500, 600000,
	    "a dependency whose last successful probe (the broker: its last frame) is older than "
	    "this is reported failing; also each probe's time limit"),
	INT("http", "projector_stale_seconds", "30", 1, 86400,
	    "/healthz reports the projector failing when it has neither advanced nor reported "
	    "idle for this long (projector_heartbeats)"),
	INT("http", "token_cache_ttl", "30", 0, 3600,
	    "in token mode: seconds a verified Bearer token is trusted without asking PostgreSQL "
	    "again (0: ask on every request); a revoked token keeps working up to this long"),
	SECRET("http", "command_key", "",
	       "the secret every photovote.fcgi process shares to mint event ids it can recognise "
	       "(empty: the one PostgreSQL holds in table command_key)"),
	INT("http", "token_grace", "300", 0, 86400,
	    "in token mode: while PostgreSQL cannot be reached, a token it accepted less than "
	    "this many seconds ago keeps working (0: none); an unknown token gets 503 "
	    "auth_unavailable, and once PostgreSQL answers again a revoked one stops within "
	    "token_cache_ttl"),

	STR("amqp", "host", "127.0.0.1", "RabbitMQ host"),
	INT("amqp", "port", "5672", 1, 65535, "RabbitMQ port"),
	STR("amqp", "vhost", "/", "RabbitMQ virtual host"),
	STR("amqp", "user", "guest", "RabbitMQ user"),
	SECRET("amqp", "password", "guest", "RabbitMQ password"),
	STR("amqp", "exchange", "photovote.events",
	    "durable topic exchange commands are published to"),
	STR("amqp", "queue", "photovote.appender", "durable queue the appender consumes"),
	STR("amqp", "dead_letter_exchange", "photovote.dead", "exchange for poison messages"),
	STR("amqp", "dead_letter_queue", "photovote.dead", "queue holding poison messages"),
	INT("amqp", "partitions", "1", 1, 1024,
	    "partition queues (consistent-hash by election id)"),
	INT("amqp", "heartbeat", "30", 0, 3600, "AMQP heartbeat in seconds (0: off)"),
	INT("amqp", "connect_timeout", "5", 1, 300,
	    "seconds to wait for the broker when connecting"),
	INT("amqp", "prefetch", "2000", 1, 65535, "unacked messages a consumer may hold"),

	SECRET("postgres", "conninfo", "dbname=photovote",
	       "libpq connection string (audit log, tokens, checkpoints, postgres event store)"),

	ENUM("eventstore", "backend", "postgres", "postgres|esdb|kurrentdb",
	     "where streams are kept: PostgreSQL, KurrentDB/EventStoreDB over gRPC "
	     "(kurrentdb) or over the AtomPub HTTP API (esdb)"),
	STR("eventstore", "url", "https://127.0.0.1:2113",
	    "esdb: the server's base URL; kurrentdb: a connection string "
	    "(kurrentdb://host:2113, kurrentdb://host:2113?tls=false, esdb://..., "
	    "tlsCAFile=, nodePreference=)"),
	STR("eventstore", "username", "admin",
	    "EventStoreDB/KurrentDB user (kurrentdb: when the connection string names none)"),
	SECRET("eventstore", "password", "changeit", "EventStoreDB/KurrentDB password"),
	STR("eventstore", "ca_file", "",
	    "CA bundle for the server's TLS certificate (empty: system; kurrentdb: tlsCAFile "
	    "wins)"),
	INT("eventstore", "timeout_ms", "10000", 100, 600000,
	    "per-request timeout (kurrentdb: the gRPC deadline, unless defaultDeadline is set)"),
	INT("eventstore", "requests_in_flight", "8", 1, 256,
	    "most requests of one appender batch sent at once, one per stream (esdb, kurrentdb)"),
	BOOL("eventstore", "append_sessions", "true",
	     "kurrentdb: a batch's appends to several streams in multi-stream AppendSession "
	     "calls where the server offers them (KurrentDB 25.1 and later); false: one Append "
	     "call per stream"),

	STR("cosmos", "endpoint", "https://127.0.0.1:8081", "Cosmos DB account endpoint"),
	SECRET("cosmos", "key", "", "Cosmos DB master key (base64)"),
	STR("cosmos", "database", "photovote", "Cosmos DB database"),
	STR("cosmos", "container", "elections", "Cosmos DB container (partition key /election_id)"),
	STR("cosmos", "ca_file", "", "CA bundle for the Cosmos DB TLS certificate (empty: system)"),
	BOOL("cosmos", "create_if_missing", "true", "create the database and container at start"),
	INT("cosmos", "timeout_ms", "10000", 100, 600000, "per-request timeout"),
	BOOL("cosmos", "emulator_quirks", "false",
	     "work around @vercel/cosmosdb-server's quirks (test stand-in only, never in "
	     "production)"),

	INT("appender", "batch_size", "1000", 1, 65535,
	    "events judged per unit of work of the event store (a batch holds at most "
	    "amqp.prefetch)"),
	INT("appender", "batch_wait_ms", "5", 0, 1000,
	    "how long a batch waits for more messages after its first (0: only what has "
	    "already arrived)"),
	INT("appender", "cache_elections", "10000", 0, 10000000, "elections kept in memory"),
	STR("appender", "metrics_listen", "",
	    "HOST:PORT where the appender serves Prometheus metrics at /metrics (empty: off; "
	    "e.g. 127.0.0.1:9466; docs/metrics.md)"),

	INT("projector", "batch_size", "512", 1, 65535, "events read per feed page"),
	INT("projector", "writers", "4", 1, 64,
	    "elections whose documents are written at the same time, each writer with a Cosmos DB "
	    "client and an event-store connection of its own (1: one after the other)"),
	INT("projector", "cache_elections", "1024", 1, 1000000,
	    "elections whose written state the projector keeps in memory (each writer its share); "
	    "catching up a backlog it may also hold twice as many folded and not yet written"),
	INT("projector", "poll_wait_ms", "5000", 0, 600000,
	    "long-poll wait for new events (at most heartbeat_ms)"),
	INT("projector", "heartbeat_ms", "2000", 100, 60000,
	    "how often the projector writes its heartbeat (projector_heartbeats) for /healthz, "
	    "while it advances or waits for events"),
	STR("projector", "metrics_listen", "",
	    "HOST:PORT where the projector serves Prometheus metrics at /metrics (empty: off; "
	    "e.g. 127.0.0.1:9467; docs/metrics.md)"),
	INT("projector", "max_document_bytes", "1048576", 16384, 16777216,
	    "largest Cosmos DB document the projector and photovote-admin rebuild write, as the "
	    "service counts it (JSON text plus 512 bytes kept for its system properties); "
	    "elections are split into parts that fit. The service refuses items over 2097152: a "
	    "larger value parks big elections"),
};

#define KEY_COUNT (sizeof key_table / sizeof key_table[0])

struct pv_config {
	char *values[KEY_COUNT];
	char *origins[KEY_COUNT];
};

static int find_key(const char *section, const char *key)
{
	for (size_t i = 0; i < KEY_COUNT; i++)
		if (strcmp(key_table[i].section, section) == 0 &&
		    strcmp(key_table[i].key, key) == 0)
			return (int)i;
	return -1;
}

static bool section_known(const char *section)
{
	for (size_t i = 0; i < KEY_COUNT; i++)
		if (strcmp(key_table[i].section, section) == 0)
			return true;
	return false;
}

static void set_value(struct pv_config *cfg, int idx, const char *value, char *origin)
{
	free(cfg->values[idx]);
	free(cfg->origins[idx]);
	cfg->values[idx] = pv_xstrdup(value);
	cfg->origins[idx] = origin;
}

/* Reads a secret file: the value is its content less one final newline. */
static enum pv_err read_secret_file(const char *path, char **out, struct pv_error *err)
{
	struct pv_buf b = PV_BUF_INIT;
	char chunk[512];
	size_t n;
	FILE *f = fopen(path, "re");

	if (!f)
		return pv_error_set(err, PV_ERR_CONFIG, "cannot open secret file %s: %s", path,
				    strerror(errno));
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		pv_buf_append(&b, chunk, n);
		if (b.len > 65536) {
			fclose(f);
			pv_buf_free(&b);
			return pv_error_set(err, PV_ERR_CONFIG, "secret file %s is over 64 KiB",
					    path);
		}
	}
	if (ferror(f)) {
		fclose(f);
		pv_buf_free(&b);
		return pv_error_set(err, PV_ERR_CONFIG, "cannot read secret file %s", path);
	}
	fclose(f);
	if (b.len && b.data[b.len - 1] == '\n')
		b.data[--b.len] = '\0';
	if (b.len && b.data[b.len - 1] == '\r')
		b.data[--b.len] = '\0';
	if (memchr(b.data ? b.data : "", '\0', b.len)) {
		pv_buf_free(&b);
		return pv_error_set(err, PV_ERR_CONFIG, "secret file %s holds a NUL byte", path);
	}
	*out = pv_buf_steal(&b);
	return PV_OK;
}

/* Resolves section.key (or section.key_file) to a table index and whether
 * the value names a file.  Returns -1 for an unknown key. */
static int resolve_key(const char *section, const char *key, bool *is_file)
{
	int idx = find_key(section, key);
	size_t len = strlen(key);

	*is_file = false;
	if (idx >= 0)
		return idx;
	if (len > 5 && strcmp(key + len - 5, "_file") == 0) {
		char base[128];
		if (len - 5 >= sizeof base)
			return -1;
		memcpy(base, key, len - 5);
		base[len - 5] = '\0';
		idx = find_key(section, base);
		if (idx >= 0 && key_table[idx].secret) {
			*is_file = true;
			return idx;
		}
	}
	return -1;
}

static enum pv_err assign(struct pv_config *cfg, const char *section, const char *key,
			  const char *value, char *origin, struct pv_error *err)
{
	bool is_file;
	int idx = resolve_key(section, key, &is_file);

	if (idx < 0) {
		enum pv_err rc = section_known(section)
					 ? pv_error_set(err, PV_ERR_CONFIG,
							"%s: unknown key '%s' in section [%s]",
							origin, key, section)
					 : pv_error_set(err, PV_ERR_CONFIG,
							"%s: unknown section [%s] (key '%s')",
							origin, section, key);
		free(origin);
		return rc;
	}
	if (is_file) {
		char *secret;
		if (read_secret_file(value, &secret, err) != PV_OK) {
			pv_error_prefix(err, "%s: %s.%s", origin, section, key);
			free(origin);
			return PV_ERR_CONFIG;
		}
		set_value(cfg, idx, secret, origin);
		free(secret);
		return PV_OK;
	}
	set_value(cfg, idx, value, origin);
	return PV_OK;
}

struct parse_ctx {
	struct pv_config *cfg;
	const char *path;
	struct pv_error *err;
	FILE *file;
	int line;      /* lines read so far: Debian's inih passes no line numbers */
	bool too_long; /* a line did not fit inih's fixed buffer */
	bool failed;
	int failed_line; /* where a key was refused */
};

/* fgets for inih that counts lines and refuses the ones inih would cut in
 * two silently (its buffer is INI_MAX_LINE bytes). */
static char *read_ini_line(char *str, int num, void *stream)
{
	struct parse_ctx *ctx = stream;
	char *got;
	size_t len;

	if (ctx->too_long || ctx->failed)
		return NULL;
	got = fgets(str, num, ctx->file);
	if (!got)
		return NULL;
	len = strlen(got);
	ctx->line++;
	if (len == (size_t)num - 1 && got[len - 1] != '\n' && !feof(ctx->file)) {
		ctx->too_long = true;
		return NULL;
	}
	return got;
}

/* inih reports a line it could not parse by its number only (and goes on
 * with the previous section, so that a key after "[amqp" would otherwise
 * be refused as one of section []).  Reads that line again and says what
 * is wrong with it. */
static enum pv_err syntax_error(FILE *f, const char *path, int lineno, struct pv_error *err)
{
	char text[INI_MAX_LINE + 2], shown[128];
	const char *what = "is not a [section] header, a comment or a 'key = value' line";
	char *p = text;
	size_t len;

	text[0] = '\0';
	rewind(f);
	for (int i = 0; i < lineno; i++)
		if (!fgets(text, sizeof text, f)) {
			text[0] = '\0';
			break;
		}
	if (lineno == 1 && strncmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;
	while (*p == ' ' || *p == '\t')
		p++;
	len = strcspn(p, "\r\n");
	if (*p == '[' && !memchr(p, ']', len))
		what = "is a section header without its closing ']'";
	pv_log_escape(shown, 64, p, len);
	return pv_error_set(err, PV_ERR_CONFIG, "%s:%d: syntax error: '%s' %s", path, lineno, shown,
			    what);
}

static int on_ini_entry(void *user, const char *section, const char *key, const char *value)
{
	struct parse_ctx *ctx = user;

	if (ctx->failed)
		return 0;
	if (assign(ctx->cfg, section, key, value, pv_xasprintf("%s:%d", ctx->path, ctx->line),
		   ctx->err) != PV_OK) {
		ctx->failed = true;
		ctx->failed_line = ctx->line;
		return 0;
	}
	return 1;
}

/* PHOTOVOTE_ variables that are not configuration keys: the file's own
 * path, and the fault points of the crash tests. */
static bool is_reserved_variable(const char *name, size_t len)
{
	static const char *const reserved[] = {"CONFIG", "FAULT"};

	for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
		if (strlen(reserved[i]) == len && strncmp(name, reserved[i], len) == 0)
			return true;
	return false;
}

/* PHOTOVOTE_<SECTION>_<KEY>: matched against the table (sections have no
 * underscore, so the first underscore after the prefix splits them). */
static enum pv_err apply_environment(struct pv_config *cfg, char *const *envp, struct pv_error *err)
{
	static const char prefix[] = "PHOTOVOTE_";

	for (; envp && *envp; envp++) {
		const char *entry = *envp, *eq = strchr(entry, '='), *sep;
		char section[64], key[128];
		size_t slen, klen;

		if (strncmp(entry, prefix, sizeof prefix - 1) != 0 || !eq)
			continue;
		entry += sizeof prefix - 1;
		if (is_reserved_variable(entry, (size_t)(eq - entry)))
			continue;
		sep = strchr(entry, '_');
		if (!sep || sep > eq) {
			return pv_error_set(
				err, PV_ERR_CONFIG,
				"environment variable PHOTOVOTE_%.*s is not of the form "
				"PHOTOVOTE_<SECTION>_<KEY>",
				(int)(eq - entry), entry);
		}
		slen = (size_t)(sep - entry);
		klen = (size_t)(eq - sep - 1);
		if (slen >= sizeof section || klen >= sizeof key)
			return pv_error_set(err, PV_ERR_CONFIG,
					    "environment variable name too long");
		for (size_t i = 0; i < slen; i++)
			section[i] = (char)(entry[i] >= 'A' && entry[i] <= 'Z' ? entry[i] + 32
									       : entry[i]);
		section[slen] = '\0';
		for (size_t i = 0; i < klen; i++)
			key[i] = (char)(sep[1 + i] >= 'A' && sep[1 + i] <= 'Z' ? sep[1 + i] + 32
									       : sep[1 + i]);
		key[klen] = '\0';
		if (assign(cfg, section, key, eq + 1,
			   pv_xasprintf("environment PHOTOVOTE_%.*s", (int)(eq - entry), entry),
			   err) != PV_OK)
			return PV_ERR_CONFIG;
	}
	return PV_OK;
}

static bool parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return *out = true, true;
		if (strcasecmp(v, no[i]) == 0)
			return *out = false, true;
	}
	return false;
}

static bool parse_int(const char *v, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(v, &end, 10);
	return errno == 0 && end != v && *end == '\0';
}

static bool enum_has(const char *choices, const char *v)
{
	size_t len = strlen(v);

	for (const char *p = choices; *p;) {
		const char *bar = strchr(p, '|');
		size_t n = bar ? (size_t)(bar - p) : strlen(p);
		if (n == len && strncmp(p, v, n) == 0)
			return true;
		p += n + (bar ? 1 : 0);
	}
	return false;
}

static enum pv_err validate(const struct pv_config *cfg, struct pv_error *err)
{
	for (size_t i = 0; i < KEY_COUNT; i++) {
		const struct key_spec *k = &key_table[i];
		const char *v = cfg->values[i], *o = cfg->origins[i];
		long long n;
		bool b;

		if (!v)
			return pv_error_set(
				err, PV_ERR_CONFIG,
				"required key %s.%s is missing (set it in the file or as "
				"PHOTOVOTE_%s_%s)",
				k->section, k->key, k->section, k->key);
		switch (k->kind) {
		case KIND_INT:
			if (!parse_int(v, &n) || n < k->min || n > k->max)
				return pv_error_set(
					err, PV_ERR_CONFIG,
					"%s: %s.%s must be a whole number from %lld to %lld, "
					"not '%s'",
					o, k->section, k->key, k->min, k->max, v);
			break;
		case KIND_BOOL:
			if (!parse_bool(v, &b))
				return pv_error_set(err, PV_ERR_CONFIG,
						    "%s: %s.%s must be true or false, not '%s'", o,
						    k->section, k->key, v);
			break;
		case KIND_ENUM:
			if (!enum_has(k->choices, v))
				return pv_error_set(err, PV_ERR_CONFIG,
						    "%s: %s.%s must be one of %s, not '%s'", o,
						    k->section, k->key, k->choices, v);
			break;
		case KIND_STRING: break;
		}
	}
	return PV_OK;
}

enum pv_err pv_config_load(const char *path, char *const *envp, struct pv_config **out,
			   struct pv_error *err)
{
	extern char **environ;
	struct pv_config *cfg = pv_xcalloc(1, sizeof *cfg);
	enum pv_err rc;

	*out = NULL;
	for (size_t i = 0; i < KEY_COUNT; i++) {
		if (key_table[i].def) {
			cfg->values[i] = pv_xstrdup(key_table[i].def);
			cfg->origins[i] = pv_xstrdup("default");
		}
	}
	if (path) {
		struct parse_ctx ctx = {cfg, path, err, NULL, 0, false, false, 0};
		FILE *f = fopen(path, "re");
		int line;

		if (!f) {
			rc = pv_error_set(err, PV_ERR_CONFIG,
					  "cannot open configuration file %s: %s", path,
					  strerror(errno));
			goto fail;
		}
		ctx.file = f;
		line = ini_parse_stream(read_ini_line, &ctx, on_ini_entry, &ctx);
		/* The first error in the file wins: a syntax error before a
		 * refused key is why that key looked out of place. */
		if (line != 0 && !(ctx.failed && line == ctx.failed_line)) {
			rc = syntax_error(f, path, line, err);
			fclose(f);
			goto fail;
		}
		fclose(f);
		if (ctx.too_long) {
			rc = pv_error_set(err, PV_ERR_CONFIG,
					  "%s:%d: line longer than %d characters", path, ctx.line,
					  INI_MAX_LINE - 2);
			goto fail;
		}
		if (ctx.failed) {
			rc = PV_ERR_CONFIG;
			goto fail;
		}
	}
	rc = apply_environment(cfg, envp ? envp : environ, err);
	if (rc != PV_OK)
		goto fail;
	rc = validate(cfg, err);
	if (rc != PV_OK)
		goto fail;
	*out = cfg;
	return PV_OK;
fail:
	pv_config_free(cfg);
	return rc;
}

void pv_config_free(struct pv_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < KEY_COUNT; i++) {
		free(cfg->values[i]);
		free(cfg->origins[i]);
	}
	free(cfg);
}

static int lookup(const char *section, const char *key, enum key_kind kind)
{
	int idx = find_key(section, key);

	if (idx < 0 || (kind != KIND_STRING && key_table[idx].kind != kind)) {
		fprintf(stderr, "fatal: configuration key %s.%s asked for as the wrong kind\n",
			section, key);
		abort();
	}
	return idx;
}

const char *pv_config_str(const struct pv_config *cfg, const char *section, const char *key)
{
	return cfg->values[lookup(section, key, KIND_STRING)];
}

long long pv_config_int(const struct pv_config *cfg, const char *section, const char *key)
{
	long long n = 0;

	parse_int(cfg->values[lookup(section, key, KIND_INT)], &n);
	return n;
}

bool pv_config_bool(const struct pv_config *cfg, const char *section, const char *key)
{
	bool b = false;

	parse_bool(cfg->values[lookup(section, key, KIND_BOOL)], &b);
	return b;
}

const char *pv_config_origin(const struct pv_config *cfg, const char *section, const char *key)
{
	return cfg->origins[lookup(section, key, KIND_STRING)];
}

void pv_config_describe(FILE *out)
{
	static const char *const kind_word[] = {"string", "integer", "boolean", "one of"};

	for (size_t i = 0; i < KEY_COUNT; i++) {
		const struct key_spec *k = &key_table[i];
		char var[128];
		size_t n = (size_t)snprintf(var, sizeof var, "PHOTOVOTE_%s_%s", k->section, k->key);

		for (size_t j = 0; j < n && j < sizeof var; j++)
			if (var[j] >= 'a' && var[j] <= 'z')
				var[j] = (char)(var[j] - 32);
		fprintf(out, "[%s] %s\n  %s %s%s; default: %s; variable: %s%s\n  %s\n", k->section,
			k->key, kind_word[k->kind], k->kind == KIND_ENUM ? k->choices : "",
			k->kind == KIND_INT ? "" : "",
			k->def ? (*k->def ? k->def : "(empty)") : "(required)", var,
			k->secret ? " (secret: also <key>_file)" : "", k->help);
	}
}
