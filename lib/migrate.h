/* Schema migrations: the files NNN_name.sql of one folder, applied in
 * number order, each inside its own transaction together with its row in
 * the table schema_version (version, name, checksum, applied).
 *
 * Safe to run again (applied versions are skipped) and safe against two
 * runners at once: the whole run holds a session-level advisory lock, so a
 * second runner waits and then finds the work done.  A migration file must
 * not contain BEGIN/COMMIT of its own.  A file that changed after it was
 * applied (md5 differs from the recorded one) is reported as a warning; it
 * is not applied again. */
#ifndef PV_MIGRATE_H
#define PV_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "error.h"

/* The installed folder of migrations ($(pkgdatadir)/sql). */
#ifndef PV_SQLDIR
#define PV_SQLDIR "/usr/share/photovote/sql"
#endif

/* The key of the advisory lock held while migrating. */
#define PV_MIGRATE_LOCK_KEY "7031845210457"

struct pv_migration {
	int version; /* NNN */
	char *name;  /* file name, e.g. "001_event_store.sql" */
	char *path;  /* dir/name */
};

struct pv_migration_list {
	struct pv_migration *items; /* sorted by version */
	size_t count;
};

/* Lists the migrations in dir (NULL: PV_SQLDIR).  Files not ending in
 * ".sql" are ignored; a .sql file whose name is not NNN_name.sql, or two
 * files with one number, is PV_ERR_CONFIG. */
enum pv_err pv_migrate_scan(const char *dir, struct pv_migration_list *list, struct pv_error *err);
void pv_migration_list_clear(struct pv_migration_list *list);

/* Applies every migration of dir not yet recorded.  *applied (may be NULL)
 * is how many this run applied.  On failure the failing file's transaction
 * is rolled back (earlier files stay applied) and err names the file. */
enum pv_err pv_migrate_run(PGconn *conn, const char *dir, int *applied, struct pv_error *err);

/* The highest applied version, 0 when none (or no schema_version table). */
enum pv_err pv_migrate_current(PGconn *conn, int *version, struct pv_error *err);

#endif
