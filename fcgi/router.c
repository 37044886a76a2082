#include "router.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Matches one pattern; fills params on success. */
static bool match_pattern(const char *pattern, const char *path, struct pv_route_match *m)
{
	const char *p = pattern, *s = path;

	m->nparams = 0;
	while (*p && *s) {
		if (*p != '/' || *s != '/')
			return false;
		p++;
		s++;
		size_t plen = strcspn(p, "/"), slen = strcspn(s, "/");
		if (plen >= 2 && p[0] == '{' && p[plen - 1] == '}') {
			if (slen == 0 || m->nparams == PV_ROUTE_MAX_PARAMS)
				return false;
			struct pv_route_param *prm = &m->params[m->nparams++];
			prm->name = p + 1;
			prm->name_len = plen - 2;
			prm->value = s;
			prm->value_len = slen;
		} else if (plen != slen || memcmp(p, s, plen) != 0) {
			return false;
		}
		p += plen;
		s += slen;
	}
	return *p == '\0' && *s == '\0';
}

int pv_router_match(const void *table, size_t n, size_t stride, const char *method,
		    const char *path, struct pv_route_match *m)
{
	size_t used = 0;
	bool path_known = false;

	memset(m, 0, sizeof *m);
	m->index = -1;
	for (size_t i = 0; i < n; i++) {
		const struct pv_route *r = (const void *)((const char *)table + i * stride);

		if (!match_pattern(r->pattern, path, m))
			continue;
		if (strcmp(r->method, method) == 0) {
			m->route = r;
			m->index = (int)i;
			return 200;
		}
		/* Allow lists each method once, in table order. */
		path_known = true;
		if (!strstr(m->allow, r->method) && used + strlen(r->method) + 3 < sizeof m->allow)
			used += (size_t)snprintf(m->allow + used, sizeof m->allow - used, "%s%s",
						 used ? ", " : "", r->method);
	}
	m->nparams = 0;
	return path_known ? 405 : 404;
}

const char *pv_route_param(const struct pv_route_match *m, const char *name, char *out,
			   size_t outsize)
{
	for (int i = 0; i < m->nparams; i++) {
		const struct pv_route_param *p = &m->params[i];

		if (strlen(name) != p->name_len || memcmp(name, p->name, p->name_len) != 0)
			continue;
		if (p->value_len >= outsize)
			return NULL;
		memcpy(out, p->value, p->value_len);
		out[p->value_len] = '\0';
		return out;
	}
	return NULL;
}
