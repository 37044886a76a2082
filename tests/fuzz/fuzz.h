/* Shared by the fuzz targets: a broken invariant is a finding, reported
 * like a crash (libFuzzer keeps the input, the replay fails). */
#ifndef PV_FUZZ_H
#define PV_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_FAIL(...)                                                                             \
	do {                                                                                       \
		fprintf(stderr, __VA_ARGS__);                                                      \
		fputc('\n', stderr);                                                               \
		abort();                                                                           \
	} while (0)

#endif
