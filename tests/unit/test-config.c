/* Configuration: file, environment, secrets and every way to get it wrong. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "options.h"
#include "eventstore.h"

#include "pv_test.h"

static char *write_temp(const char *content)
{
	char *path = strdup("/tmp/pv-config-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
	return path;
}

static char *const no_env[] = {NULL};

static void defaults_without_file(void **state)
{
	struct pv_config *cfg;
	struct pv_error err;

	assert_int_equal(pv_config_load(NULL, no_env, &cfg, &err), PV_OK);
	assert_string_equal(pv_config_str(cfg, "eventstore", "backend"), "postgres");
	assert_int_equal(pv_config_int(cfg, "http", "body_limit"), 65536);
	assert_true(pv_config_bool(cfg, "cosmos", "create_if_missing"));
	assert_string_equal(pv_config_origin(cfg, "http", "body_limit"), "default");
	pv_config_free(cfg);
}

static void file_values_and_origin(void **state)
{
	char *path =
		write_temp("; comment\n[http]\nbody_limit = 1024\n\n[eventstore]\nbackend = esdb\n"
			   "url = http://127.0.0.1:2113\n[cosmos]\ncreate_if_missing = no\n");
	struct pv_config *cfg;
	struct pv_error err;
	char origin[512];

	assert_int_equal(pv_config_load(path, no_env, &cfg, &err), PV_OK);
	assert_int_equal(pv_config_int(cfg, "http", "body_limit"), 1024);
	assert_string_equal(pv_config_str(cfg, "eventstore", "backend"), "esdb");
	assert_false(pv_config_bool(cfg, "cosmos", "create_if_missing"));
	snprintf(origin, sizeof origin, "%s:3", path);
	assert_string_equal(pv_config_origin(cfg, "http", "body_limit"), origin);
	pv_config_free(cfg);
	unlink(path);
	free(path);
}

static void environment_overrides_file(void **state)
{
	char *path = write_temp("[http]\nbody_limit = 1024\n");
	char *env[] = {"PATH=/bin",
		       "PHOTOVOTE_HTTP_BODY_LIMIT=2048",
		       "PHOTOVOTE_LOG_LEVEL=debug",
		       "PHOTOVOTE_CONFIG=/elsewhere",
		       "PHOTOVOTE_FAULT=after_append",
		       NULL};
	struct pv_config *cfg;
	struct pv_error err;

	assert_int_equal(pv_config_load(path, env, &cfg, &err), PV_OK);
	assert_int_equal(pv_config_int(cfg, "http", "body_limit"), 2048);
	assert_string_equal(pv_config_str(cfg, "log", "level"), "debug");
	assert_string_equal(pv_config_origin(cfg, "http", "body_limit"),
			    "environment PHOTOVOTE_HTTP_BODY_LIMIT");
	pv_config_free(cfg);
	unlink(path);
	free(path);
}

static void secret_from_file(void **state)
{
	char *secret = write_temp("s3cr3t\n");
	char *conf, text[512];
	struct pv_config *cfg;
	struct pv_error err;

	snprintf(text, sizeof text, "[amqp]\npassword_file = %s\n", secret);
	conf = write_temp(text);
	assert_int_equal(pv_config_load(conf, no_env, &cfg, &err), PV_OK);
	assert_string_equal(pv_config_str(cfg, "amqp", "password"), "s3cr3t");
	pv_config_free(cfg);

	/* The same through the environment. */
	char var[600];
	snprintf(var, sizeof var, "PHOTOVOTE_COSMOS_KEY_FILE=%s", secret);
	char *env[] = {var, NULL};
	assert_int_equal(pv_config_load(NULL, env, &cfg, &err), PV_OK);
	assert_string_equal(pv_config_str(cfg, "cosmos", "key"), "s3cr3t");
	pv_config_free(cfg);
	unlink(secret);
	unlink(conf);
	free(secret);
	free(conf);
}

/* Each bad configuration must fail, leave *out NULL, and name the key. */
struct bad_case {
	const char *file;      /* NULL: no file */
	const char *env;       /* NULL: no variable */
	const char *must_name; /* text the message must contain */
};

static void bad_configurations(void **state)
{
	static const struct bad_case cases[] = {
		{"[http]\nbody_limt = 5\n", NULL, "unknown key 'body_limt' in section [http]"},
		{"[htttp]\nbody_limit = 5\n", NULL, "unknown section [htttp]"},
		{"[http]\nbody_limit = lots\n", NULL, "http.body_limit must be a whole number"},
		{"[http]\nbody_limit = 1\n", NULL, "from 256 to 16777216"},
		{"[http]\nbody_limit = 99999999999999999999999\n", NULL, "http.body_limit"},
		{"[http]\nauth_mode = basic\n", NULL,
		 "http.auth_mode must be one of token|remote_user"},
		{"[cosmos]\ncreate_if_missing = maybe\n", NULL,
		 "cosmos.create_if_missing must be true or false"},
		{"[http]\nthreads\n", NULL,
		 ":2: syntax error: 'threads' is not a [section] header"},
		/* The unclosed header is the error, not the key after it. */
		{"[amqp\nhost = x\n", NULL,
		 ":1: syntax error: '[amqp' is a section header without its closing ']'"},
		{"[http]\nthreads = 2\n[amqp  \nport = 1\n", NULL,
		 ":3: syntax error: '[amqp  ' is a section header"},
		{"[http]\nthreads = 2\n[bogus]\nx = 1\n[amqp\n", NULL,
		 ":4: unknown section [bogus]"},
		{"[http]\nthreads = 2\n\x1b[2J\n", NULL, ":3: syntax error: '\\x1b[2J'"},
		{"[http]\nbody_limit_file = /x\n", NULL, "unknown key 'body_limit_file'"},
		{"[amqp]\npassword_file = /nonexistent/pw\n", NULL,
		 "cannot open secret file /nonexistent/pw"},
		{NULL, "PHOTOVOTE_HTTP_BODY_LIMIT=abc", "environment PHOTOVOTE_HTTP_BODY_LIMIT"},
		{NULL, "PHOTOVOTE_HTTP_NOPE=1", "unknown key 'nope' in section [http]"},
		{NULL, "PHOTOVOTE_NOSECTION=1", "PHOTOVOTE_<SECTION>_<KEY>"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *path = cases[i].file ? write_temp(cases[i].file) : NULL;
		char *env[] = {(char *)cases[i].env, NULL};
		struct pv_config *cfg = (struct pv_config *)1;
		struct pv_error err = {PV_OK, ""};

		assert_int_equal(pv_config_load(path, env, &cfg, &err), PV_ERR_CONFIG);
		assert_null(cfg);
		if (!strstr(err.msg, cases[i].must_name))
			fail_msg("case %zu: message '%s' lacks '%s'", i, err.msg,
				 cases[i].must_name);
		if (path && cases[i].file && !strstr(cases[i].must_name, "secret") &&
		    !strstr(err.msg, path))
			fail_msg("case %zu: message '%s' does not name the file", i, err.msg);
		if (path) {
			unlink(path);
			free(path);
		}
	}
}

static void missing_file_is_named(void **state)
{
	struct pv_config *cfg;
	struct pv_error err;

	assert_int_equal(pv_config_load("/nonexistent/photovote.conf", no_env, &cfg, &err),
			 PV_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "/nonexistent/photovote.conf"));
}

static void describe_lists_every_section(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	pv_config_describe(f);
	fclose(f);
	assert_non_null(strstr(text, "PHOTOVOTE_HTTP_BODY_LIMIT"));
	assert_non_null(strstr(text, "[eventstore] backend"));
	assert_non_null(strstr(text, "secret"));
	free(text);
}

static void eventstore_options(void **state)
{
	char *env[] = {"PHOTOVOTE_EVENTSTORE_BACKEND=esdb",
		       "PHOTOVOTE_EVENTSTORE_URL=https://es.example:2113",
		       "PHOTOVOTE_EVENTSTORE_USERNAME=ops",
		       "PHOTOVOTE_EVENTSTORE_PASSWORD=pw",
		       "PHOTOVOTE_EVENTSTORE_TIMEOUT_MS=1234",
		       "PHOTOVOTE_POSTGRES_CONNINFO=dbname=pv",
		       NULL};
	char *with_ca[] = {"PHOTOVOTE_EVENTSTORE_CA_FILE=/etc/photovote/ca.pem", NULL};
	struct pv_es_options o;
	struct pv_config *cfg;
	struct pv_error err;

	assert_int_equal(pv_config_load(NULL, env, &cfg, &err), PV_OK);
	pv_es_options_from_config(cfg, &o);
	assert_string_equal(o.backend, "esdb");
	assert_string_equal(o.url, "https://es.example:2113");
	assert_string_equal(o.username, "ops");
	assert_string_equal(o.password, "pw");
	assert_int_equal(o.timeout_ms, 1234);
	assert_string_equal(o.pg_conninfo, "dbname=pv");
	assert_null(o.ca_file); /* empty: the system's CAs */
	pv_config_free(cfg);

	assert_int_equal(pv_config_load(NULL, with_ca, &cfg, &err), PV_OK);
	pv_es_options_from_config(cfg, &o);
	assert_string_equal(o.ca_file, "/etc/photovote/ca.pem");
	assert_string_equal(o.backend, "postgres");
	pv_config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_without_file),
		cmocka_unit_test(file_values_and_origin),
		cmocka_unit_test(environment_overrides_file),
		cmocka_unit_test(secret_from_file),
		cmocka_unit_test(bad_configurations),
		cmocka_unit_test(missing_file_is_named),
		cmocka_unit_test(describe_lists_every_section),
		cmocka_unit_test(eventstore_options),
	};
	return PV_RUN_TESTS(tests);
}
