/* How many events per second an EventStoreDB server (or the stand-in)
 * takes from the esdb backend's batched, concurrent appends: units of
 * STREAMS append requests (one per stream, PER_REQUEST events each, the
 * streams' requests IN_FLIGHT at a time) until EVENTS events are in.
 * Prints one line of figures.  Not a test: tests/bench/bench-esdb.sh runs
 * it against the stand-in (docs/benchmarks.md).
 *
 * Usage: bench-esdb URL EVENTS STREAMS PER_REQUEST IN_FLIGHT */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "eventstore.h"
#include "id.h"
#include "xalloc.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct pv_es_options o = {.backend = "esdb", .username = "admin", .password = "changeit"};
	long events, streams, per, appended = 0, requests = 0;
	char ulid[PV_ULID_LEN + 1];
	struct pv_es_append_req *reqs;
	struct pv_es_new_event *evs;
	char(*ids)[PV_UUID_LEN + 1];
	char **names;
	int64_t *version;
	json_t *data;
	struct pv_error err;
	struct pv_es *es;
	double t0, secs;

	if (argc != 6) {
		fprintf(stderr, "usage: bench-esdb URL EVENTS STREAMS PER_REQUEST IN_FLIGHT\n");
		return 2;
	}
	o.url = argv[1];
	events = atol(argv[2]);
	streams = atol(argv[3]);
	per = atol(argv[4]);
	o.in_flight = atol(argv[5]);
	if (events < 1 || streams < 1 || per < 1 || o.in_flight < 1) {
		fprintf(stderr, "bench-esdb: numbers must be >= 1\n");
		return 2;
	}
	if (pv_es_open(&o, &es, &err) != PV_OK) {
		fprintf(stderr, "bench-esdb: %s\n", err.msg);
		return 1;
	}
	if (pv_ulid_new(ulid, NULL) != PV_OK)
		return 1;
	reqs = pv_xcalloc((size_t)streams, sizeof *reqs);
	evs = pv_xcalloc((size_t)(streams * per), sizeof *evs);
	ids = pv_xcalloc((size_t)(streams * per), sizeof *ids);
	names = pv_xcalloc((size_t)streams, sizeof *names);
	version = pv_xcalloc((size_t)streams, sizeof *version);
	/* An event of the size of a typical vote: a few ids and a number. */
	data = json_pack("{s:s, s:s, s:s, s:i}", "election_id", ulid, "ballot_id", ulid,
			 "candidate_id", ulid, "rating", 4);
	for (long s = 0; s < streams; s++) {
		names[s] = pv_xasprintf("Bench%s-%ld", ulid, s);
		version[s] = PV_ES_NO_STREAM;
	}
	t0 = now_s();
	while (appended < events) {
		size_t failed;

		for (long s = 0; s < streams; s++) {
			for (long k = 0; k < per; k++) {
				pv_uuid_new(ids[s * per + k]);
				evs[s * per + k] = (struct pv_es_new_event){
					ids[s * per + k], "BallotCandidateRated", data, NULL};
			}
			reqs[s] = (struct pv_es_append_req){.stream = names[s],
							    .expected = version[s],
							    .events = &evs[s * per],
							    .count = (size_t)per};
		}
		if (pv_es_append_many(es, reqs, (size_t)streams, &failed, &err) != PV_OK) {
			fprintf(stderr, "bench-esdb: %s\n", err.msg);
			return 1;
		}
		for (long s = 0; s < streams; s++)
			version[s] = reqs[s].version;
		appended += streams * per;
		requests += streams;
	}
	secs = now_s() - t0;
	printf("%ld events in %ld requests (%ld streams x %ld events, %ld in flight): %.2f s, "
	       "%.0f events/s, %.0f requests/s\n",
	       appended, requests, streams, per, o.in_flight, secs, (double)appended / secs,
	       (double)requests / secs);
	for (long s = 0; s < streams; s++)
		free(names[s]);
	json_decref(data);
	free(names);
	free(version);
	free(ids);
	free(evs);
	free(reqs);
	pv_es_close(es);
	return 0;
}
