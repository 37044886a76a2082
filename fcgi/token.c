/* photovote-token: create and revoke API bearer tokens until the admin
 * console takes this over.
 *
 *   photovote-token [-c FILE] create USER [--admin]   prints the token
 *   photovote-token [-c FILE] revoke USER              revokes all of USER's
 *
 * The table comes from sql/002_api_tokens.sql (the migrations). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_token.h"
#include "config.h"
#include "log.h"
#include "pgutil.h"

#ifndef PV_CONFIG_FILE
#define PV_CONFIG_FILE "/etc/photovote/photovote.conf"
#endif

static int usage(void)
{
	fprintf(stderr, "usage: photovote-token [-c FILE] create USER [--admin]\n"
			"       photovote-token [-c FILE] revoke USER\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *config_path = getenv("PHOTOVOTE_CONFIG");
	struct pv_config *cfg;
	struct pv_error err;
	PGconn *conn;
	enum pv_err rc;
	int i = 1;

	pv_log_init("photovote-token", PV_LOG_STDERR, PV_LOG_WARNING);
	if (argc > 2 && strcmp(argv[1], "-c") == 0) {
		config_path = argv[2];
		i = 3;
	}
	if (argc - i < 2)
		return usage();
	if (pv_config_load(config_path ? config_path : PV_CONFIG_FILE, NULL, &cfg, &err) != PV_OK)
		pv_log_fatalx("config", "%s", err.msg);
	if (pv_pg_connect(pv_config_str(cfg, "postgres", "conninfo"), &conn, &err) != PV_OK)
		pv_log_fatalx("postgres", "%s", err.msg);
	if (strcmp(argv[i], "create") == 0 &&
	    (argc - i == 2 || (argc - i == 3 && !strcmp(argv[i + 2], "--admin")))) {
		char token[PV_TOKEN_LEN + 1];

		rc = pv_token_create(conn, argv[i + 1], argc - i == 3, token, &err);
		if (rc == PV_OK)
			printf("%s\n", token);
	} else if (strcmp(argv[i], "revoke") == 0 && argc - i == 2) {
		int n = 0;

		rc = pv_token_revoke(conn, argv[i + 1], NULL, &n, &err);
		if (rc == PV_OK)
			printf("%d token(s) revoked\n", n);
	} else {
		PQfinish(conn);
		pv_config_free(cfg);
		return usage();
	}
	if (rc != PV_OK)
		pv_log_warnx("token", "%s", err.msg);
	PQfinish(conn);
	pv_config_free(cfg);
	return rc == PV_OK ? 0 : 1;
}
