/* Configuration: one INI file (libinih), every key overridable from the
 * environment as PHOTOVOTE_<SECTION>_<KEY> (upper case), checked once at
 * start against the table of known keys in config.c.
 *
 * An unknown section or key, a missing required key or a value of the
 * wrong kind stops the program with a message that names the key and the
 * file (or the variable).  A key `<name>_file` (for keys marked secret)
 * reads the value of <name> from that file, trimmed of a final newline. */
#ifndef PV_CONFIG_H
#define PV_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "error.h"

struct pv_config;

/* Loads `path` (NULL: no file, defaults and environment only), applies
 * environment overrides from `envp` (NULL: the process environment), and
 * validates every key.  On failure *out is NULL and err names the key. */
enum pv_err pv_config_load(const char *path, char *const *envp, struct pv_config **out,
			   struct pv_error *err);
void pv_config_free(struct pv_config *cfg);

/* Values after validation.  Asking for a key that is not in the table is a
 * programming error and aborts. */
const char *pv_config_str(const struct pv_config *cfg, const char *section, const char *key);
long long pv_config_int(const struct pv_config *cfg, const char *section, const char *key);
bool pv_config_bool(const struct pv_config *cfg, const char *section, const char *key);
/* Where a value came from: "default", "<file>:<line>", "environment ...". */
const char *pv_config_origin(const struct pv_config *cfg, const char *section, const char *key);

/* Prints every known key with its kind, default, variable and meaning. */
void pv_config_describe(FILE *out);

#endif
