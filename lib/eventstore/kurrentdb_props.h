/* An event's metadata as the record properties of KurrentDB's multi-stream
 * append (AppendSession), and back.
 *
 * The v2 protocol carries metadata as properties, a map of
 * google.protobuf.Value; the server keeps them as a Struct, and a v1 read
 * gives them back as JSON (protobuf's JSON form) with the record's schema
 * added: "$schema.name" (the event type) and "$schema.format" ("Json").
 * What goes in must come out the same, so only metadata that makes that
 * round trip exactly is sent as properties: a non-empty object without a
 * "$" key, whose numbers are integers a double holds exactly and prints
 * without an exponent.  Anything else goes in a v1 Append, as bytes. */
#ifndef PV_EVENTSTORE_KURRENTDB_PROPS_H
#define PV_EVENTSTORE_KURRENTDB_PROPS_H

#include "lib/eventstore/proto/v2streams.pb-c.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* metadata (NULL: none) makes the round trip through properties. */
bool pv_kdb_props_exact(const json_t *metadata);

/* The properties of metadata (an object that is exact); they live in mem
 * until pv_kdb_props_free. */
struct pv_kdb_props {
	void **blocks;
	size_t n, cap;
};
Kurrentdb__Protocol__V2__Streams__AppendRecord__PropertiesEntry **
pv_kdb_props_build(const json_t *metadata, size_t *count, struct pv_kdb_props *mem);
void pv_kdb_props_free(struct pv_kdb_props *mem);

/* A read's metadata object: the keys the server adds to properties
 * ($schema.name equal to type, $schema.format, $schema.id) taken out.
 * Answers true when they were there (an object left empty then stands for
 * no metadata). */
bool pv_kdb_props_strip(json_t *metadata, const char *type);

#endif
