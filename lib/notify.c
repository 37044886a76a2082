#include "notify.h"

#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

static bool told_ready;

/* One message; a failure is worth a warning (the unit's start will time
 * out) but never stops the program. */
static void notify(const char *msg)
{
#ifdef HAVE_LIBSYSTEMD
	int rc = sd_notify(0, msg);

	if (rc < 0)
		pv_log_warnx("notify", "sd_notify: %s", strerror(-rc));
#else
	(void)msg;
#endif
}

/* The status as one line of printable text: it comes from error messages,
 * which may quote a server's words. */
static void status_line(char *out, size_t size, const char *text)
{
	size_t n = 0;

	for (; *text && n + 1 < size; text++)
		out[n++] = (unsigned char)*text < 0x20 || *text == 0x7f ? ' ' : *text;
	out[n] = '\0';
}

void pv_notify_ready(const char *status)
{
	char msg[512], line[480];

	status_line(line, sizeof line, status ? status : "");
	snprintf(msg, sizeof msg, "%sSTATUS=%s", told_ready ? "" : "READY=1\n", line);
	told_ready = true;
	notify(msg);
}

void pv_notify_status(const char *fmt, ...)
{
	char text[480], line[480], msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	status_line(line, sizeof line, text);
	snprintf(msg, sizeof msg, "STATUS=%s", line);
	notify(msg);
}

void pv_notify_stopping(void)
{
	notify("STOPPING=1\nSTATUS=stopping");
}
