#include "daemon.h"
#include "config.h"
#include "log.h"
#include "migrate.h"
#include "pgutil.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

volatile sig_atomic_t pv_daemon_stop;
volatile sig_atomic_t pv_daemon_reopen;

static void on_stop(int sig)
{
	(void)sig;
	pv_daemon_stop = 1;
}

static void on_hup(int sig)
{
	(void)sig;
	pv_daemon_reopen = 1;
}

void pv_daemon_signals(void)
{
	static const struct {
		int sig;
		void (*handler)(int);
	} table[] = {
		{SIGTERM, on_stop},
		{SIGINT, on_stop},
		{SIGHUP, on_hup},
		{SIGPIPE, SIG_IGN},
	};
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
		sa.sa_handler = table[i].handler;
		if (sigaction(table[i].sig, &sa, NULL) != 0)
			pv_log_fatal("daemon", "sigaction(%d)", table[i].sig);
	}
}

const char *pv_daemon_config_path(const char *given)
{
	const char *env = getenv("PHOTOVOTE_CONFIG");

	if (given)
		return given;
	if (env && *env)
		return env;
	return access(PV_DAEMON_CONFIG, R_OK) == 0 ? PV_DAEMON_CONFIG : NULL;
}

void pv_daemon_log_configure(const char *program, const struct pv_config *cfg)
{
	int level = pv_log_level_parse(pv_config_str(cfg, "log", "level"));
	bool syslog = strcmp(pv_config_str(cfg, "log", "target"), "syslog") == 0;

	pv_log_init(program, syslog ? PV_LOG_SYSLOG : PV_LOG_STDERR,
		    level < 0 ? PV_LOG_INFO : (enum pv_log_level)level);
}

struct pv_config *pv_daemon_config_load(const char *program, const char *given)
{
	struct pv_config *cfg;
	struct pv_error err;

	if (pv_config_load(pv_daemon_config_path(given), NULL, &cfg, &err) != PV_OK)
		pv_log_fatalx("config", "%s", err.msg);
	pv_daemon_log_configure(program, cfg);
	return cfg;
}

void pv_daemon_migrate(const char *conninfo, const char *dir)
{
	struct pv_error err;
	PGconn *conn;
	int applied = 0;

	if (pv_pg_connect(conninfo, &conn, &err) != PV_OK)
		pv_log_fatalx("migrate", "%s", err.msg);
	if (pv_migrate_run(conn, dir, &applied, &err) != PV_OK) {
		PQfinish(conn);
		pv_log_fatalx("migrate", "%s", err.msg);
	}
	PQfinish(conn);
	if (applied > 0)
		pv_log_info("migrate", "applied %d migration(s) from %s", applied, dir);
}
