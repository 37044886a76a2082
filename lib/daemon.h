/* What the long-running workers (photovote-appender, photovote-projector)
 * share as processes: their signals, where their configuration comes from,
 * and the --migrate option.
 *
 * Signals only set flags; the main loops look at them between steps, so a
 * SIGTERM never interrupts a transaction or a publish half way. */
#ifndef PV_DAEMON_H
#define PV_DAEMON_H

#include <signal.h>

/* The configuration file used when neither -c nor $PHOTOVOTE_CONFIG names
 * one, if it exists. */
#define PV_DAEMON_CONFIG "/etc/photovote/photovote.conf"

/* Set by SIGTERM and SIGINT (stop after the step in hand) and by SIGHUP
 * (reopen the logs); the main loop clears pv_daemon_reopen. */
extern volatile sig_atomic_t pv_daemon_stop;
extern volatile sig_atomic_t pv_daemon_reopen;

/* Installs the handlers above and ignores SIGPIPE (a peer that went away
 * is an error return, not a death). */
void pv_daemon_signals(void);

/* The configuration file to load: `given` (-c), else $PHOTOVOTE_CONFIG when
 * set and not empty, else PV_DAEMON_CONFIG when readable, else NULL
 * (defaults and environment only). */
const char *pv_daemon_config_path(const char *given);

struct pv_config;

/* Loads the configuration from pv_daemon_config_path(given) and sets the
 * log as its [log] section says (pv_daemon_log_configure).  A configuration
 * that does not load ends the program with its message. */
struct pv_config *pv_daemon_config_load(const char *program, const char *given);

/* The log of `program` as cfg's [log] target (stderr, syslog) and level
 * say; an unknown level word leaves info. */
void pv_daemon_log_configure(const char *program, const struct pv_config *cfg);

/* Applies the PostgreSQL migrations of dir (--migrate DIR); on failure logs
 * why and exits: a worker must not run on a schema it does not know. */
void pv_daemon_migrate(const char *conninfo, const char *dir);

#endif
