/* The input of the fuzz targets of our HTTP clients (fuzz-esdb,
 * fuzz-cosmos): a first line naming the operation and its arguments, then
 * the server's answers in the order the client asks, each a raw HTTP/1.1
 * response (status line, header lines, an empty line, the body), separated
 * by lines "--".  The corpus files are written this way by
 * tests/fuzz/capture.py from real exchanges with the stand-ins. */
#ifndef PV_FUZZ_ANSWERS_H
#define PV_FUZZ_ANSWERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_client.h"

struct fuzz_answers {
	const char *p, *end;
};

/* Copies the first line (cut to opsize - 1) into op; the answers follow. */
void fuzz_answers_init(struct fuzz_answers *a, const uint8_t *data, size_t size, char *op,
		       size_t opsize);

/* The operation line of the event-store targets, "WORD A B": A is 0 and B
 * 1 when absent, B is brought into 1..5000 (a page size, a count). */
struct fuzz_op {
	char line[64];
	char word[16];
	long long a, b;
};
/* fuzz_answers_init with the line parsed; false when it names nothing. */
bool fuzz_answers_op(struct fuzz_answers *a, const uint8_t *data, size_t size, struct fuzz_op *op);

/* The next answer's bytes [*p, *stop); false when none is left. */
bool fuzz_answers_take(struct fuzz_answers *a, const char **p, const char **stop);
/* The status of the status line at p ("HTTP/1.1 200 OK", "HTTP/2 200"),
 * -1 when there is none that libcurl would take. */
long fuzz_answers_status(const char *p, const char *stop);
/* Hands fn each line from p (with its line end), up to and with the first
 * empty one; returns what follows it (stop when there is none). */
typedef void fuzz_line_fn(void *ctx, const char *line, size_t len);
const char *fuzz_answers_lines(const char *p, const char *stop, fuzz_line_fn *fn, void *ctx);

/* Delivers the next answer to resp as libcurl's callbacks would (the
 * status line and each header line, then the status, then the body).
 * 0: delivered; -1: none left; -2: no parseable status line (libcurl
 * would fail the transfer). */
int fuzz_answers_next(struct fuzz_answers *a, struct pv_http_answer *resp);

/* The transport stand-in both targets give their client (lib/http_client.h): ctx
 * is the struct fuzz_answers. */
pv_http_transport_fn fuzz_answers_transport;

/* Aborts (a finding) when an error message holds a raw control
 * character: untrusted text must reach messages and logs escaped. */
void fuzz_check_message(const char *target, const char *msg);

#endif
