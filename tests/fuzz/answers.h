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

struct fuzz_answers {
	const char *p, *end;
};

/* Copies the first line (cut to opsize - 1) into op; the answers follow. */
void fuzz_answers_init(struct fuzz_answers *a, const uint8_t *data, size_t size, char *op,
		       size_t opsize);

/* How an answer reaches the client: as libcurl hands it over. */
struct fuzz_sink {
	void (*status)(void *answer, long status);
	void (*header)(void *answer, const char *line, size_t len);
	bool (*body)(void *answer, const char *data, size_t len);
};

/* Delivers the next answer to `answer`.  0: delivered; -1: none left;
 * -2: no parseable status line (libcurl would fail the transfer). */
int fuzz_answers_next(struct fuzz_answers *a, const struct fuzz_sink *sink, void *answer);

/* Aborts (a finding) when an error message holds a raw control
 * character: untrusted text must reach messages and logs escaped. */
void fuzz_check_message(const char *target, const char *msg);

#endif
