/* KurrentDB connection strings (see kurrentdb_conn.h).  The grammar is the
 * official clients' (scheme, userinfo, a comma-separated host list, then
 * ?key=value pairs joined with &); what they refuse we refuse, naming the
 * place, and what they ignore with a warning we ignore with one. */
#include "eventstore/kurrentdb_conn.h"

#include "log.h"
#include "xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	bool discover;
} schemes[] = {
	{"kurrentdb", false},   {"kurrent", false},           {"kdb", false},
	{"esdb", false},        {"kurrentdb+discover", true}, {"kurrent+discover", true},
	{"kdb+discover", true}, {"esdb+discover", true},
};

static const struct {
	const char *word;
	enum pv_kdb_node_preference pref;
} node_preferences[] = {
	{"leader", PV_KDB_NODE_LEADER},
	{"follower", PV_KDB_NODE_FOLLOWER},
	{"random", PV_KDB_NODE_RANDOM},
	{"readonlyreplica", PV_KDB_NODE_READ_ONLY_REPLICA},
	{"read_only_replica", PV_KDB_NODE_READ_ONLY_REPLICA},
};

/* Keys the clients know that do not change how we connect. */
static const char *const ignored_keys[] = {
	"connectionName",    "keepAliveInterval", "keepAliveTimeout",     "maxDiscoverAttempts",
	"discoveryInterval", "gossipTimeout",     "throwOnAppendFailure", "dnsDiscover",
	"userCertFile",      "userKeyFile",
};

/* The length of the scheme (up to "://") and whether it is one of ours. */
static bool scheme_of(const char *s, size_t *len, bool *discover)
{
	const char *end = strstr(s, "://");

	if (!end)
		return false;
	for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
		if ((size_t)(end - s) == strlen(schemes[i].name) &&
		    strncasecmp(s, schemes[i].name, (size_t)(end - s)) == 0) {
			*len = (size_t)(end - s) + 3;
			*discover = schemes[i].discover;
			return true;
		}
	return false;
}

bool pv_kdb_conn_is_string(const char *s)
{
	size_t len;
	bool discover;

	return s && scheme_of(s, &len, &discover);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes [s, s+n) into a new string; NULL when an escape is bad
 * or decodes to NUL. */
static char *percent_decode(const char *s, size_t n)
{
	char *out = pv_xmalloc(n + 1), *o = out;

	for (size_t i = 0; i < n; i++) {
		if (s[i] != '%') {
			*o++ = s[i];
			continue;
		}
		int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
		int lo = hi < 0 ? -1 : hexval((unsigned char)s[i + 2]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
			free(out);
			return NULL;
		}
		*o++ = (char)(hi * 16 + lo);
		i += 2;
	}
	*o = '\0';
	return out;
}

static enum pv_err parse_bool(const char *key, const char *v, bool *out, struct pv_error *err)
{
	if (strcasecmp(v, "true") == 0)
		*out = true;
	else if (strcasecmp(v, "false") == 0)
		*out = false;
	else
		return pv_error_set(err, PV_ERR_CONFIG,
				    "kurrentdb connection string: %s must be true or false", key);
	return PV_OK;
}

static enum pv_err parse_host(const char *s, size_t n, struct pv_kdb_host *h, struct pv_error *err)
{
	const char *colon = NULL, *host = s;
	size_t host_len = n;
	long port = PV_KDB_DEFAULT_PORT;

	if (n > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (!close)
			return pv_error_set(
				err, PV_ERR_CONFIG,
				"kurrentdb connection string: an IPv6 host lacks its ']'");
		host = s + 1;
		host_len = (size_t)(close - host);
		if (close + 1 < s + n) {
			if (close[1] != ':')
				return pv_error_set(err, PV_ERR_CONFIG,
						    "kurrentdb connection string: text after an "
						    "IPv6 host");
			colon = close + 1;
		}
	} else {
		colon = memchr(s, ':', n);
		if (colon) {
			host_len = (size_t)(colon - s);
			if (memchr(colon + 1, ':', (size_t)(s + n - colon - 1)))
				return pv_error_set(err, PV_ERR_CONFIG,
						    "kurrentdb connection string: a host has two "
						    "':' (put an IPv6 address in [])");
		}
	}
	if (host_len == 0)
		return pv_error_set(err, PV_ERR_CONFIG,
				    "kurrentdb connection string: an empty host");
	if (colon) {
		char buf[8];
		size_t plen = (size_t)(s + n - colon - 1);
		char *end;

		if (plen == 0 || plen >= sizeof buf)
			return pv_error_set(err, PV_ERR_CONFIG,
					    "kurrentdb connection string: a port must be 1-65535");
		memcpy(buf, colon + 1, plen);
		buf[plen] = '\0';
		errno = 0;
		port = strtol(buf, &end, 10);
		if (*end || errno || port < 1 || port > 65535)
			return pv_error_set(err, PV_ERR_CONFIG,
					    "kurrentdb connection string: a port must be 1-65535");
	}
	for (size_t i = 0; i < host_len; i++)
		if (!isalnum((unsigned char)host[i]) && !strchr(".-_:", host[i]))
			return pv_error_set(err, PV_ERR_CONFIG,
					    "kurrentdb connection string: a host name may hold "
					    "letters, digits, '.', '-', '_' (and ':' in [])");
	h->host = pv_xstrndup(host, host_len);
	h->port = (int)port;
	return PV_OK;
}

static enum pv_err parse_option(struct pv_kdb_conn *c, const char *pair, size_t n,
				struct pv_error *err)
{
	const char *eq = memchr(pair, '=', n);
	char key[64];
	char *value;
	enum pv_err rc = PV_OK;

	if (!eq || eq == pair || eq + 1 == pair + n)
		return pv_error_set(err, PV_ERR_CONFIG,
				    "kurrentdb connection string: options are key=value pairs "
				    "joined by '&'");
	if ((size_t)(eq - pair) >= sizeof key)
		return pv_error_set(err, PV_ERR_CONFIG,
				    "kurrentdb connection string: an option name is too long");
	memcpy(key, pair, (size_t)(eq - pair));
	key[eq - pair] = '\0';
	value = percent_decode(eq + 1, (size_t)(pair + n - eq - 1));
	if (!value)
		return pv_error_set(err, PV_ERR_CONFIG,
				    "kurrentdb connection string: the value of %.64s has a bad "
				    "%%-escape",
				    key);
	if (strcasecmp(key, "tls") == 0) {
		rc = parse_bool("tls", value, &c->tls, err);
	} else if (strcasecmp(key, "tlsVerifyCert") == 0) {
		rc = parse_bool("tlsVerifyCert", value, &c->tls_verify, err);
	} else if (strcasecmp(key, "tlsCAFile") == 0) {
		free(c->ca_file);
		c->ca_file = value;
		value = NULL;
	} else if (strcasecmp(key, "nodePreference") == 0) {
		size_t i, count = sizeof node_preferences / sizeof node_preferences[0];
		for (i = 0; i < count; i++)
			if (strcasecmp(value, node_preferences[i].word) == 0)
				break;
		if (i == count)
			rc = pv_error_set(err, PV_ERR_CONFIG,
					  "kurrentdb connection string: nodePreference must be "
					  "leader, follower, random or readonlyreplica");
		else
			c->node_preference = node_preferences[i].pref;
	} else if (strcasecmp(key, "defaultDeadline") == 0) {
		char *end;
		errno = 0;
		long v = strtol(value, &end, 10);
		if (*end || errno || v < 1 || v > 24L * 3600 * 1000)
			rc = pv_error_set(err, PV_ERR_CONFIG,
					  "kurrentdb connection string: defaultDeadline must be a "
					  "number of milliseconds");
		else
			c->deadline_ms = v;
	} else {
		size_t i, count = sizeof ignored_keys / sizeof ignored_keys[0];
		for (i = 0; i < count; i++)
			if (strcasecmp(key, ignored_keys[i]) == 0)
				break;
		if (i == count) {
			char shown[160];
			pv_log_escape(shown, sizeof shown, key, strlen(key));
			pv_log_warnx("kurrentdb",
				     "connection string: unknown option \"%s\", ignored", shown);
		}
	}
	free(value);
	return rc;
}

void pv_kdb_conn_clear(struct pv_kdb_conn *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->host_count; i++)
		free(c->hosts[i].host);
	free(c->username);
	pv_free_secret(c->password);
	free(c->ca_file);
	memset(c, 0, sizeof *c);
	c->deadline_ms = -1;
}

static enum pv_err parse_userinfo(struct pv_kdb_conn *c, const char *s, size_t n,
				  struct pv_error *err)
{
	const char *colon = memchr(s, ':', n);

	if (!colon || colon == s)
		return pv_error_set(err, PV_ERR_CONFIG,
				    "kurrentdb connection string: credentials are user:password@");
	c->username = percent_decode(s, (size_t)(colon - s));
	c->password = percent_decode(colon + 1, (size_t)(s + n - colon - 1));
	if (!c->username || !c->password)
		return pv_error_set(err, PV_ERR_CONFIG,
				    "kurrentdb connection string: the credentials have a bad "
				    "%%-escape");
	return PV_OK;
}

static enum pv_err parse_hosts(struct pv_kdb_conn *c, const char *s, size_t n, struct pv_error *err)
{
	const char *p = s, *end = s + n;

	if (n == 0)
		return pv_error_set(err, PV_ERR_CONFIG, "kurrentdb connection string: no host");
	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *stop = comma ? comma : end;
		enum pv_err rc;

		if (c->host_count == PV_KDB_HOSTS_MAX)
			return pv_error_set(err, PV_ERR_CONFIG,
					    "kurrentdb connection string: more than %d hosts",
					    PV_KDB_HOSTS_MAX);
		rc = parse_host(p, (size_t)(stop - p), &c->hosts[c->host_count], err);
		if (rc != PV_OK)
			return rc;
		c->host_count++;
		p = comma ? comma + 1 : end;
		if (comma && p == end)
			return pv_error_set(err, PV_ERR_CONFIG,
					    "kurrentdb connection string: an empty host after ','");
	}
	return PV_OK;
}

enum pv_err pv_kdb_conn_parse(const char *s, struct pv_kdb_conn *c, struct pv_error *err)
{
	size_t scheme_len;
	const char *rest, *at, *hosts_end, *query = NULL;
	enum pv_err rc;

	memset(c, 0, sizeof *c);
	c->tls = true;
	c->tls_verify = true;
	c->deadline_ms = -1;
	c->node_preference = PV_KDB_NODE_LEADER;
	if (!s || !scheme_of(s, &scheme_len, &c->discover))
		return pv_error_set(err, PV_ERR_CONFIG,
				    "kurrentdb connection string: it must start with kurrentdb://, "
				    "kurrentdb+discover://, esdb:// or esdb+discover://");
	rest = s + scheme_len;
	hosts_end = rest + strcspn(rest, "/?");
	at = memchr(rest, '@', (size_t)(hosts_end - rest));
	if (at) {
		/* The last '@' before the hosts: a password may hold one escaped. */
		const char *a;
		while ((a = memchr(at + 1, '@', (size_t)(hosts_end - at - 1))) != NULL)
			at = a;
		rc = parse_userinfo(c, rest, (size_t)(at - rest), err);
		if (rc != PV_OK)
			goto fail;
		rest = at + 1;
	}
	rc = parse_hosts(c, rest, (size_t)(hosts_end - rest), err);
	if (rc != PV_OK)
		goto fail;
	if (*hosts_end == '/')
		hosts_end++;
	if (*hosts_end == '?')
		query = hosts_end + 1;
	else if (*hosts_end) {
		rc = pv_error_set(err, PV_ERR_CONFIG,
				  "kurrentdb connection string: after the hosts comes '?' and the "
				  "options");
		goto fail;
	}
	while (query && *query) {
		size_t len = strcspn(query, "&");
		rc = parse_option(c, query, len, err);
		if (rc != PV_OK)
			goto fail;
		query += len;
		if (*query == '&')
			query++;
	}
	return PV_OK;
fail:
	pv_kdb_conn_clear(c);
	return rc;
}
