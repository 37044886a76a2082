/* Election stream names (stream.h). */
#include "domain/stream.h"

#include <stdio.h>
#include <string.h>

#define PREFIX PV_ELECTION_CATEGORY "-"

void pv_election_stream(char out[PV_ELECTION_STREAM_SIZE], const char *election_id)
{
	snprintf(out, PV_ELECTION_STREAM_SIZE, PREFIX "%s", election_id);
}

const char *pv_election_of_stream(const char *stream)
{
	size_t n = sizeof PREFIX - 1;

	if (!stream || strncmp(stream, PREFIX, n) != 0 || !pv_ulid_valid(stream + n))
		return NULL;
	return stream + n;
}
