/* Replays corpus files through a fuzz target without libFuzzer, so the
 * suite runs every target with any compiler (tests/fuzz/test-fuzz.sh):
 *   replay-esdb FILE|DIR...
 * Prints how many inputs ran; a finding aborts, as under libFuzzer. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data;
	long size;

	if (!f || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		perror(path);
		if (f)
			fclose(f);
		return -1;
	}
	/* A copy of exactly its size, so that ASan sees a read past the end. */
	data = malloc(size ? (size_t)size : 1);
	if (!data || fread(data, 1, (size_t)size, f) != (size_t)size) {
		perror(path);
		fclose(f);
		free(data);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(data, (size_t)size);
	free(data);
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	long inputs = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		struct dirent *de;
		char **names = NULL;
		size_t n = 0, cap = 0;
		DIR *d;

		if (stat(argv[i], &st) != 0) {
			perror(argv[i]);
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (run_file(argv[i]) != 0)
				return 1;
			inputs++;
			continue;
		}
		if (!(d = opendir(argv[i]))) {
			perror(argv[i]);
			return 1;
		}
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			if (n == cap) {
				cap = cap ? 2 * cap : 64;
				names = realloc(names, cap * sizeof *names);
				if (!names)
					abort();
			}
			names[n] = malloc(strlen(argv[i]) + strlen(de->d_name) + 2);
			if (!names[n])
				abort();
			sprintf(names[n++], "%s/%s", argv[i], de->d_name);
		}
		closedir(d);
		qsort(names, n, sizeof *names, by_name);
		for (size_t k = 0; k < n; k++) {
			if (run_file(names[k]) != 0)
				return 1;
			free(names[k]);
			inputs++;
		}
		free(names);
	}
	printf("%ld inputs replayed\n", inputs);
	return 0;
}
