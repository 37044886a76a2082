/* photovote-admin's scriptable subcommands and the console, each run as
 * fn(session, argc, argv) with argv[0] the subcommand's name; each returns
 * the program's exit status (PV_EXIT_*). */
#ifndef PV_ADMIN_CLI_H
#define PV_ADMIN_CLI_H

#include <stdio.h>

#include "session.h"

#define PV_EXIT_OK 0
#define PV_EXIT_SERVER 1 /* a server (or the configuration) failed */
#define PV_EXIT_USAGE 2
/* 128 + the signal: 130 after SIGINT, 143 after SIGTERM */

#include <signal.h>

/* Set by main.c's SIGINT/SIGTERM handler: the signal's number.  A command
 * that stops cleanly on it sets pv_cli_cancellable first (else a signal
 * ends the program at once). */
extern volatile sig_atomic_t pv_cli_signal, pv_cli_cancellable;

int pv_cli_streams(struct pv_session *s, int argc, char **argv);
int pv_cli_events(struct pv_session *s, int argc, char **argv);
int pv_cli_audit(struct pv_session *s, int argc, char **argv);
int pv_cli_status(struct pv_session *s, int argc, char **argv);
int pv_cli_dead_letters(struct pv_session *s, int argc, char **argv);
int pv_cli_rebuild(struct pv_session *s, int argc, char **argv);
int pv_cli_token(struct pv_session *s, int argc, char **argv);
int pv_console_run(struct pv_session *s, int argc, char **argv);

/* Prints "photovote-admin: <what>: <err escaped>" to stderr; returns 1. */
int pv_cli_fail(const char *what, const struct pv_error *err);
/* Prints "photovote-admin: <msg>" and the usage hint; returns 2. */
int pv_cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pv_cli_usage(FILE *out);
/* Seconds as m:ss, or h:mm:ss from an hour on (a rebuild's elapsed and ETA). */
void pv_cli_clock(double seconds, char *out, size_t size);

#endif
