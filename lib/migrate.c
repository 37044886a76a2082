/* Migration runner; see migrate.h for the rules.  The advisory lock is
 * taken before schema_version is even created, because two concurrent
 * CREATE TABLE IF NOT EXISTS can still collide in the catalog. */
#include "migrate.h"
#include "log.h"
#include "pgutil.h"
#include "xalloc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A migration larger than this is surely not one. */
#define MIGRATION_MAX (16u * 1024u * 1024u)

static const char create_sql[] = "CREATE TABLE IF NOT EXISTS schema_version ("
				 " version integer PRIMARY KEY,"
				 " name text NOT NULL,"
				 " checksum text NOT NULL,"
				 " applied timestamptz NOT NULL DEFAULT now())";

/* NNN_name.sql: three digits, an underscore, letters/digits/_/-. */
static int parse_name(const char *name)
{
	size_t len = strlen(name);
	int version;

	if (len < 9 || strcmp(name + len - 4, ".sql") != 0)
		return -1;
	for (int i = 0; i < 3; i++)
		if (!isdigit((unsigned char)name[i]))
			return -1;
	if (name[3] != '_')
		return -1;
	for (size_t i = 4; i < len - 4; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!isalnum(c) && c != '_' && c != '-')
			return -1;
	}
	version = (name[0] - '0') * 100 + (name[1] - '0') * 10 + (name[2] - '0');
	return version > 0 ? version : -1;
}

static int migration_cmp(const void *a, const void *b)
{
	const struct pv_migration *x = a, *y = b;

	return (x->version > y->version) - (x->version < y->version);
}

void pv_migration_list_clear(struct pv_migration_list *list)
{
	for (size_t i = 0; i < list->count; i++) {
		free(list->items[i].name);
		free(list->items[i].path);
	}
	free(list->items);
	list->items = NULL;
	list->count = 0;
}

enum pv_err pv_migrate_scan(const char *dir, struct pv_migration_list *list, struct pv_error *err)
{
	enum pv_err rc = PV_OK;
	struct dirent *de;
	DIR *d;

	list->items = NULL;
	list->count = 0;
	if (!dir)
		dir = PV_SQLDIR;
	d = opendir(dir);
	if (!d)
		return pv_error_set(err, PV_ERR_CONFIG, "migrations folder %s: %s", dir,
				    strerror(errno));
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		int version;

		if (len < 4 || strcmp(de->d_name + len - 4, ".sql") != 0)
			continue;
		version = parse_name(de->d_name);
		if (version < 0) {
			rc = pv_error_set(err, PV_ERR_CONFIG,
					  "migration %s/%s: name must be NNN_name.sql", dir,
					  de->d_name);
			goto out;
		}
		list->items = pv_xreallocarray(list->items, list->count + 1, sizeof *list->items);
		list->items[list->count].version = version;
		list->items[list->count].name = pv_xstrdup(de->d_name);
		list->items[list->count].path = pv_xasprintf("%s/%s", dir, de->d_name);
		list->count++;
	}
	if (list->count)
		qsort(list->items, list->count, sizeof *list->items, migration_cmp);
	for (size_t i = 1; i < list->count; i++)
		if (list->items[i].version == list->items[i - 1].version) {
			rc = pv_error_set(err, PV_ERR_CONFIG,
					  "migrations %s and %s share number %03d",
					  list->items[i - 1].name, list->items[i].name,
					  list->items[i].version);
			goto out;
		}
out:
	closedir(d);
	if (rc != PV_OK)
		pv_migration_list_clear(list);
	return rc;
}

static enum pv_err read_file(const char *path, char **out, struct pv_error *err)
{
	enum pv_err rc = PV_OK;
	char *text = NULL;
	size_t len = 0, cap = 0, n;
	FILE *f;

	*out = NULL;
	f = fopen(path, "r");
	if (!f)
		return pv_error_set(err, PV_ERR_CONFIG, "migration %s: %s", path, strerror(errno));
	do {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			text = pv_xrealloc(text, cap + 1);
		}
		n = fread(text + len, 1, cap - len, f);
		len += n;
		if (len > MIGRATION_MAX) {
			rc = pv_error_set(err, PV_ERR_CONFIG, "migration %s: larger than %u bytes",
					  path, MIGRATION_MAX);
			goto out;
		}
	} while (n > 0);
	if (ferror(f)) {
		rc = pv_error_set(err, PV_ERR_SYSTEM, "migration %s: read failed", path);
		goto out;
	}
	text[len] = '\0';
	if (strlen(text) != len) {
		rc = pv_error_set(err, PV_ERR_CONFIG, "migration %s: contains a NUL byte", path);
		goto out;
	}
	*out = text;
	text = NULL;
out:
	fclose(f);
	free(text);
	return rc;
}

/* Applies one file and records it, in one transaction. */
static enum pv_err apply_one(PGconn *conn, const struct pv_migration *m, const char *text,
			     struct pv_error *err)
{
	char version[16];
	const char *params[3] = {version, m->name, text};
	enum pv_err rc;

	snprintf(version, sizeof version, "%d", m->version);
	rc = pv_pg_command(conn, "migrate: begin", "BEGIN", err);
	if (rc != PV_OK)
		return rc;
	rc = pv_pg_command(conn, m->name, text, err);
	if (rc == PV_OK)
		rc = pv_pg_exec(conn, "migrate: record",
				"INSERT INTO schema_version (version, name, checksum)"
				" VALUES ($1::integer, $2, md5($3))",
				3, params, NULL, err);
	if (rc == PV_OK)
		rc = pv_pg_command(conn, "migrate: commit", "COMMIT", err);
	if (rc != PV_OK) {
		pv_pg_rollback(conn);
		return pv_error_prefix(err, "migration %s", m->path);
	}
	pv_log_info("migrate", "applied %s", m->name);
	return PV_OK;
}

/* Warns when an applied file no longer matches what was recorded. */
static void check_unchanged(PGconn *conn, const struct pv_migration *m, const char *text,
			    const char *recorded)
{
	const char *params[1] = {text};
	struct pv_error err;
	PGresult *res;

	if (pv_pg_exec(conn, "migrate: checksum", "SELECT md5($1)", 1, params, &res, &err) !=
	    PV_OK) {
		pv_log_warnx("migrate", "%s", err.msg);
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 0), recorded) != 0)
		pv_log_warnx("migrate", "%s changed after it was applied (md5 %s, recorded %s)",
			     m->path, PQgetvalue(res, 0, 0), recorded);
	PQclear(res);
}

enum pv_err pv_migrate_run(PGconn *conn, const char *dir, int *applied, struct pv_error *err)
{
	static const char *const lock_params[1] = {PV_MIGRATE_LOCK_KEY};
	struct pv_migration_list list;
	PGresult *done = NULL;
	enum pv_err rc;
	int count = 0;

	if (applied)
		*applied = 0;
	rc = pv_migrate_scan(dir, &list, err);
	if (rc != PV_OK)
		return rc;
	rc = pv_pg_exec(conn, "migrate: advisory lock", "SELECT pg_advisory_lock($1::bigint)", 1,
			lock_params, NULL, err);
	if (rc != PV_OK) {
		pv_migration_list_clear(&list);
		return rc;
	}
	rc = pv_pg_command(conn, "migrate: create schema_version", create_sql, err);
	if (rc != PV_OK)
		goto out;
	rc = pv_pg_exec(conn, "migrate: applied versions",
			"SELECT version, checksum FROM schema_version", 0, NULL, &done, err);
	if (rc != PV_OK)
		goto out;
	for (size_t i = 0; i < list.count; i++) {
		const struct pv_migration *m = &list.items[i];
		const char *recorded = NULL;
		char *text;

		for (int r = 0; r < PQntuples(done); r++)
			if (atoi(PQgetvalue(done, r, 0)) == m->version)
				recorded = PQgetvalue(done, r, 1);
		rc = read_file(m->path, &text, err);
		if (rc != PV_OK)
			goto out;
		if (recorded) {
			check_unchanged(conn, m, text, recorded);
		} else {
			rc = apply_one(conn, m, text, err);
			if (rc == PV_OK)
				count++;
		}
		free(text);
		if (rc != PV_OK)
			goto out;
	}
	if (applied)
		*applied = count;
out:
	PQclear(done);
	if (PQstatus(conn) == CONNECTION_OK) {
		struct pv_error uerr;
		if (pv_pg_exec(conn, "migrate: advisory unlock",
			       "SELECT pg_advisory_unlock($1::bigint)", 1, lock_params, NULL,
			       &uerr) != PV_OK)
			pv_log_warnx("migrate", "%s", uerr.msg);
	}
	pv_migration_list_clear(&list);
	return rc;
}

enum pv_err pv_migrate_current(PGconn *conn, int *version, struct pv_error *err)
{
	PGresult *res;
	enum pv_err rc;
	bool exists;

	*version = 0;
	/* A query naming a missing table fails at parse time: ask first. */
	rc = pv_pg_exec(conn, "migrate: schema_version exists",
			"SELECT to_regclass('schema_version') IS NOT NULL", 0, NULL, &res, err);
	if (rc != PV_OK)
		return rc;
	exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!exists)
		return PV_OK;
	rc = pv_pg_exec(conn, "migrate: current version",
			"SELECT coalesce(max(version), 0) FROM schema_version", 0, NULL, &res, err);
	if (rc != PV_OK)
		return rc;
	*version = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return PV_OK;
}
