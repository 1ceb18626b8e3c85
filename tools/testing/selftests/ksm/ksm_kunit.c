// SPDX-License-Identifier: GPL-2.0
/*
 * Report KSM's KUnit tests (mm/ksm-kunit.h, CONFIG_KSM_KUNIT_TEST) as TAP.
 *
 * They run at boot, built into the kernel; their results wait in
 * /sys/kernel/debug/kunit/ksm/results (CONFIG_KUNIT_DEBUGFS), in KTAP
 * with the suite's kcases nested one level down.  This prints one TAP
 * result per case, in order, with the kcases' diagnostic lines, so that
 * the harness judges each case as it judges any selftest.
 *
 * A kernel without the suite is a skip, unless it is our KSM (it has the
 * 2009 files, kernel_pages_allocated): there, no results is a failure.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RESULTS		"/sys/kernel/debug/kunit/ksm/results"
#define OURS		"/sys/kernel/mm/ksm/kernel_pages_allocated"
#define MAX_CASES	64
#define SKIP_MARK	"# SKIP"

struct kcase {
	bool ok;
	bool skip;
	char name[128];
};

static struct kcase kcases[MAX_CASES];
static char *diag[1024];
static int nr_kcases, nr_diag;

/* "ok 3 name # SKIP why" or "not ok 3 name", leading blanks already gone */
static bool parse_result(const char *s, struct kcase *c)
{
	const char *p;
	int n;

	if (!strncmp(s, "not ok ", 7)) {
		c->ok = false;
		p = s + 7;
	} else if (!strncmp(s, "ok ", 3)) {
		c->ok = true;
		p = s + 3;
	} else {
		return false;
	}
	if (sscanf(p, "%*d %127s%n", c->name, &n) != 1)
		return false;
	c->skip = !!strstr(p + n, SKIP_MARK);
	return true;
}

int main(void)
{
	char line[1024];
	FILE *f;
	int i;

	f = fopen(RESULTS, "r");
	if (!f) {
		if (access(OURS, F_OK)) {
			printf("1..0 # SKIP no KSM KUnit suite in this kernel (%s)\n",
			       strerror(errno));
			return 4;
		}
		printf("1..1\nnot ok 1 ksm_kunit # %s: %s\n", RESULTS,
		       strerror(errno));
		return 1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *s = line;
		struct kcase c;

		line[strcspn(line, "\n")] = '\0';
		/* Only the nested lines are the kcases and their messages. */
		if (!isspace((unsigned char)*s))
			continue;
		while (isspace((unsigned char)*s))
			s++;
		if (parse_result(s, &c)) {
			if (nr_kcases < MAX_CASES)
				kcases[nr_kcases++] = c;
		} else if (*s == '#' && nr_diag < 1024) {
			diag[nr_diag++] = strdup(s);
		}
	}
	fclose(f);

	for (i = 0; i < nr_diag; i++)
		if (diag[i])
			printf("%s\n", diag[i]);
	if (!nr_kcases) {
		printf("1..1\nnot ok 1 ksm_kunit # no test case in %s\n",
		       RESULTS);
		return 1;
	}
	printf("1..%d\n", nr_kcases);
	for (i = 0; i < nr_kcases; i++) {
		const char *result = kcases[i].ok ? "ok" : "not ok";
		const char *skip = kcases[i].skip ? " " SKIP_MARK : "";

		printf("%s %d %s%s\n", result, i + 1, kcases[i].name, skip);
	}
	for (i = 0; i < nr_kcases; i++)
		if (!kcases[i].ok)
			return 1;
	return 0;
}
