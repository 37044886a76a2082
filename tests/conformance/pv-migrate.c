/* pv-migrate CONNINFO [SQLDIR]: applies the migrations to a database, for
 * the test scripts (the product does this with `photovote-admin migrate`). */
#include <stdio.h>

#include "migrate.h"
#include "pgutil.h"

int main(int argc, char **argv)
{
	struct pv_error err;
	PGconn *conn;
	int applied, version;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: pv-migrate CONNINFO [SQLDIR]\n");
		return 2;
	}
	if (pv_pg_connect(argv[1], &conn, &err) != PV_OK) {
		fprintf(stderr, "pv-migrate: %s\n", err.msg);
		return 1;
	}
	if (pv_migrate_run(conn, argc == 3 ? argv[2] : NULL, &applied, &err) != PV_OK ||
	    pv_migrate_current(conn, &version, &err) != PV_OK) {
		fprintf(stderr, "pv-migrate: %s\n", err.msg);
		PQfinish(conn);
		return 1;
	}
	fprintf(stderr, "pv-migrate: applied %d, schema version %d\n", applied, version);
	PQfinish(conn);
	return 0;
}
