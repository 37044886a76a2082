/* libFuzzer target: the configuration file and the environment overrides
 * as every program reads them (pv_config_load: libinih, the key table,
 * PHOTOVOTE_<SECTION>_<KEY>, *_file secrets).  The input is the file's
 * text; after a NUL byte come environment entries, each ended by a NUL.
 *
 * Invariants: a configuration either loads, with every key of the table
 * answering, or fails with a message that says where (the file and line,
 * the variable, or the key that is missing). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "fuzz.h"
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...) FUZZ_FAIL("fuzz-config: " __VA_ARGS__)

static char path[64];

static void remove_file(void)
{
	unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nul = memchr(data, '\0', size);
	size_t flen = nul ? (size_t)(nul - (const char *)data) : size;
	char *envtext = malloc(size + 2), **env;
	struct pv_config *cfg;
	struct pv_error err = {PV_OK, ""};
	size_t n = 0;
	int fd;

	if (!path[0] && atexit(remove_file) == 0)
		snprintf(path, sizeof path, "%s/pv-fuzz-config.%ld",
			 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (long)getpid());
	/* write(2), not stdio: fopen's 4 KB buffer, filled by ASan on each
	 * allocation, was a tenth of this target's time. */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || !envtext || write(fd, data, flen) != (ssize_t)flen || close(fd) != 0)
		abort();
	/* Environment entries after the file, NUL-separated. */
	memcpy(envtext, data, size);
	envtext[size] = envtext[size + 1] = '\0';
	env = calloc(size / 2 + 2, sizeof *env);
	if (!env)
		abort();
	for (char *p = envtext + flen + 1; nul && p < envtext + size; p += strlen(p) + 1)
		if (*p)
			env[n++] = p;
	if (pv_config_load(path, env, &cfg, &err) == PV_OK) {
		/* Every kind of key answers, with where its value came from. */
		if (!pv_config_str(cfg, "amqp", "host") ||
		    pv_config_int(cfg, "http", "threads") < 1 ||
		    !pv_config_origin(cfg, "http", "auth_mode"))
			FAIL("a loaded configuration without its values");
		(void)pv_config_bool(cfg, "cosmos", "create_if_missing");
		pv_config_free(cfg);
	} else if (!strstr(err.msg, path) && !strstr(err.msg, "environment") &&
		   !strstr(err.msg, "required key") && !strstr(err.msg, "secret file")) {
		FAIL("a refusal that does not say where: %s", err.msg);
	}
	free(env);
	free(envtext);
	return 0;
}
