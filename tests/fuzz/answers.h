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
