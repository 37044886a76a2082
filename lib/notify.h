/* Telling the service manager how a program is doing (systemd's
 * sd_notify protocol, units of Type=notify).
 *
 * A program says it is ready only once the connections it serves with are
 * up, so that "systemctl start" returns, and units ordered after it start,
 * when it can do its work.  Without $NOTIFY_SOCKET (started by hand, by a
 * web server, or by a service manager that does not listen) every call does
 * nothing; a build without libsystemd (configure --without-systemd) too. */
#ifndef PV_NOTIFY_H
#define PV_NOTIFY_H

/* READY=1, with a one-line status (may be NULL).  Only the first call
 * sends READY=1; later ones only the status. */
void pv_notify_ready(const char *status);
/* STATUS=...: what the program is doing or waiting for. */
void pv_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* STOPPING=1: a stop has begun. */
void pv_notify_stopping(void);

#endif
