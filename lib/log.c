#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

static const char *log_program = "photovote";
static enum pv_log_target log_target = PV_LOG_STDERR;
static enum pv_log_level log_level = PV_LOG_INFO;

static const struct {
	const char *word;
	int syslog_priority;
} level_table[] = {
	[PV_LOG_ERROR] = {"error", LOG_ERR},
	[PV_LOG_WARNING] = {"warning", LOG_WARNING},
	[PV_LOG_INFO] = {"info", LOG_INFO},
	[PV_LOG_DEBUG] = {"debug", LOG_DEBUG},
};

void pv_log_init(const char *program, enum pv_log_target target, enum pv_log_level level)
{
	log_program = program;
	log_target = target;
	log_level = level;
	if (target == PV_LOG_SYSLOG)
		openlog(program, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void pv_log_set_level(enum pv_log_level level)
{
	log_level = level;
}

enum pv_log_level pv_log_get_level(void)
{
	return log_level;
}

int pv_log_level_parse(const char *word)
{
	for (size_t i = 0; i < sizeof level_table / sizeof level_table[0]; i++)
		if (strcmp(word, level_table[i].word) == 0)
			return (int)i;
	return -1;
}

void pv_log_reopen(void)
{
	if (log_target == PV_LOG_SYSLOG) {
		closelog();
		openlog(log_program, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	}
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_sequence_length(const unsigned char *s, size_t avail)
{
	size_t len;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > avail)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values past U+10FFFF. */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	/* C1 controls (U+0080..U+009F) are terminal controls too. */
	if (cp >= 0x80 && cp <= 0x9f)
		return 0;
	return len;
}

size_t pv_log_escape(char *dst, size_t dstsize, const char *src, size_t srclen)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)src;
	size_t o = 0, i = 0;

	if (dstsize == 0)
		return 0;
	while (i < srclen) {
		char esc[5];
		size_t elen = 0, seq = utf8_sequence_length(s + i, srclen - i);

		if (seq == 1 && s[i] >= 0x20 && s[i] != 0x7f && s[i] != '\\') {
			esc[0] = (char)s[i];
			elen = 1;
		} else if (seq > 1) {
			if (o + seq >= dstsize)
				break;
			memcpy(dst + o, s + i, seq);
			o += seq;
			i += seq;
			continue;
		} else {
			esc[0] = '\\';
			switch (s[i]) {
			case '\n': esc[1] = 'n', elen = 2; break;
			case '\r': esc[1] = 'r', elen = 2; break;
			case '\t': esc[1] = 't', elen = 2; break;
			case '\\': esc[1] = '\\', elen = 2; break;
			default:
				esc[1] = 'x';
				esc[2] = hex[s[i] >> 4];
				esc[3] = hex[s[i] & 0xf];
				elen = 4;
			}
		}
		if (o + elen >= dstsize)
			break;
		memcpy(dst + o, esc, elen);
		o += elen;
		i++;
	}
	dst[o] = '\0';
	return o;
}

void pv_log_escape_in_place(char *s, size_t size)
{
	char tmp[512];
	size_t len = strnlen(s, size);

	if (size > sizeof tmp)
		size = sizeof tmp;
	pv_log_escape(tmp, size, s, len);
	memcpy(s, tmp, strlen(tmp) + 1);
}

__attribute__((format(printf, 3, 0))) static void log_emit(enum pv_log_level level,
							   const char *subsys, const char *fmt,
							   va_list ap, int with_errno,
							   int saved_errno)
{
	char raw[2048], clean[4096];
	int n;

	if (level > log_level)
		return;
	n = vsnprintf(raw, sizeof raw, fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof raw)
		n = sizeof raw - 1;
	if (with_errno)
		n += snprintf(raw + n, sizeof raw - (size_t)n, ": %s", strerror(saved_errno));
	if ((size_t)n >= sizeof raw)
		n = sizeof raw - 1;
	pv_log_escape(clean, sizeof clean, raw, (size_t)n);

	if (log_target == PV_LOG_SYSLOG) {
		syslog(level_table[level].syslog_priority, "%s: %s", subsys, clean);
	} else {
		char stamp[32];
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ldZ %s %s %s: %s\n", stamp, ts.tv_nsec / 1000000L,
			log_program, level_table[level].word, subsys, clean);
	}
}

#define PV_LOG_FN(name, level, with_errno)                                                         \
	void name(const char *subsys, const char *fmt, ...)                                        \
	{                                                                                          \
		int saved = errno;                                                                 \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		log_emit(level, subsys, fmt, ap, with_errno, saved);                               \
		va_end(ap);                                                                        \
		errno = saved;                                                                     \
	}

PV_LOG_FN(pv_log_warn, PV_LOG_WARNING, 1)
PV_LOG_FN(pv_log_warnx, PV_LOG_WARNING, 0)
PV_LOG_FN(pv_log_info, PV_LOG_INFO, 0)
PV_LOG_FN(pv_log_debug, PV_LOG_DEBUG, 0)

void pv_log_fatal(const char *subsys, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	log_emit(PV_LOG_ERROR, subsys, fmt, ap, 1, saved);
	va_end(ap);
	exit(1);
}

void pv_log_fatalx(const char *subsys, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_emit(PV_LOG_ERROR, subsys, fmt, ap, 0, 0);
	va_end(ap);
	exit(1);
}
