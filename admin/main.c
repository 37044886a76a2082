/* photovote-admin: the operator's tool.  With no command on a terminal it
 * opens the console; otherwise it runs one scriptable command (cli.h).
 * Configuration as the workers: -c FILE, else $PHOTOVOTE_CONFIG, else
 * /etc/photovote/photovote.conf when it exists (lib/daemon.h). */
#define _POSIX_C_SOURCE 200809L

#include "cli.h"
#include "config.h"
#include "daemon.h"
#include "log.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The services' system user (the Debian package's); configure may name
 * another. */
#ifndef PV_SERVICE_USER
#define PV_SERVICE_USER "photovote"
#endif

/* Run as root (sudo, a root shell) with the installed configuration, the
 * tool works as the services' user: PostgreSQL's peer authentication then
 * gives it the services' role, which owns the tables, and nothing it does
 * needs root.  The configuration and its secret files have been read by
 * then.  With another configuration file (-c, $PHOTOVOTE_CONFIG) or
 * without that user (an installation from source) it stays who it is.  -1
 * when the switch failed. */
static int leave_root(const char *cfgpath)
{
	struct passwd *pw;

	if (geteuid() != 0 || !cfgpath || strcmp(cfgpath, PV_DAEMON_CONFIG) != 0 ||
	    !(pw = getpwnam(PV_SERVICE_USER)) || pw->pw_uid == 0)
		return 0;
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0) {
		fprintf(stderr, "photovote-admin: cannot become the user %s: %s\n", PV_SERVICE_USER,
			strerror(errno));
		return -1;
	}
	return 0;
}

static const struct {
	const char *name;
	int (*run)(struct pv_session *s, int argc, char **argv);
} commands[] = {
	{"streams", pv_cli_streams},
	{"events", pv_cli_events},
	{"audit", pv_cli_audit},
	{"status", pv_cli_status},
	{"dead-letters", pv_cli_dead_letters},
	{"rebuild", pv_cli_rebuild},
	{"token", pv_cli_token},
	{"console", pv_console_run},
};

volatile sig_atomic_t pv_cli_signal, pv_cli_cancellable;

/* SIGINT and SIGTERM: a command that can stop cleanly (a rebuild) sees
 * pv_cli_signal between steps and ends with 128 + the signal; any other,
 * or a second signal, ends at once with that status.  Nothing any command
 * does is left half done by that: see docs/admin.md. */
static void on_signal(int sig)
{
	if (!pv_cli_cancellable || pv_cli_signal)
		_exit(128 + sig);
	pv_cli_signal = sig;
}

static void catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int (*run)(struct pv_session *, int, char **) = NULL;
	static char *console_argv[] = {"console", NULL};
	const char *cfgfile = NULL, *cfgpath;
	struct pv_session *s;
	struct pv_config *cfg;
	struct pv_error err;
	int opt, rc, level;

	opterr = 0;
	/* "+": options after the command are the command's. */
	while ((opt = getopt_long(argc, argv, "+:c:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': cfgfile = optarg; break;
		case 'h': pv_cli_usage(stdout); return PV_EXIT_OK;
		case ':': return pv_cli_usage_error("%s needs a value", argv[optind - 1]);
		default: return pv_cli_usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind == argc) {
		if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
			return pv_cli_usage_error(
				"no command, and not on a terminal for the console");
		argc = 1;
		argv = console_argv;
		optind = 0;
		run = pv_console_run;
	} else {
		for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
			if (strcmp(argv[optind], commands[i].name) == 0)
				run = commands[i].run;
		if (!run)
			return pv_cli_usage_error("unknown command \"%s\"", argv[optind]);
	}
	pv_log_init("photovote-admin", PV_LOG_STDERR, PV_LOG_WARNING);
	/* A broker or web server that goes away must give an error, not a death. */
	signal(SIGPIPE, SIG_IGN);
	cfgpath = pv_daemon_config_path(cfgfile);
	if (pv_config_load(cfgpath, NULL, &cfg, &err) != PV_OK)
		return pv_cli_fail("configuration", &err);
	level = pv_log_level_parse(pv_config_str(cfg, "log", "level"));
	/* Info lines (rebuild retries) are for the log, not the operator's
	 * screen; warnings and errors still show. */
	if (level >= 0 && level < PV_LOG_INFO)
		pv_log_set_level((enum pv_log_level)level);
	if (leave_root(cfgpath) != 0) {
		pv_config_free(cfg);
		return PV_EXIT_SERVER;
	}
	if (run != pv_console_run)
		catch_signals(); /* the console restores the terminal first: its own */
	s = pv_session_new(cfg);
	rc = run(s, argc - optind, argv + optind);
	pv_session_free(s);
	if (pv_cli_signal)
		return 128 + pv_cli_signal;
	return rc;
}
