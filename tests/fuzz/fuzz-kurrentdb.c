/* libFuzzer target: KurrentDB's gRPC answers as the kurrentdb backend
 * reads them (lib/eventstore/kurrentdb.c over lib/eventstore/grpc.c): the
 * HTTP/2 status and headers, the trailers (grpc-status, grpc-message, the
 * server's "exception" metadata), a trailers-only answer, the 5-byte
 * message frames and the protobuf messages in them (AppendResp, ReadResp,
 * SupportedMethods, AppendSessionResponse).
 *
 * The input names an operation (first line: "forward FROM MAX", "backward
 * FROM MAX", "category FROM MAX", "append EXPECTED COUNT", "many EXPECTED
 * COUNT" (a unit over several streams: the server features, then a session
 * or one Append per stream), "list", "delete EXPECTED HARD"), then the server's answers to the calls it makes, in
 * order, separated by lines "--" (answers.h).  Each answer is the status
 * line ("HTTP/2 200") and header lines, an empty line, the trailer lines,
 * an empty line, then the body (the framed messages, binary) up to the
 * separator.  The store's operations run through the ops table as in
 * production, with the answers handed to the gRPC layer's own header and
 * body callbacks (pv_es_kurrentdb_set_transport).
 *
 * Invariants: a stream page holds only the stream's events numbered inside
 * what was asked for, in order, and its next page starts past them; a
 * category page holds only the category's events, positions from `from`
 * on and rising, next past them; an append's revision is expected + count
 * after a revision, at least count - 1 whatever was expected; a conflict
 * names a current revision other than the one expected; error messages
 * carry no raw control character. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answers.h"
#include "eventstore.h"
#include "eventstore/kurrentdb.h"
#include "fuzz.h"
#include "log.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...) FUZZ_FAIL("fuzz-kurrentdb: " __VA_ARGS__)

static void grpc_header(void *ctx, const char *line, size_t len)
{
	pv_grpc_reply_header(ctx, line, len);
}

/* The transport stand-in: the next answer of the input, fed as libcurl
 * feeds an HTTP/2 answer (headers, body, then the trailers). */
static enum pv_err answer(void *ctx, const char *path, const struct pv_buf *request,
			  struct pv_grpc_reply *reply, long *http_status, struct pv_error *err)
{
	const char *p, *stop, *trailers, *body;
	long status;

	(void)path; /* the backend names it in its message */
	(void)request;
	if (!fuzz_answers_take(ctx, &p, &stop))
		return pv_error_set(err, PV_ERR_UNAVAILABLE, "no answer left in the input");
	if ((status = fuzz_answers_status(p, stop)) < 0)
		return pv_error_set(err, PV_ERR_PROTOCOL, "an unreadable answer in the input");
	trailers = fuzz_answers_lines(p, stop, grpc_header, reply);
	body = trailers;
	/* Skipped now, fed after the body as they come on the wire. */
	for (const char *nl; body < stop && (nl = memchr(body, '\n', (size_t)(stop - body)));) {
		bool empty = nl == body || (nl == body + 1 && body[0] == '\r');
		body = nl + 1;
		if (empty)
			break;
	}
	if (body < stop && !pv_grpc_reply_body(reply, body, (size_t)(stop - body)))
		return PV_OK; /* too large: the transfer stops, the call says so */
	if (trailers < body)
		fuzz_answers_lines(trailers, body, grpc_header, reply);
	*http_status = status;
	return PV_OK;
}

static void check_stream_page(const char *op, const struct pv_es_page *page, int64_t from,
			      size_t max, bool backward)
{
	if (page->count > max)
		FAIL("%s: %zu events on a page of %zu", op, page->count, max);
	for (size_t i = 0; i < page->count; i++) {
		const struct pv_es_event *e = &page->events[i];
		int64_t n = e->number;

		if (!e->type || !e->stream || !e->data || !e->metadata || !e->created)
			FAIL("%s: event %zu lacks a field", op, i);
		if (strcmp(e->stream, FUZZ_STREAM) != 0)
			FAIL("%s: event %zu of another stream", op, i);
		if (backward ? (from >= 0 && (n > from || n <= from - (int64_t)max))
			     : (n < from || n - from >= (int64_t)max))
			FAIL("%s from %" PRId64 " (%zu): event %" PRId64 " outside the page", op,
			     from, max, n);
		if (i &&
		    (backward ? n >= page->events[i - 1].number : n <= page->events[i - 1].number))
			FAIL("%s: event %" PRId64 " out of order", op, n);
	}
	if (page->count && (backward ? page->next >= page->events[page->count - 1].number
				     : page->next <= page->events[page->count - 1].number))
		FAIL("%s: next %" PRId64 " is not past the page", op, page->next);
	if (!backward && page->next < from)
		FAIL("%s: next %" PRId64 " before from %" PRId64, op, page->next, from);
}

static void check_category_page(const struct pv_es_page *page, int64_t from)
{
	for (size_t i = 0; i < page->count; i++) {
		const struct pv_es_event *e = &page->events[i];

		if (!e->type || !e->stream || !e->data || !e->metadata || !e->created)
			FAIL("category: event %zu lacks a field", i);
		if (strncmp(e->stream, "Election-", 9) != 0)
			FAIL("category: event %zu of another category", i);
		if (e->position < from || (i && e->position <= page->events[i - 1].position))
			FAIL("category from %" PRId64 ": position %" PRId64 " out of place", from,
			     e->position);
	}
	if (page->count && page->next <= page->events[page->count - 1].position)
		FAIL("category: next %" PRId64 " is not past the page", page->next);
	if (page->next < from)
		FAIL("category: next %" PRId64 " before from %" PRId64, page->next, from);
}

static void check_append(enum pv_err rc, int64_t expected, size_t count, int64_t version,
			 const char *msg)
{
	if (rc == PV_OK) {
		if (version < (int64_t)count - 1 ||
		    (expected >= 0 && (uint64_t)version != (uint64_t)expected + count))
			FAIL("append of %zu after %" PRId64 ": version %" PRId64, count, expected,
			     version);
	} else if (rc == PV_ERR_CONFLICT) {
		char at[48];

		if (version == expected && expected >= -1)
			FAIL("append after %" PRId64 ": a conflict at the expected version",
			     expected);
		if (version >= 0)
			snprintf(at, sizeof at, "the stream is at %" PRId64 ")", version);
		if (version >= 0 && !strstr(msg, at))
			FAIL("append: conflict at %" PRId64 " but the message says: %s", version,
			     msg);
	} else if (version != -1) {
		FAIL("append failed (%s) with version %" PRId64, msg, version);
	}
}

static void check_page(const char *word, const struct pv_es_page *page, int64_t from, size_t max)
{
	if (strcmp(word, "category") == 0)
		check_category_page(page, from < 0 ? 0 : from);
	else if (strcmp(word, "backward") == 0)
		check_stream_page(word, page, from, max, true);
	else /* a forward read from before 0 reads from 0 */
		check_stream_page(word, page, from < 0 ? 0 : from, max, false);
}

static void check_list(const struct pv_es_stream_list *list)
{
	for (size_t i = 0; i < list->count; i++) {
		const struct pv_es_stream_info *s = &list->streams[i];
		if (!s->name || strncmp(s->name, "Election-", 9) != 0 || s->version < 0 ||
		    !s->updated)
			FAIL("list: stream %zu without a name of the category, a version or a time",
			     i);
		if (i && strcmp(list->streams[i - 1].name, s->name) >= 0)
			FAIL("list: %zu streams not sorted or not unique", list->count);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_store_checks checks = {check_page, check_append, check_list};
	/* Two nodes: a transport failure moves to the next (next_host). */
	struct pv_es_options opts = {.backend = "kurrentdb",
				     .url = "kurrentdb://127.0.0.1:1,127.0.0.2:2?tls=false"};
	struct fuzz_answers answers;
	struct pv_error err = {PV_OK, ""};
	struct pv_es *es;
	struct fuzz_op op;

	pv_log_set_level(PV_LOG_ERROR);
	if (!fuzz_answers_op(&answers, data, size, &op))
		return 0;
	if (pv_es_kurrentdb_open(&opts, &es, &err) != PV_OK)
		FAIL("open: %s", err.msg);
	pv_es_kurrentdb_set_transport(es, answer, &answers);
	fuzz_store_run(es, &op, "fuzz-kurrentdb", &checks);
	return 0;
}
