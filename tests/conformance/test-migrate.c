/* The migration runner and the libpq helpers.  The first tests need no
 * server; the rest need PV_TEST_PG_CONNINFO (a role that may create
 * databases: each test makes its own and drops it) and PV_TEST_SQLDIR (the
 * project's sql/ folder), which tests/conformance/migrate.sh provides. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "migrate.h"
#include "pgutil.h"
#include "xalloc.h"

#include "pv_test.h"

static void write_file(const char *dir, const char *name, const char *text)
{
	char *path = pv_xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	free(path);
}

static void remove_file(const char *dir, const char *name)
{
	char *path = pv_xasprintf("%s/%s", dir, name);

	unlink(path);
	free(path);
}

static char *temp_dir(void)
{
	const char *tmp = getenv("TMPDIR");
	struct pv_buf b = PV_BUF_INIT;
	char *dir;

	pv_buf_printf(&b, "%s/pv-migrate-test.", tmp && *tmp ? tmp : "/tmp");
	for (int i = 0; i < 6; i++)
		pv_buf_puts(&b, "X"); /* mkdtemp's template */
	dir = pv_buf_steal(&b);
	assert_non_null(mkdtemp(dir));
	return dir;
}

static void remove_dir(char *dir)
{
	char *cmd = pv_xasprintf("rm -rf '%s'", dir);

	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(dir);
}

static void scan_orders_and_validates(void **state)
{
	struct pv_migration_list list;
	struct pv_error err;
	char *dir = temp_dir();

	write_file(dir, "010_ten.sql", "SELECT 10;");
	write_file(dir, "002_two-b.sql", "SELECT 2;");
	write_file(dir, "001_one.sql", "SELECT 1;");
	write_file(dir, "README", "not a migration");
	write_file(dir, "notes.txt", "neither");
	assert_int_equal(pv_migrate_scan(dir, &list, &err), PV_OK);
	assert_int_equal(list.count, 3);
	assert_int_equal(list.items[0].version, 1);
	assert_int_equal(list.items[1].version, 2);
	assert_int_equal(list.items[2].version, 10);
	assert_string_equal(list.items[2].name, "010_ten.sql");
	assert_non_null(strstr(list.items[0].path, "/001_one.sql"));
	pv_migration_list_clear(&list);
	assert_int_equal(list.count, 0);

	write_file(dir, "002_again.sql", "SELECT 2;");
	assert_int_equal(pv_migrate_scan(dir, &list, &err), PV_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "share number 002"));
	remove_file(dir, "002_again.sql");

	static const char *const bad[] = {"1_short.sql", "abc_x.sql",    "003-dash.sql",
					  "004_.sql",    "000_zero.sql", "005_sp ace.sql"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		write_file(dir, bad[i], "SELECT 1;");
		assert_int_equal(pv_migrate_scan(dir, &list, &err), PV_ERR_CONFIG);
		assert_non_null(strstr(err.msg, bad[i]));
		remove_file(dir, bad[i]);
	}
	assert_int_equal(pv_migrate_scan(dir, &list, &err), PV_OK);
	pv_migration_list_clear(&list);
	remove_dir(dir);

	assert_int_equal(pv_migrate_scan("/nonexistent/pv-sql", &list, &err), PV_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "/nonexistent/pv-sql"));
}

static void sqlstates_map_to_codes(void **state)
{
	static const struct {
		const char *state;
		enum pv_err code;
	} cases[] = {
		{"23505", PV_ERR_CONFLICT},    {"23503", PV_ERR_INVALID},
		{"40001", PV_ERR_CONFLICT},    {"40P01", PV_ERR_CONFLICT},
		{"08006", PV_ERR_UNAVAILABLE}, {"57P01", PV_ERR_UNAVAILABLE},
		{"57014", PV_ERR_TIMEOUT},     {"22P02", PV_ERR_INVALID},
		{"22021", PV_ERR_INVALID},     {"28P01", PV_ERR_UNAUTHORIZED},
		{"42501", PV_ERR_FORBIDDEN},   {"42601", PV_ERR_DATABASE},
		{"XX000", PV_ERR_DATABASE},    {NULL, PV_ERR_DATABASE},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		assert_int_equal(pv_pg_sqlstate_err(cases[i].state), cases[i].code);
}

static void connect_errors_are_named(void **state)
{
	struct pv_error err;
	PGconn *conn = (PGconn *)1;

	assert_int_equal(pv_pg_connect("this is not = a conninfo", &conn, &err), PV_ERR_CONFIG);
	assert_null(conn);
	assert_non_null(strstr(err.msg, "PostgreSQL connection string"));
	/* Port 1 on loopback: nothing listens there. */
	assert_int_equal(pv_pg_connect("host=127.0.0.1 port=1 connect_timeout=5", &conn, &err),
			 PV_ERR_UNAVAILABLE);
	assert_null(conn);
	assert_non_null(strstr(err.msg, "PostgreSQL connect"));
}

/* ---- with a server ---------------------------------------------------- */

static const char *base_conninfo;
static const char *sqldir;

struct fresh_db {
	char name[64];
	char *conninfo;
};

static PGconn *connect_or_fail(const char *conninfo)
{
	struct pv_error err;
	PGconn *conn;

	if (pv_pg_connect(conninfo, &conn, &err) != PV_OK)
		fail_msg("%s", err.msg);
	return conn;
}

static void db_create(struct fresh_db *db)
{
	static int serial;
	struct pv_error err;
	PGconn *conn = connect_or_fail(base_conninfo);
	char *sql;

	snprintf(db->name, sizeof db->name, "pv_migrate_%ld_%d", (long)getpid(), ++serial);
	sql = pv_xasprintf("CREATE DATABASE %s ENCODING 'UTF8' TEMPLATE template0", db->name);
	if (pv_pg_command(conn, "create database", sql, &err) != PV_OK)
		fail_msg("%s", err.msg);
	free(sql);
	PQfinish(conn);
	db->conninfo = pv_xasprintf("%s dbname=%s", base_conninfo, db->name);
}

static void db_drop(struct fresh_db *db)
{
	struct pv_error err;
	PGconn *conn = connect_or_fail(base_conninfo);
	char *sql = pv_xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", db->name);

	if (pv_pg_command(conn, "drop database", sql, &err) != PV_OK)
		fail_msg("%s", err.msg);
	free(sql);
	PQfinish(conn);
	free(db->conninfo);
}

static bool table_exists(PGconn *conn, const char *table)
{
	const char *params[1] = {table};
	struct pv_error err;
	PGresult *res;
	bool yes;

	if (pv_pg_exec(conn, "to_regclass", "SELECT to_regclass($1) IS NOT NULL", 1, params, &res,
		       &err) != PV_OK)
		fail_msg("%s", err.msg);
	yes = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return yes;
}

static size_t project_migrations(int *last)
{
	struct pv_migration_list list;
	struct pv_error err;
	size_t n;

	assert_int_equal(pv_migrate_scan(sqldir, &list, &err), PV_OK);
	n = list.count;
	*last = n ? list.items[n - 1].version : 0;
	pv_migration_list_clear(&list);
	return n;
}

static void applies_once_and_again_is_nothing(void **state)
{
	struct fresh_db db;
	struct pv_error err;
	int applied = -1, version = -1, last;
	size_t n = project_migrations(&last);
	PGconn *conn;

	assert_true(n >= 1);
	db_create(&db);
	conn = connect_or_fail(db.conninfo);
	assert_int_equal(pv_migrate_current(conn, &version, &err), PV_OK);
	assert_int_equal(version, 0);
	assert_int_equal(pv_migrate_run(conn, sqldir, &applied, &err), PV_OK);
	assert_int_equal(applied, (int)n);
	assert_int_equal(pv_migrate_current(conn, &version, &err), PV_OK);
	assert_int_equal(version, last);
	assert_true(table_exists(conn, "es_events"));
	assert_true(table_exists(conn, "es_streams"));
	assert_int_equal(pv_migrate_run(conn, sqldir, &applied, &err), PV_OK);
	assert_int_equal(applied, 0);
	PQfinish(conn);
	db_drop(&db);
}

#define RUNNERS 4

struct runner {
	pthread_t thread;
	const char *conninfo;
	enum pv_err rc;
	int applied;
	char msg[512];
};

static void *runner_main(void *arg)
{
	struct runner *r = arg;
	struct pv_error err = {0};
	PGconn *conn;

	r->rc = pv_pg_connect(r->conninfo, &conn, &err);
	if (r->rc == PV_OK) {
		r->rc = pv_migrate_run(conn, sqldir, &r->applied, &err);
		PQfinish(conn);
	}
	snprintf(r->msg, sizeof r->msg, "%s", err.msg);
	return NULL;
}

static void concurrent_runners_apply_each_file_once(void **state)
{
	struct runner r[RUNNERS];
	struct fresh_db db;
	int total = 0, last;
	size_t n = project_migrations(&last);

	db_create(&db);
	for (int i = 0; i < RUNNERS; i++) {
		r[i] = (struct runner){.conninfo = db.conninfo};
		assert_int_equal(pthread_create(&r[i].thread, NULL, runner_main, &r[i]), 0);
	}
	for (int i = 0; i < RUNNERS; i++) {
		pthread_join(r[i].thread, NULL);
		if (r[i].rc != PV_OK)
			fail_msg("runner %d: %s", i, r[i].msg);
		total += r[i].applied;
	}
	assert_int_equal(total, (int)n);
	db_drop(&db);
}

static void failing_migration_rolls_back_alone(void **state)
{
	struct fresh_db db;
	struct pv_error err;
	int applied = -1, version = -1;
	char *dir = temp_dir();
	PGconn *conn;

	write_file(dir, "001_one.sql", "CREATE TABLE one (x integer);\n");
	write_file(dir, "002_two.sql",
		   "CREATE TABLE two (x integer);\nSELECT no_such_column FROM one;\n");
	db_create(&db);
	conn = connect_or_fail(db.conninfo);
	assert_int_equal(pv_migrate_run(conn, dir, &applied, &err), PV_ERR_DATABASE);
	assert_non_null(strstr(err.msg, "002_two.sql"));
	assert_non_null(strstr(err.msg, "no_such_column"));
	assert_int_equal(applied, 0);
	assert_int_equal(pv_migrate_current(conn, &version, &err), PV_OK);
	assert_int_equal(version, 1);
	assert_true(table_exists(conn, "one"));
	assert_false(table_exists(conn, "two"));

	/* Fixed, the next run applies just that one. */
	write_file(dir, "002_two.sql", "CREATE TABLE two (x integer);\n");
	assert_int_equal(pv_migrate_run(conn, dir, &applied, &err), PV_OK);
	assert_int_equal(applied, 1);
	assert_int_equal(pv_migrate_current(conn, &version, &err), PV_OK);
	assert_int_equal(version, 2);
	assert_true(table_exists(conn, "two"));

	/* The connection is usable after all this (no transaction left open). */
	assert_int_equal(PQtransactionStatus(conn), PQTRANS_IDLE);
	PQfinish(conn);
	db_drop(&db);
	remove_dir(dir);
}

static void exec_errors_carry_sqlstate_and_message(void **state)
{
	struct fresh_db db;
	struct pv_error err;
	PGresult *res = (PGresult *)1;
	PGconn *conn;

	db_create(&db);
	conn = connect_or_fail(db.conninfo);
	assert_int_equal(pv_pg_exec(conn, "probe", "SELECT 1/0", 0, NULL, &res, &err),
			 PV_ERR_INVALID);
	assert_null(res);
	assert_non_null(strstr(err.msg, "probe"));
	assert_non_null(strstr(err.msg, "22012"));
	assert_non_null(strstr(err.msg, "division by zero"));
	assert_int_equal(pv_pg_command(conn, "probe",
				       "CREATE TABLE u (x int UNIQUE);"
				       "INSERT INTO u VALUES (1); INSERT INTO u VALUES (1)",
				       &err),
			 PV_ERR_CONFLICT);
	assert_int_equal(
		pv_pg_exec(conn, "probe", "SELECT * FROM no_such_table", 0, NULL, NULL, &err),
		PV_ERR_DATABASE);
	assert_non_null(strstr(err.msg, "no_such_table"));
	PQfinish(conn);
	db_drop(&db);
}

int main(void)
{
	const struct CMUnitTest offline[] = {
		cmocka_unit_test(scan_orders_and_validates),
		cmocka_unit_test(sqlstates_map_to_codes),
		cmocka_unit_test(connect_errors_are_named),
	};
	const struct CMUnitTest online[] = {
		cmocka_unit_test(scan_orders_and_validates),
		cmocka_unit_test(sqlstates_map_to_codes),
		cmocka_unit_test(connect_errors_are_named),
		cmocka_unit_test(applies_once_and_again_is_nothing),
		cmocka_unit_test(concurrent_runners_apply_each_file_once),
		cmocka_unit_test(failing_migration_rolls_back_alone),
		cmocka_unit_test(exec_errors_carry_sqlstate_and_message),
	};

	base_conninfo = getenv("PV_TEST_PG_CONNINFO");
	sqldir = getenv("PV_TEST_SQLDIR");
	cmocka_set_message_output(CM_OUTPUT_TAP);
	if (!base_conninfo || !sqldir)
		return cmocka_run_group_tests_name("migrate (no server)", offline, NULL, NULL) ? 1
											       : 0;
	return cmocka_run_group_tests_name("migrate", online, NULL, NULL) ? 1 : 0;
}
