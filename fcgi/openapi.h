/* The OpenAPI document of the HTTP API (fcgi/openapi.json), compiled into
 * the program and served at GET /openapi.json.  The build turns the JSON
 * file into a C string (openapi-embed.awk writes openapi-json.c), so the
 * program always serves the document of its own source tree. */
#ifndef PV_FCGI_OPENAPI_H
#define PV_FCGI_OPENAPI_H

#include <stddef.h>

extern const char pv_openapi_json[];
extern const size_t pv_openapi_json_len;

#endif
