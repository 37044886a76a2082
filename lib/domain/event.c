/* Event codec: strict validation of event data against the field spec of
 * the event table (table.h, rows in election.c), the envelope and the
 * metadata, and the value checks (ids, names, URLs, emails, dates,
 * ratings) that the election document decoder shares.
 *
 * Everything decoded here may come from the network, the broker or the
 * event store, so nothing is trusted: every key is known, every type is
 * checked, every string is measured in characters. */

#include "domain/event.h"
#include "domain/table.h"
#include "xalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define META_CORRELATION_MAX 128
#define META_SOURCE_MAX 256

/* jansson helpers: out of memory is handled the way pv_xmalloc does. */

json_t *pv_jobject(void)
{
	json_t *o = json_object();

	if (!o)
		pv_oom("json_object", sizeof *o);
	return o;
}

json_t *pv_jarray(void)
{
	json_t *a = json_array();

	if (!a)
		pv_oom("json_array", sizeof *a);
	return a;
}

json_t *pv_jstring(const char *s)
{
	/* Strings reaching here were validated as UTF-8 on the way in. */
	json_t *j = json_string(s);

	if (!j)
		pv_oom("json_string", strlen(s));
	return j;
}

json_t *pv_jstring_or_null(const char *s)
{
	return s ? pv_jstring(s) : json_null();
}

json_t *pv_jinteger(json_int_t i)
{
	json_t *j = json_integer(i);

	if (!j)
		pv_oom("json_integer", sizeof i);
	return j;
}

void pv_jset(json_t *obj, const char *key, json_t *value)
{
	if (json_object_set_new(obj, key, value) != 0)
		pv_oom("json_object_set_new", strlen(key));
}

void pv_jappend(json_t *array, json_t *value)
{
	if (json_array_append_new(array, value) != 0)
		pv_oom("json_array_append_new", sizeof value);
}

/* Type names and the field error words of the HTTP API. */

const char *pv_event_type_name(enum pv_event_type type)
{
	if ((unsigned)type >= PV_EV__COUNT)
		return "unknown";
	return pv_event_table[type].name;
}

int pv_event_type_parse(const char *name)
{
	if (!name)
		return -1;
	for (int i = 0; i < PV_EV__COUNT; i++)
		if (strcmp(name, pv_event_table[i].name) == 0)
			return i;
	return -1;
}

static const char *const field_error_words[] = {
	[PV_FIELD_ERR_NONE] = "none",
	[PV_FIELD_ERR_NOT_OBJECT] = "not_object",
	[PV_FIELD_ERR_MISSING] = "missing_field",
	[PV_FIELD_ERR_UNKNOWN] = "unknown_field",
	[PV_FIELD_ERR_TYPE] = "invalid_type",
	[PV_FIELD_ERR_TOO_LONG] = "field_too_long",
	[PV_FIELD_ERR_BAD_ID] = "invalid_id",
	[PV_FIELD_ERR_BAD_VALUE] = "invalid_value",
};

const char *pv_field_error_name(enum pv_field_error kind)
{
	if ((unsigned)kind >= sizeof field_error_words / sizeof field_error_words[0])
		return "unknown";
	return field_error_words[kind];
}

/* Value checks. */

long pv_utf8_count(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	long n = 0;
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];
		size_t extra;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			n++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			extra = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			extra = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			extra = 3;
			cp = c & 0x07;
		} else {
			return -1;
		}
		if (len - i <= extra)
			return -1;
		for (size_t k = 1; k <= extra; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return -1;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates and values past U+10FFFF. */
		if ((extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return -1;
		i += extra + 1;
		n++;
	}
	return n;
}

bool pv_ident_equal(const char *a, const char *b)
{
	if (!a || !b)
		return false;
	return strcasecmp(a, b) == 0;
}

static bool has_control(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return true;
	return false;
}

static bool only_space(const char *s)
{
	for (; *s; s++)
		if (!isspace((unsigned char)*s))
			return false;
	return true;
}

/* Host of a URL: a DNS name, an IPv4 address or a bracketed IPv6 literal,
 * then an optional port.  [s, end) is the authority without userinfo. */
static bool url_host_valid(const char *s, const char *end)
{
	const char *port = NULL;

	if (s == end)
		return false;
	if (*s == '[') {
		const char *close = memchr(s, ']', (size_t)(end - s));

		if (!close || close == s + 1)
			return false;
		for (const char *p = s + 1; p < close; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
				return false;
		if (close + 1 < end) {
			if (close[1] != ':')
				return false;
			port = close + 2;
		}
	} else {
		const char *colon = memchr(s, ':', (size_t)(end - s));
		const char *hend = colon ? colon : end;
		const char *label = s;

		if (hend == s)
			return false;
		for (const char *p = s; p <= hend; p++) {
			if (p == hend || *p == '.') {
				/* Empty labels, and labels starting or ending with '-'. */
				if (p == label || *label == '-' || p[-1] == '-')
					return false;
				label = p + 1;
				continue;
			}
			if (!isalnum((unsigned char)*p) && *p != '-')
				return false;
		}
		if (colon)
			port = colon + 1;
	}
	if (port) {
		unsigned long v = 0;

		if (port == end || end - port > 5)
			return false;
		for (const char *p = port; p < end; p++) {
			if (!isdigit((unsigned char)*p))
				return false;
			v = v * 10 + (unsigned long)(*p - '0');
		}
		if (v == 0 || v > 65535)
			return false;
	}
	return true;
}

static bool url_valid(const char *s)
{
	const char *rest, *auth_end, *at;

	if (strncasecmp(s, "http://", 7) == 0)
		rest = s + 7;
	else if (strncasecmp(s, "https://", 8) == 0)
		rest = s + 8;
	else
		return false;
	/* Printable ASCII only, without the characters RFC 3986 never allows. */
	for (const unsigned char *p = (const unsigned char *)rest; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f || strchr("<>\"\\^`{|}", *p))
			return false;
	auth_end = rest + strcspn(rest, "/?#");
	at = memchr(rest, '@', (size_t)(auth_end - rest));
	return url_host_valid(at ? at + 1 : rest, auth_end);
}

static bool email_valid(const char *s)
{
	const char *at = strchr(s, '@');
	const char *domain, *label;

	if (!at || at == s || at - s > 64 || strchr(at + 1, '@'))
		return false;
	for (const char *p = s; p < at; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f ||
		    strchr("\"(),:;<>[\\]", *p))
			return false;
	if (*s == '.' || at[-1] == '.' || strstr(s, "..") != NULL)
		return false;
	domain = at + 1;
	if (!strchr(domain, '.'))
		return false;
	label = domain;
	for (const char *p = domain;; p++) {
		if (*p == '\0' || *p == '.') {
			if (p == label || *label == '-' || p[-1] == '-')
				return false;
			if (*p == '\0')
				break;
			label = p + 1;
			continue;
		}
		if (!isalnum((unsigned char)*p) && *p != '-')
			return false;
	}
	return true;
}

static int days_in_month(int y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

/* Reads exactly n digits. */
static bool digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * well-known civil-calendar arithmetic). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

bool pv_rfc3339_parse(const char *s, int64_t *sec, long *nsec)
{
	int y, mo, d, h, mi, se, oh = 0, om = 0, sign = 0;
	long frac = 0;
	const char *p = s;

	if (!s || strlen(s) > 64)
		return false;
	if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
	    !digits(&p, 2, &d))
		return false;
	if (*p != 'T' && *p != 't')
		return false;
	p++;
	if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi) || *p++ != ':' ||
	    !digits(&p, 2, &se))
		return false;
	if (*p == '.') {
		int n = 0;

		p++;
		while (isdigit((unsigned char)*p)) {
			if (n < 9) {
				frac = frac * 10 + (*p - '0');
				n++;
			}
			p++;
		}
		if (n == 0)
			return false;
		for (; n < 9; n++)
			frac *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '+' ? 1 : -1;
		p++;
		if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om))
			return false;
	} else {
		return false;
	}
	if (*p != '\0')
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
	    se > 60 || oh > 23 || om > 59)
		return false;
	if (sec)
		*sec = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se -
		       sign * (oh * 3600 + om * 60);
	if (nsec)
		*nsec = frac;
	return true;
}

bool pv_rfc3339_valid(const char *s)
{
	return pv_rfc3339_parse(s, NULL, NULL);
}

void pv_rfc3339_now(char out[32])
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03dZ", (int)(ts.tv_nsec / 1000000) % 1000);
}

/* A string's length in characters, refusing embedded NUL and bad UTF-8. */
static enum pv_field_error string_measure(const json_t *v, long max, const char **why)
{
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	long n;

	if (strlen(s) != len) {
		*why = "contains a NUL character";
		return PV_FIELD_ERR_BAD_VALUE;
	}
	n = pv_utf8_count(s, len);
	if (n < 0) {
		*why = "is not valid UTF-8";
		return PV_FIELD_ERR_BAD_VALUE;
	}
	if (n > max) {
		*why = "is too long";
		return PV_FIELD_ERR_TOO_LONG;
	}
	return PV_FIELD_ERR_NONE;
}

enum pv_field_error pv_field_value_check(enum pv_field_kind kind, const json_t *v, const char **why)
{
	static const long max_len[] = {
		[PV_FK_ULID] = PV_ULID_LEN,        [PV_FK_NAME] = PV_NAME_MAX,
		[PV_FK_TEXT] = PV_DESCRIPTION_MAX, [PV_FK_URL] = PV_URL_MAX,
		[PV_FK_EMAIL] = PV_EMAIL_MAX,      [PV_FK_DATE] = 64,
	};
	enum pv_field_error fe;
	const char *s;

	if (kind == PV_FK_RATING) {
		json_int_t r;

		if (!json_is_integer(v)) {
			*why = "must be an integer from 1 to 5 or null";
			return PV_FIELD_ERR_TYPE;
		}
		r = json_integer_value(v);
		if (r < PV_RATING_MIN || r > PV_RATING_MAX) {
			*why = "must be from 1 to 5";
			return PV_FIELD_ERR_BAD_VALUE;
		}
		return PV_FIELD_ERR_NONE;
	}
	if (!json_is_string(v)) {
		*why = "must be a string";
		return PV_FIELD_ERR_TYPE;
	}
	if (kind == PV_FK_ULID) {
		/* An id is never "too long": it is simply not an id. */
		if (!pv_ulid_valid(json_string_value(v)) || json_string_length(v) != PV_ULID_LEN) {
			*why = "is not a ULID (26 upper-case Crockford base32 characters)";
			return PV_FIELD_ERR_BAD_ID;
		}
		return PV_FIELD_ERR_NONE;
	}
	fe = string_measure(v, max_len[kind], why);
	if (fe != PV_FIELD_ERR_NONE)
		return fe;
	s = json_string_value(v);
	switch (kind) {
	case PV_FK_NAME:
		if (only_space(s)) {
			*why = "must not be empty";
			return PV_FIELD_ERR_BAD_VALUE;
		}
		if (has_control(s)) {
			*why = "must not contain control characters";
			return PV_FIELD_ERR_BAD_VALUE;
		}
		break;
	case PV_FK_URL:
		if (!url_valid(s)) {
			*why = "is not an http or https URL";
			return PV_FIELD_ERR_BAD_VALUE;
		}
		break;
	case PV_FK_EMAIL:
		if (!email_valid(s)) {
			*why = "is not an email address";
			return PV_FIELD_ERR_BAD_VALUE;
		}
		break;
	case PV_FK_DATE:
		if (!pv_rfc3339_valid(s)) {
			*why = "is not an RFC 3339 date-time";
			return PV_FIELD_ERR_BAD_VALUE;
		}
		break;
	default: break;
	}
	return PV_FIELD_ERR_NONE;
}

/* Event data. */

static const struct pv_field_spec election_id_field = {"election_id", PV_FK_ULID, 0};

static enum pv_err field_fail(enum pv_field_error fe, const char *type, const char *name,
			      const char *why, enum pv_field_error *kind,
			      char field[PV_FIELD_NAME_MAX], struct pv_error *err)
{
	enum pv_err code = fe <= PV_FIELD_ERR_TYPE ? PV_ERR_JSON : PV_ERR_INVALID;

	if (kind)
		*kind = fe;
	if (field)
		snprintf(field, PV_FIELD_NAME_MAX, "%s", name);
	return pv_error_set(err, code, "%s: field \"%.64s\" %s (%s)", type, name, why,
			    pv_field_error_name(fe));
}

static enum pv_err check_field(const struct pv_field_spec *f, const json_t *data, const char *type,
			       enum pv_field_error *kind, char field[PV_FIELD_NAME_MAX],
			       struct pv_error *err)
{
	const json_t *v = json_object_get(data, f->name);
	enum pv_field_error fe;
	const char *why = "";

	if (!v) {
		if (f->flags & PV_FF_OPTIONAL)
			return PV_OK;
		return field_fail(PV_FIELD_ERR_MISSING, type, f->name, "is missing", kind, field,
				  err);
	}
	if (json_is_null(v)) {
		if (f->flags & (PV_FF_OPTIONAL | PV_FF_NULLABLE))
			return PV_OK;
		return field_fail(PV_FIELD_ERR_TYPE, type, f->name, "must not be null", kind, field,
				  err);
	}
	fe = pv_field_value_check(f->kind, v, &why);
	if (fe != PV_FIELD_ERR_NONE)
		return field_fail(fe, type, f->name, why, kind, field, err);
	return PV_OK;
}

static bool spec_has(const struct pv_field_spec *fields, const char *key)
{
	if (strcmp(key, election_id_field.name) == 0)
		return true;
	for (const struct pv_field_spec *f = fields; f->name; f++)
		if (strcmp(key, f->name) == 0)
			return true;
	return false;
}

enum pv_err pv_event_validate_data(enum pv_event_type type, const json_t *data,
				   enum pv_field_error *kind, char field[PV_FIELD_NAME_MAX],
				   struct pv_error *err)
{
	const struct pv_event_def *def;
	const char *key;
	const json_t *v;
	enum pv_err rc;

	if (kind)
		*kind = PV_FIELD_ERR_NONE;
	if (field)
		field[0] = '\0';
	if ((unsigned)type >= PV_EV__COUNT)
		return pv_error_set(err, PV_ERR_INVALID, "unknown event type %d", (int)type);
	def = &pv_event_table[type];
	if (!json_is_object(data)) {
		if (kind)
			*kind = PV_FIELD_ERR_NOT_OBJECT;
		return pv_error_set(err, PV_ERR_JSON, "%s: data must be a JSON object (not_object)",
				    def->name);
	}
	rc = check_field(&election_id_field, data, def->name, kind, field, err);
	if (rc != PV_OK)
		return rc;
	for (const struct pv_field_spec *f = def->fields; f->name; f++) {
		rc = check_field(f, data, def->name, kind, field, err);
		if (rc != PV_OK)
			return rc;
	}
	json_object_foreach((json_t *)data, key, v)
	{
		if (!spec_has(def->fields, key))
			return field_fail(PV_FIELD_ERR_UNKNOWN, def->name, key,
					  "is not a field of this event", kind, field, err);
	}
	return PV_OK;
}

/* The text rule (event.h). */

/* The code point at *p (valid UTF-8, checked before), and past it. */
static uint32_t utf8_next(const unsigned char **p)
{
	const unsigned char *s = *p;
	uint32_t cp;
	int extra;

	if (s[0] < 0x80) {
		*p = s + 1;
		return s[0];
	}
	extra = s[0] >= 0xf0 ? 3 : s[0] >= 0xe0 ? 2 : 1;
	cp = s[0] & (0x3fu >> extra);
	for (int k = 1; k <= extra; k++)
		cp = (cp << 6) | (s[k] & 0x3fu);
	*p = s + extra + 1;
	return cp;
}

/* Characters that reorder or hide text in a one-line field. */
static const struct {
	uint32_t lo, hi;
} hidden_ranges[] = {
	{0x200b, 0x200b}, /* zero width space */
	{0x200e, 0x200f}, /* left-to-right and right-to-left marks */
	{0x202a, 0x202e}, /* bidi embeddings and overrides */
	{0x2060, 0x2060}, /* word joiner */
	{0x2066, 0x2069}, /* bidi isolates */
	{0xfeff, 0xfeff}, /* zero width no-break space (BOM) */
};

/* Why s breaks the rule for a field of this kind, or NULL. */
static const char *text_rule_broken(enum pv_field_kind kind, const char *s, uint32_t *bad)
{
	const unsigned char *p = (const unsigned char *)s;
	bool multiline = kind == PV_FK_TEXT;

	while (*p) {
		uint32_t cp = utf8_next(&p);

		*bad = cp;
		if (cp < 0x20 && !(multiline && (cp == '\n' || cp == '\t')))
			return "a control character";
		if (cp >= 0x7f && cp <= 0x9f)
			return "a control character";
		if (multiline)
			continue;
		for (size_t i = 0; i < sizeof hidden_ranges / sizeof hidden_ranges[0]; i++)
			if (cp >= hidden_ranges[i].lo && cp <= hidden_ranges[i].hi)
				return "an invisible or bidi control character";
	}
	return NULL;
}

enum pv_err pv_event_check_text(enum pv_event_type type, const json_t *data,
				enum pv_field_error *kind, char field[PV_FIELD_NAME_MAX],
				struct pv_error *err)
{
	const struct pv_event_def *def;

	if ((unsigned)type >= PV_EV__COUNT)
		return pv_error_set(err, PV_ERR_INVALID, "unknown event type %d", (int)type);
	def = &pv_event_table[type];
	for (const struct pv_field_spec *f = def->fields; f->name; f++) {
		const char *s = json_string_value(json_object_get(data, f->name)), *why;
		char what[96];
		uint32_t bad = 0;

		if (!s || f->kind == PV_FK_ULID || f->kind == PV_FK_DATE)
			continue;
		why = text_rule_broken(f->kind, s, &bad);
		if (why) {
			snprintf(what, sizeof what, "must not contain %s (U+%04X)", why,
				 (unsigned)bad);
			return field_fail(PV_FIELD_ERR_BAD_VALUE, def->name, f->name, what, kind,
					  field, err);
		}
	}
	return PV_OK;
}

/* Metadata. */

static bool meta_string_ok(const char *s, long max)
{
	long n;

	if (!s || !*s || has_control(s))
		return false;
	n = pv_utf8_count(s, strlen(s));
	return n > 0 && n <= max;
}

static enum pv_err meta_validate(const struct pv_event_meta *m, struct pv_error *err)
{
	if (!meta_string_ok(m->user, PV_USER_MAX))
		return pv_error_set(err, PV_ERR_INVALID,
				    "metadata: field \"user\" must be a non-empty identity of at "
				    "most %d characters without control characters",
				    PV_USER_MAX);
	if (!pv_rfc3339_valid(m->at))
		return pv_error_set(err, PV_ERR_INVALID,
				    "metadata: field \"at\" is not an RFC 3339 date-time");
	if (m->correlation_id && !meta_string_ok(m->correlation_id, META_CORRELATION_MAX))
		return pv_error_set(err, PV_ERR_INVALID,
				    "metadata: field \"correlation_id\" is empty, too long or "
				    "holds control characters");
	if (m->source && !meta_string_ok(m->source, META_SOURCE_MAX))
		return pv_error_set(err, PV_ERR_INVALID,
				    "metadata: field \"source\" is empty, too long or holds "
				    "control characters");
	return PV_OK;
}

static char *dup_or_null(const char *s)
{
	return s ? pv_xstrdup(s) : NULL;
}

void pv_event_meta_clear(struct pv_event_meta *meta)
{
	if (!meta)
		return;
	free(meta->user);
	free(meta->at);
	free(meta->correlation_id);
	free(meta->source);
	memset(meta, 0, sizeof *meta);
}

json_t *pv_event_meta_to_json(const struct pv_event_meta *meta)
{
	json_t *o = pv_jobject();

	pv_jset(o, "user", pv_jstring(meta->user ? meta->user : ""));
	pv_jset(o, "admin", json_boolean(meta->admin));
	pv_jset(o, "at", pv_jstring(meta->at ? meta->at : ""));
	if (meta->correlation_id)
		pv_jset(o, "correlation_id", pv_jstring(meta->correlation_id));
	if (meta->source)
		pv_jset(o, "source", pv_jstring(meta->source));
	return o;
}

/* Reads an optional (absent or null) or required string member. */
static enum pv_err meta_get_string(const json_t *o, const char *key, bool required, char **out,
				   struct pv_error *err)
{
	const json_t *v = json_object_get(o, key);

	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return pv_error_set(err, PV_ERR_JSON,
					    "metadata: field \"%s\" is missing (missing_field)",
					    key);
		return PV_OK;
	}
	if (!json_is_string(v))
		return pv_error_set(err, PV_ERR_JSON,
				    "metadata: field \"%s\" must be a string (invalid_type)", key);
	if (strlen(json_string_value(v)) != json_string_length(v))
		return pv_error_set(err, PV_ERR_INVALID,
				    "metadata: field \"%s\" contains a NUL character", key);
	*out = pv_xstrdup(json_string_value(v));
	return PV_OK;
}

enum pv_err pv_event_meta_from_json(const json_t *json, struct pv_event_meta *meta,
				    struct pv_error *err)
{
	static const char *const keys[] = {"user", "admin", "at", "correlation_id", "source"};
	const json_t *v;
	const char *key;
	enum pv_err rc;

	memset(meta, 0, sizeof *meta);
	if (!json_is_object(json))
		return pv_error_set(err, PV_ERR_JSON, "metadata must be a JSON object");
	json_object_foreach((json_t *)json, key, v)
	{
		bool known = false;

		for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
			known = known || strcmp(key, keys[i]) == 0;
		if (!known)
			return pv_error_set(err, PV_ERR_JSON,
					    "metadata: field \"%.64s\" is not a metadata field "
					    "(unknown_field)",
					    key);
	}
	v = json_object_get(json, "admin");
	if (v && !json_is_boolean(v))
		return pv_error_set(err, PV_ERR_JSON,
				    "metadata: field \"admin\" must be a boolean (invalid_type)");
	meta->admin = v && json_is_true(v);
	if ((rc = meta_get_string(json, "user", true, &meta->user, err)) != PV_OK ||
	    (rc = meta_get_string(json, "at", true, &meta->at, err)) != PV_OK ||
	    (rc = meta_get_string(json, "correlation_id", false, &meta->correlation_id, err)) !=
		    PV_OK ||
	    (rc = meta_get_string(json, "source", false, &meta->source, err)) != PV_OK ||
	    (rc = meta_validate(meta, err)) != PV_OK) {
		pv_event_meta_clear(meta);
		return rc;
	}
	return PV_OK;
}

/* Events. */

enum pv_err pv_event_init(struct pv_event *ev, const char *event_id, enum pv_event_type type,
			  json_t *data, const struct pv_event_meta *meta, struct pv_error *err)
{
	struct pv_event_meta m = *meta;
	char now[32];
	enum pv_err rc;

	memset(ev, 0, sizeof *ev);
	if (!pv_uuid_valid(event_id)) {
		json_decref(data);
		return pv_error_set(err, PV_ERR_INVALID, "event id is not a UUID");
	}
	rc = pv_event_validate_data(type, data, NULL, NULL, err);
	if (rc != PV_OK) {
		json_decref(data);
		return rc;
	}
	/* A command built just now may leave the time to us. */
	if (!m.at) {
		pv_rfc3339_now(now);
		m.at = now;
	}
	rc = meta_validate(&m, err);
	if (rc != PV_OK) {
		json_decref(data);
		return rc;
	}
	snprintf(ev->id, sizeof ev->id, "%s", event_id);
	ev->type = type;
	ev->data = data;
	ev->meta.user = pv_xstrdup(m.user);
	ev->meta.admin = m.admin;
	ev->meta.at = pv_xstrdup(m.at);
	ev->meta.correlation_id = dup_or_null(m.correlation_id);
	ev->meta.source = dup_or_null(m.source);
	return PV_OK;
}

void pv_event_clear(struct pv_event *ev)
{
	if (!ev)
		return;
	json_decref(ev->data);
	pv_event_meta_clear(&ev->meta);
	memset(ev, 0, sizeof *ev);
}

const char *pv_event_election_id(const struct pv_event *ev)
{
	return json_string_value(json_object_get(ev->data, "election_id"));
}

json_t *pv_event_to_json(const struct pv_event *ev)
{
	json_t *o = pv_jobject();

	pv_jset(o, "event_id", pv_jstring(ev->id));
	pv_jset(o, "type", pv_jstring(pv_event_type_name(ev->type)));
	/* A NULL copy (out of memory) makes pv_jset report it. */
	pv_jset(o, "data", json_deep_copy(ev->data));
	pv_jset(o, "metadata", pv_event_meta_to_json(&ev->meta));
	return o;
}

enum pv_err pv_event_from_json(const json_t *json, struct pv_event *ev, struct pv_error *err)
{
	static const char *const keys[] = {"event_id", "type", "data", "metadata"};
	const json_t *v, *jid, *jtype, *jdata, *jmeta;
	struct pv_event_meta meta;
	json_t *data;
	const char *key;
	enum pv_err rc;
	int type;

	memset(ev, 0, sizeof *ev);
	if (!json_is_object(json))
		return pv_error_set(err, PV_ERR_JSON, "event envelope must be a JSON object");
	json_object_foreach((json_t *)json, key, v)
	{
		bool known = false;

		for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
			known = known || strcmp(key, keys[i]) == 0;
		if (!known)
			return pv_error_set(err, PV_ERR_JSON,
					    "envelope: field \"%.64s\" is not an envelope field "
					    "(unknown_field)",
					    key);
	}
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (!json_object_get(json, keys[i]))
			return pv_error_set(err, PV_ERR_JSON,
					    "envelope: field \"%s\" is missing (missing_field)",
					    keys[i]);
	jid = json_object_get(json, "event_id");
	jtype = json_object_get(json, "type");
	jdata = json_object_get(json, "data");
	jmeta = json_object_get(json, "metadata");
	if (!json_is_string(jid) || !pv_uuid_valid(json_string_value(jid)))
		return pv_error_set(err, PV_ERR_INVALID,
				    "envelope: field \"event_id\" is not a UUID (invalid_id)");
	if (!json_is_string(jtype))
		return pv_error_set(err, PV_ERR_JSON,
				    "envelope: field \"type\" must be a string (invalid_type)");
	type = pv_event_type_parse(json_string_value(jtype));
	if (type < 0)
		return pv_error_set(err, PV_ERR_INVALID,
				    "envelope: field \"type\": unknown event type \"%.64s\"",
				    json_string_value(jtype));
	rc = pv_event_meta_from_json(jmeta, &meta, err);
	if (rc != PV_OK)
		return rc;
	data = json_deep_copy(jdata);
	if (!data)
		pv_oom("json_deep_copy", 0);
	rc = pv_event_init(ev, json_string_value(jid), (enum pv_event_type)type, data, &meta, err);
	pv_event_meta_clear(&meta);
	if (rc != PV_OK)
		return pv_error_prefix(err, "envelope: field \"data\"");
	return PV_OK;
}
