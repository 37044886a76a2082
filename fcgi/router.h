/* Routing by method and path, as a table.
 *
 * A pattern is a path of literal segments and {name} placeholders, each
 * placeholder matching one non-empty segment.  Matching a path against the
 * table answers one of: the route (with the placeholder values), 405 with
 * the methods the path does allow, or 404. */
#ifndef PV_FCGI_ROUTER_H
#define PV_FCGI_ROUTER_H

#include <stddef.h>

#define PV_ROUTE_MAX_PARAMS 4

/* The first member of each row of a caller's table; the caller's rows
 * carry handlers and arguments after it (hence `stride` below). */
struct pv_route {
	const char *method;
	const char *pattern;
};

/* A placeholder value: a slice of the path that was matched. */
struct pv_route_param {
	const char *name; /* the placeholder, without braces */
	size_t name_len;
	const char *value;
	size_t value_len;
};

struct pv_route_match {
	const struct pv_route *route; /* NULL unless status is 200 */
	int index;                    /* of route in the table, or -1 */
	int nparams;
	struct pv_route_param params[PV_ROUTE_MAX_PARAMS];
	char allow[96]; /* "GET, PUT" when status is 405 */
};

/* Returns 200, 404 or 405.  path starts with '/', has no query string.
 * table holds n rows of `stride` bytes, each starting with a pv_route. */
int pv_router_match(const void *table, size_t n, size_t stride, const char *method,
		    const char *path, struct pv_route_match *m);
/* The value of placeholder `name`, copied into out (size outsize); NULL if
 * the route has no such placeholder or the value does not fit. */
const char *pv_route_param(const struct pv_route_match *m, const char *name, char *out,
			   size_t outsize);

#endif
