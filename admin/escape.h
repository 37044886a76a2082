/* Untrusted text made safe for a terminal.
 *
 * Everything photovote-admin prints that came from the event store, the
 * broker or the network (stream names, event types, data, message bodies,
 * headers, error messages quoting a server) goes through here first, so a
 * stored escape sequence cannot move the cursor, retitle the window or
 * rewrite what the operator reads.
 *
 * Text mode: bytes below 0x20 and DEL become \xNN; C1 controls and the
 * Unicode format characters that reorder or hide text (U+0080..U+009F,
 * U+200B..U+200F, U+2028..U+202E, U+2060..U+2069, U+FEFF) become \u{HHHH}
 * (the code point in hex); bytes that are not well-formed UTF-8 become
 * \xNN.  Backslashes are left alone: this is a display escape, not a
 * reversible encoding.
 *
 * JSON mode (for --json lines written by jansson with JSON_ENSURE_ASCII,
 * which escapes everything but DEL): DEL becomes \u007f, which keeps the
 * line valid JSON. */
#ifndef PV_ADMIN_ESCAPE_H
#define PV_ADMIN_ESCAPE_H

#include <stddef.h>

#include "buf.h"

void pv_escape_append(struct pv_buf *b, const char *s, size_t len);
/* A malloc'd escaped copy of the NUL-terminated s (NULL gives ""). */
char *pv_escape_str(const char *s);
/* A malloc'd escaped copy of len bytes. */
char *pv_escape_mem(const char *s, size_t len);
/* A malloc'd copy of the ASCII JSON text with DEL escaped. */
char *pv_escape_json(const char *json);

#endif
