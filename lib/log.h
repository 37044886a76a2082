/* Logging in the OpenBSD manner, with a subsystem word on every line.
 *
 *   pv_log_warn("amqp", "connect to %s", host);   appends ": <strerror(errno)>"
 *   pv_log_warnx("amqp", "channel closed: %s", reason);
 *   pv_log_fatalx("config", "...");               logs and exits 1
 *
 * Lines go to stderr (with time, program and level) or to syslog.  Every
 * formatted line is passed through pv_log_escape() before it is written,
 * so a control character or invalid UTF-8 from a request, a message or an
 * event can never forge a log line or drive a terminal. */
#ifndef PV_LOG_H
#define PV_LOG_H

#include <stddef.h>

enum pv_log_level { PV_LOG_ERROR, PV_LOG_WARNING, PV_LOG_INFO, PV_LOG_DEBUG };
enum pv_log_target { PV_LOG_STDERR, PV_LOG_SYSLOG };

void pv_log_init(const char *program, enum pv_log_target target, enum pv_log_level level);
void pv_log_set_level(enum pv_log_level level);
enum pv_log_level pv_log_get_level(void);
/* Parses "error", "warning", "info", "debug"; returns -1 on anything else. */
int pv_log_level_parse(const char *word);
/* Reopens the target (stderr is reopened by the service manager; syslog is
 * closed and opened again).  Safe to call from the main loop after SIGHUP. */
void pv_log_reopen(void);

void pv_log_warn(const char *subsys, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pv_log_warnx(const char *subsys, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pv_log_info(const char *subsys, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pv_log_debug(const char *subsys, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pv_log_fatal(const char *subsys, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
void pv_log_fatalx(const char *subsys, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

/* Copies src into dst (size dstsize, always terminated), replacing control
 * characters, DEL, backslash and bytes that are not valid UTF-8 with C-style
 * escapes (\n, \t, \\, \x1b).  Valid multi-byte UTF-8 passes through.
 * Returns the length written; output is cut at a character boundary. */
size_t pv_log_escape(char *dst, size_t dstsize, const char *src, size_t srclen);
/* The same in place, within the string's buffer of `size` bytes (for a
 * library's message that quotes untrusted input, as jansson's
 * json_error_t.text quotes the bytes near the error). */
void pv_log_escape_in_place(char *s, size_t size);

#endif
