/* pv-config-docs: the configuration table as test-config-docs.sh needs it.
 *
 *   pv-config-docs describe    pv_config_describe() output: every key with
 *                              its kind, default, variable and meaning
 *   pv-config-docs load FILE   loads FILE with no environment overrides;
 *                              exits 0, or 1 with the error on stderr */
#include <stdio.h>
#include <string.h>

#include "config.h"

int main(int argc, char **argv)
{
	static char *const no_env[] = {NULL};
	struct pv_config *cfg;
	struct pv_error err;

	if (argc == 2 && strcmp(argv[1], "describe") == 0) {
		pv_config_describe(stdout);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "load") == 0) {
		if (pv_config_load(argv[2], no_env, &cfg, &err) != PV_OK) {
			fprintf(stderr, "pv-config-docs: %s\n", err.msg);
			return 1;
		}
		pv_config_free(cfg);
		return 0;
	}
	fprintf(stderr, "usage: pv-config-docs describe | load FILE\n");
	return 2;
}
