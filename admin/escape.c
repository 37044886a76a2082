/* Untrusted text made safe for a terminal (escape.h). */
#include "escape.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Code points that are valid UTF-8 but act on the display: C1 controls,
 * zero-width and direction marks, line/paragraph separators, embeddings
 * and overrides, invisible operators and isolates, the BOM. */
static const struct {
	uint32_t lo, hi;
} hidden[] = {
	{0x80, 0x9f}, {0x200b, 0x200f}, {0x2028, 0x202e}, {0x2060, 0x2069}, {0xfeff, 0xfeff},
};

static bool is_hidden(uint32_t cp)
{
	for (size_t i = 0; i < sizeof hidden / sizeof hidden[0]; i++)
		if (cp >= hidden[i].lo && cp <= hidden[i].hi)
			return true;
	return false;
}

/* Length of the well-formed UTF-8 sequence at s (lead byte >= 0x80) and
 * its code point; 0 when it is not well formed (overlong, surrogate, past
 * U+10FFFF, truncated). */
static size_t utf8_seq(const unsigned char *s, size_t len, uint32_t *cp)
{
	size_t n;
	uint32_t c, min;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2, c = s[0] & 0x1f, min = 0x80;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3, c = s[0] & 0x0f, min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4, c = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

void pv_escape_append(struct pv_buf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, plain = 0;

	pv_buf_reserve(b, len);
	while (i < len) {
		uint32_t cp;
		size_t n;

		if (p[i] >= 0x20 && p[i] < 0x7f) {
			i++;
			continue;
		}
		pv_buf_append(b, s + plain, i - plain);
		n = p[i] < 0x80 ? 0 : utf8_seq(p + i, len - i, &cp);
		if (n == 0) {
			pv_buf_printf(b, "\\x%02x", p[i]);
			i++;
		} else if (is_hidden(cp)) {
			pv_buf_printf(b, "\\u{%04x}", (unsigned)cp);
			i += n;
		} else {
			pv_buf_append(b, s + i, n);
			i += n;
		}
		plain = i;
	}
	pv_buf_append(b, s + plain, i - plain);
}

char *pv_escape_mem(const char *s, size_t len)
{
	struct pv_buf b = PV_BUF_INIT;

	pv_escape_append(&b, s ? s : "", s ? len : 0);
	return pv_buf_steal(&b);
}

char *pv_escape_str(const char *s)
{
	return pv_escape_mem(s, s ? strlen(s) : 0);
}

char *pv_escape_json(const char *json)
{
	struct pv_buf b = PV_BUF_INIT;

	for (const char *p = json; *p; p++) {
		if (*p == 0x7f)
			pv_buf_puts(&b, "\\u007f");
		else
			pv_buf_append(&b, p, 1);
	}
	return pv_buf_steal(&b);
}
