/* Minted, MAC-checked event ids and the asynchronous record of confirmed
 * ones; design in command_ids.h. */
#include "command_ids.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "buf.h"
#include "config.h"
#include "log.h"
#include "thread.h"
#include "pgutil.h"
#include "xalloc.h"

#define RECORD_MS 100
#define RECORD_MAX 100000 /* ids kept while PostgreSQL is down */
#define KEY_MAX 64
#define MAC_LEN 4

struct rec {
	char id[PV_UUID_LEN + 1];
	bool confirmed;
};

struct pv_command_ids {
	char *conninfo;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* the key arrived, ids to record, or stop */
	bool stop;
	bool have_key;
	unsigned char key[KEY_MAX];
	size_t keylen;
	struct rec *recs; /* not yet in the table, oldest first */
	size_t nrecs, cap;
	size_t dropped;

	/* Recorder thread only. */
	PGconn *pg;
	bool pg_down;
	bool drop_warned;
};

static void key_from_text(struct pv_command_ids *ids, const char *text)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	/* Any text makes a key: its SHA-256. */
	if (!EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		pv_oom("EVP_Digest(sha256)", 0);
	memcpy(ids->key, md, mdlen);
	ids->keylen = mdlen;
	ids->have_key = true;
}

static void mac(const unsigned char *key, size_t keylen, const unsigned char b[16],
		unsigned char out[MAC_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!HMAC(EVP_sha256(), key, (int)keylen, b, 16 - MAC_LEN, md, &mdlen))
		pv_oom("HMAC(sha256)", 0);
	memcpy(out, md, MAC_LEN);
}

static void format_uuid(const unsigned char b[16], char out[PV_UUID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	char *p = out;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[b[i] >> 4];
		*p++ = hex[b[i] & 15];
	}
	*p = '\0';
}

static bool parse_uuid(const char *s, unsigned char b[16])
{
	if (!pv_uuid_valid(s))
		return false;
	for (int i = 0; i < 16; i++) {
		unsigned v = 0;

		if (*s == '-')
			s++;
		for (int k = 0; k < 2; k++, s++) {
			char c = *s;

			v = v << 4 | (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
		}
		b[i] = (unsigned char)v;
	}
	return true;
}

void pv_command_id_make(const unsigned char *key, size_t keylen, long long unix_ms,
			char out[PV_UUID_LEN + 1])
{
	unsigned char b[16];

	for (int i = 0; i < 6; i++)
		b[i] = (unsigned char)(unix_ms >> (8 * (5 - i)));
	if (getrandom(b + 6, 6, 0) != 6)
		pv_log_fatal("ids", "getrandom");
	b[6] = (unsigned char)(0x70 | (b[6] & 0x0f)); /* version 7 */
	b[8] = (unsigned char)(0x80 | (b[8] & 0x3f)); /* variant 10 */
	mac(key, keylen, b, b + 16 - MAC_LEN);
	format_uuid(b, out);
}

/* True when b is a version-7 id whose MAC holds under key. */
static bool minted(const unsigned char *key, size_t keylen, const unsigned char b[16])
{
	unsigned char m[MAC_LEN];

	if (b[6] >> 4 != 7 || (b[8] & 0xc0) != 0x80)
		return false;
	mac(key, keylen, b, m);
	return CRYPTO_memcmp(m, b + 16 - MAC_LEN, MAC_LEN) == 0;
}

static long long unix_ms_of(const unsigned char b[16])
{
	long long ms = 0;

	for (int i = 0; i < 6; i++)
		ms = ms << 8 | b[i];
	return ms;
}

bool pv_command_id_check(const unsigned char *key, size_t keylen, const char *id,
			 long long *unix_ms)
{
	unsigned char b[16];

	if (!parse_uuid(id, b) || !minted(key, keylen, b))
		return false;
	if (unix_ms)
		*unix_ms = unix_ms_of(b);
	return true;
}

static long long now_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* CLOCK_MONOTONIC, the clock of ids->cond. */
static void deadline_after(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* ---- the recorder thread ---- */

static enum pv_err recorder_pg(struct pv_command_ids *ids, struct pv_error *err)
{
	if (!ids->pg)
		return pv_pg_connect(ids->conninfo, &ids->pg, err);
	return pv_pg_ensure(ids->pg, err);
}

/* Logged once per outage. */
static void pg_failed(struct pv_command_ids *ids, const struct pv_error *err)
{
	if (!ids->pg_down)
		pv_log_warnx("ids", "%s; command ids are kept in memory until it answers",
			     err->msg);
	ids->pg_down = true;
}

static void load_key(struct pv_command_ids *ids)
{
	struct pv_error err;
	PGresult *res = NULL;
	enum pv_err rc;

	rc = recorder_pg(ids, &err);
	if (rc == PV_OK)
		rc = pv_pg_exec(ids->pg, "read the command id key",
				"SELECT key FROM command_key LIMIT 1", 0, NULL, &res, &err);
	if (rc == PV_ERR_UNAVAILABLE) {
		pg_failed(ids, &err);
		return;
	}
	pthread_mutex_lock(&ids->lock);
	if (rc == PV_OK && PQntuples(res) == 1) {
		key_from_text(ids, PQgetvalue(res, 0, 0));
	} else {
		char rnd[33];

		/* No table (migrations not run): ids this process mints are
		 * known to it alone; say so rather than refuse writes. */
		pv_log_warnx("ids",
			     "%s; using a key of this process only (run the migrations "
			     "or set [http] command_key)",
			     rc == PV_OK ? "table command_key is empty" : err.msg);
		if (getrandom(rnd, 32, 0) != 32)
			pv_log_fatal("ids", "getrandom");
		for (int i = 0; i < 32; i++)
			rnd[i] = (char)('a' + (rnd[i] & 15));
		rnd[32] = '\0';
		key_from_text(ids, rnd);
	}
	pthread_cond_broadcast(&ids->cond);
	pthread_mutex_unlock(&ids->lock);
	PQclear(res);
}

/* Writes the first n records in one statement. */
static enum pv_err write_records(struct pv_command_ids *ids, const struct rec *recs, size_t n,
				 struct pv_error *err)
{
	struct pv_buf idv = PV_BUF_INIT, pubv = PV_BUF_INIT;
	const char *params[2];
	enum pv_err rc;

	pv_buf_puts(&idv, "{");
	pv_buf_puts(&pubv, "{");
	for (size_t i = 0; i < n; i++) {
		pv_buf_printf(&idv, "%s%s", i ? "," : "", recs[i].id);
		pv_buf_printf(&pubv, "%s%s", i ? "," : "", recs[i].confirmed ? "yes" : "unknown");
	}
	pv_buf_puts(&idv, "}");
	pv_buf_puts(&pubv, "}");
	params[0] = idv.data;
	params[1] = pubv.data;
	rc = recorder_pg(ids, err);
	/* A confirm wins over an unknown outcome of the same id (a retry with
	 * the same Idempotency-Key). */
	if (rc == PV_OK)
		rc = pv_pg_exec(ids->pg, "record command ids",
				"INSERT INTO command_confirmed (event_id, published) "
				"SELECT * FROM unnest($1::uuid[], $2::text[]) "
				"ON CONFLICT (event_id) DO UPDATE SET published = 'yes' "
				"WHERE excluded.published = 'yes'",
				2, params, NULL, err);
	pv_buf_free(&idv);
	pv_buf_free(&pubv);
	return rc;
}

/* Writes what is queued; false when PostgreSQL could not be reached (they
 * stay queued). */
static bool flush(struct pv_command_ids *ids)
{
	struct pv_error err;
	struct rec *batch;
	enum pv_err rc;
	size_t n;

	pthread_mutex_lock(&ids->lock);
	n = ids->nrecs;
	batch = NULL;
	if (n) {
		batch = pv_xreallocarray(NULL, n, sizeof *batch);
		memcpy(batch, ids->recs, n * sizeof *batch);
	}
	pthread_mutex_unlock(&ids->lock);
	if (!n)
		return true;
	rc = write_records(ids, batch, n, &err);
	free(batch);
	if (rc == PV_ERR_UNAVAILABLE) {
		pg_failed(ids, &err);
		return false;
	}
	if (rc != PV_OK) {
		/* Not an outage (no table: migrations not run): keeping them
		 * would only make the next statement larger. */
		if (!ids->drop_warned)
			pv_log_warnx("ids", "%s; command ids are not recorded (said once)",
				     err.msg);
		ids->drop_warned = true;
	} else if (ids->pg_down) {
		pv_log_info("ids", "PostgreSQL answers again; command ids recorded");
	}
	ids->pg_down = false;
	/* Only this thread removes, and new ones were appended after. */
	pthread_mutex_lock(&ids->lock);
	memmove(ids->recs, ids->recs + n, (ids->nrecs - n) * sizeof *ids->recs);
	ids->nrecs -= n;
	pthread_mutex_unlock(&ids->lock);
	return true;
}

static void *recorder_main(void *arg)
{
	struct pv_command_ids *ids = arg;
	bool stop = false;

	while (!stop) {
		struct timespec deadline;

		if (!ids->have_key) /* only this thread sets it */
			load_key(ids);
		else
			flush(ids);
		deadline_after(&deadline, RECORD_MS);
		pthread_mutex_lock(&ids->lock);
		if (!ids->stop)
			pthread_cond_timedwait(&ids->cond, &ids->lock, &deadline);
		stop = ids->stop;
		pthread_mutex_unlock(&ids->lock);
	}
	if (ids->have_key && !flush(ids))
		pv_log_warnx("ids", "%zu command ids not recorded at exit", ids->nrecs);
	return NULL;
}

struct pv_command_ids *pv_command_ids_new(const struct pv_config *cfg)
{
	struct pv_command_ids *ids = pv_xcalloc(1, sizeof *ids);
	const char *key = pv_config_str(cfg, "http", "command_key");

	ids->conninfo = pv_xstrdup(pv_config_str(cfg, "postgres", "conninfo"));
	if (*key)
		key_from_text(ids, key);
	pthread_mutex_init(&ids->lock, NULL);
	pv_cond_init_monotonic(&ids->cond);
	pv_thread_start(&ids->thread, recorder_main, ids, "ids", "the recorder thread");
	return ids;
}

void pv_command_ids_free(struct pv_command_ids *ids)
{
	if (!ids)
		return;
	pthread_mutex_lock(&ids->lock);
	ids->stop = true;
	pthread_cond_broadcast(&ids->cond);
	pthread_mutex_unlock(&ids->lock);
	pthread_join(ids->thread, NULL);
	if (ids->pg)
		PQfinish(ids->pg);
	pthread_cond_destroy(&ids->cond);
	pthread_mutex_destroy(&ids->lock);
	free(ids->recs);
	free(ids->conninfo);
	free(ids);
}

enum pv_err pv_command_ids_mint(struct pv_command_ids *ids, int wait_ms, char out[PV_UUID_LEN + 1],
				struct pv_error *err)
{
	unsigned char key[KEY_MAX];
	struct timespec deadline;
	size_t keylen;

	deadline_after(&deadline, wait_ms);
	pthread_mutex_lock(&ids->lock);
	while (!ids->have_key && !ids->stop)
		if (pthread_cond_timedwait(&ids->cond, &ids->lock, &deadline) == ETIMEDOUT)
			break;
	if (!ids->have_key) {
		pthread_mutex_unlock(&ids->lock);
		return pv_error_set(err, PV_ERR_UNAVAILABLE,
				    "the command id key is not loaded from PostgreSQL yet");
	}
	memcpy(key, ids->key, ids->keylen);
	keylen = ids->keylen;
	pthread_mutex_unlock(&ids->lock);
	pv_command_id_make(key, keylen, now_unix_ms(), out);
	return PV_OK;
}

void pv_command_ids_record(struct pv_command_ids *ids, const char *id, bool confirmed)
{
	pthread_mutex_lock(&ids->lock);
	if (ids->nrecs == RECORD_MAX) {
		/* PostgreSQL has been down a long time: the oldest go (their
		 * verdicts, once the appender recorded them, still answer). */
		memmove(ids->recs, ids->recs + 1, (ids->nrecs - 1) * sizeof *ids->recs);
		ids->nrecs--;
		if (ids->dropped++ % 10000 == 0)
			pv_log_warnx("ids",
				     "more than %d command ids unrecorded: dropping the "
				     "oldest",
				     RECORD_MAX);
	}
	if (ids->nrecs == ids->cap) {
		ids->cap = ids->cap ? 2 * ids->cap : 256;
		ids->recs = pv_xreallocarray(ids->recs, ids->cap, sizeof *ids->recs);
	}
	snprintf(ids->recs[ids->nrecs].id, sizeof ids->recs[ids->nrecs].id, "%s", id);
	ids->recs[ids->nrecs].confirmed = confirmed;
	ids->nrecs++;
	pthread_mutex_unlock(&ids->lock);
}

/* 1 confirmed, 0 unknown outcome, -1 not held here. */
static int held(struct pv_command_ids *ids, const char *id)
{
	int found = -1;

	pthread_mutex_lock(&ids->lock);
	for (size_t i = ids->nrecs; i-- > 0;)
		if (strcmp(ids->recs[i].id, id) == 0) {
			found = ids->recs[i].confirmed;
			break;
		}
	pthread_mutex_unlock(&ids->lock);
	return found;
}

enum pv_err pv_command_ids_judge(struct pv_command_ids *ids, PGconn *pg, const char *id,
				 enum pv_command_state *out, struct pv_error *err)
{
	const char *params[1] = {id};
	unsigned char b[16], key[KEY_MAX];
	bool is_minted, keyed;
	PGresult *res;
	enum pv_err rc;
	size_t keylen;
	int here;

	*out = PV_COMMAND_UNKNOWN;
	if (!parse_uuid(id, b))
		return PV_OK;
	pthread_mutex_lock(&ids->lock);
	keylen = ids->have_key ? ids->keylen : 0;
	memcpy(key, ids->key, keylen);
	pthread_mutex_unlock(&ids->lock);
	if (!keylen)
		return pv_error_set(err, PV_ERR_UNAVAILABLE,
				    "the command id key is not loaded from PostgreSQL yet");
	is_minted = minted(key, keylen, b);
	keyed = b[6] >> 4 == 5; /* fixed by an Idempotency-Key */
	if (!is_minted && !keyed)
		return PV_OK;
	here = held(ids, id);
	if (here >= 0) {
		*out = here ? PV_COMMAND_PENDING : PV_COMMAND_UNCONFIRMED;
		return PV_OK;
	}
	rc = pv_pg_exec(pg, "look up a command id",
			"SELECT published FROM command_confirmed WHERE event_id = $1", 1, params,
			&res, err);
	if (rc != PV_OK)
		return rc;
	if (PQntuples(res) == 1)
		*out = strcmp(PQgetvalue(res, 0, 0), "yes") == 0 ? PV_COMMAND_PENDING
								 : PV_COMMAND_UNCONFIRMED;
	else if (is_minted && now_unix_ms() - unix_ms_of(b) < PV_COMMAND_YOUNG_MS)
		*out = PV_COMMAND_PENDING;
	PQclear(res);
	return PV_OK;
}
