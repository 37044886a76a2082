#include "config.h"

#include "pv_test.h"
#include "domain-test-util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *td_load(const char *rel)
{
	const char *top = getenv("top_srcdir");
	char path[4096];
	json_error_t jerr;
	json_t *j;

	snprintf(path, sizeof path, "%s/tests/data/domain/%s", top ? top : "..", rel);
	j = json_load_file(path, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!j)
		fail_msg("%s:%d: %s", path, jerr.line, jerr.text);
	return j;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char **td_list(const char *dir)
{
	const char *top = getenv("top_srcdir");
	char path[4096];
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof path, "%s/tests/data/domain/%s", top ? top : "..", dir);
	d = opendir(path);
	if (!d)
		fail_msg("cannot open %s", path);
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		names = realloc(names, (n + 2) * sizeof *names);
		assert_non_null(names);
		names[n] = malloc(strlen(dir) + len + 2);
		assert_non_null(names[n]);
		sprintf(names[n], "%s/%s", dir, de->d_name);
		n++;
	}
	closedir(d);
	if (!names)
		names = calloc(1, sizeof *names);
	assert_non_null(names);
	qsort(names, n, sizeof *names, name_cmp);
	names[n] = NULL;
	return names;
}

void td_names_free(char **names)
{
	for (char **p = names; p && *p; p++)
		free(*p);
	free(names);
}

void td_event(struct pv_event *ev, enum pv_event_type type, const json_t *data, const char *user,
	      int admin, const char *at)
{
	struct pv_event_meta meta = {(char *)user, admin != 0, (char *)at, NULL, NULL};
	struct pv_error err = {0};
	char id[PV_UUID_LEN + 1];

	pv_uuid_new(id);
	if (pv_event_init(ev, id, type, json_deep_copy(data), &meta, &err) != PV_OK)
		fail_msg("%s refused: %s", pv_event_type_name(type), err.msg);
}

char *td_dump(const json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);

	assert_non_null(s);
	return s;
}
