/*
 * replay.c - run a fuzz target over its seed folder as a TAP test, for
 * builds without libFuzzer. SEED_DIR is the folder, set by the Makefile.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "tap.h"

#define REPLAY_MAX_INPUT (1024 * 1024)

static int
replay_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : SEED_DIR;
	char **names = NULL, path[4096];
	unsigned char *buf = NULL;
	struct dirent *de;
	size_t n = 0, cap = 0, i, len;
	FILE *fp;
	DIR *dp;

	if ((dp = opendir(dir)) == NULL) {
		printf("1..0 # SKIP no seed folder %s\n", dir);
		return 1;
	}
	while ((de = readdir(dp)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((names = realloc(names, cap * sizeof(*names))) ==
			    NULL)
				return 1;
		}
		if ((names[n++] = strdup(de->d_name)) == NULL)
			return 1;
	}
	closedir(dp);
	qsort(names, n, sizeof(*names), replay_cmp);
	if ((buf = malloc(REPLAY_MAX_INPUT)) == NULL)
		return 1;
	tap_plan((int)n);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if ((fp = fopen(path, "rb")) == NULL) {
			tap_ok(0, "%s: cannot open", names[i]);
			continue;
		}
		len = fread(buf, 1, REPLAY_MAX_INPUT, fp);
		fclose(fp);
		/* A crash or sanitizer report aborts the whole program. */
		LLVMFuzzerTestOneInput(buf, len);
		tap_ok(1, "%s (%zu bytes)", names[i], len);
		free(names[i]);
	}
	free(names);
	free(buf);
	tap_exit();
}
