// SPDX-License-Identifier: GPL-2.0
/*
 * The whole of /sys/kernel/mm/ksm/ against upstream 6.12 (mm/ksm.c and
 * Documentation/admin-guide/mm/ksm.rst): the same 24 files (with NUMA)
 * plus our own (two of the 2009 interface, two of merge domains), each
 * with upstream's mode (ours: the same rules), format
 * and default; bad input to every writable file fails with upstream's
 * errno and leaves the value alone; only root may write.
 *
 * Run on upstream's KSM, file_list fails (our files are ours only).
 * The defaults are those found when the program starts: the harness has
 * written run=2 (so "run" may read 0 or 2), everything else is as booted.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "../kselftest_harness.h"
#include "ksm_common.h"

struct ksm_file {
	const char *name;
	mode_t mode;
	const char *dflt;	/* contents at boot; NULL: not checked */
};

/* Upstream 6.12 with CONFIG_NUMA: __ATTR_RW is 0644, __ATTR_RO 0444. */
static const struct ksm_file upstream_files[] = {
	{ "run",				0644, NULL },
	{ "pages_to_scan",			0644, "100\n" },
	{ "sleep_millisecs",			0644, "20\n" },
	{ "merge_across_nodes",			0644, "1\n" },
	{ "use_zero_pages",			0644, "0\n" },
	{ "max_page_sharing",			0644, "256\n" },
	{ "stable_node_chains_prune_millisecs",	0644, "2000\n" },
	{ "smart_scan",				0644, "1\n" },
	{ "advisor_mode",			0644, "[none] scan-time\n" },
	{ "advisor_max_cpu",			0644, "70\n" },
	{ "advisor_min_pages_to_scan",		0644, "500\n" },
	{ "advisor_max_pages_to_scan",		0644, "30000\n" },
	{ "advisor_target_scan_time",		0644, "200\n" },
	/* after run=2, nothing is merged and no item is left */
	{ "pages_shared",			0444, "0\n" },
	{ "pages_sharing",			0444, "0\n" },
	{ "pages_unshared",			0444, "0\n" },
	{ "pages_volatile",			0444, "0\n" },
	{ "pages_scanned",			0444, NULL },
	{ "pages_skipped",			0444, NULL },
	{ "full_scans",				0444, NULL },
	{ "ksm_zero_pages",			0444, "0\n" },
	{ "stable_node_chains",			0444, "0\n" },
	{ "stable_node_dups",			0444, "0\n" },
	{ "general_profit",			0444, "0\n" },
};

/* Ours only: the original 2009 interface, and merge domains. */
static const struct ksm_file files_ours[] = {
	{ "kernel_pages_allocated",		0444, "0\n" },
	{ "max_kernel_pages",			0644, "0\n" },
	{ "merge_domain",			0644, "[global] process cgroup\n" },
	{ "merge_zero_across_domains",		0644, "0\n" },
};

/*
 * The contents of every file at boot, as the guest's init saved them in
 * BOOT_SNAPSHOT before any test ran (earlier programs, upstream's
 * ksm_functional_tests among them, may leave knobs changed); without a
 * snapshot, when the program started, before any fixture touched a knob
 * (kselftest runs each test in a fork of main).
 */
#define BOOT_SNAPSHOT	"/tmp/ksm-boot/"

static char boot_values[ARRAY_SIZE(upstream_files) +
			ARRAY_SIZE(files_ours)][64];

static int read_boot_value(const char *name, char *buf, size_t size)
{
	char path[PATH_MAX];
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), BOOT_SNAPSHOT "%s", name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return ksm_read_str(name, buf, size);
	len = read(fd, buf, size - 1);
	close(fd);
	if (len < 0)
		return -1;
	buf[len] = '\0';
	return len;
}

static void __attribute__((constructor)) read_boot_values(void)
{
	size_t i, n = ARRAY_SIZE(upstream_files);

	if (geteuid() || !ksm_available())
		return;
	for (i = 0; i < ARRAY_SIZE(boot_values); i++) {
		const char *name = i < n ? upstream_files[i].name :
					   files_ours[i - n].name;

		if (read_boot_value(name, boot_values[i],
				    sizeof(boot_values[i])) < 0)
			boot_values[i][0] = '\0';
	}
}

FIXTURE(sysfs) {
	struct ksm_saved saved;
	char *area;
};

FIXTURE_SETUP(sysfs)
{
	const char *skip = ksm_skip_reason(false);

	self->area = NULL;
	if (skip)
		SKIP(return, "%s", skip);
	ksm_save(&self->saved);
	ASSERT_EQ(0, ksm_set("run", 2));
}

FIXTURE_TEARDOWN(sysfs)
{
	ksm_restore(&self->saved);
	if (self->area)
		munmap(self->area, 16 * page_size);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char * const *)a, *(char * const *)b);
}

/* Exactly upstream's 24 files and our four, nothing else. */
TEST_F(sysfs, file_list)
{
	const char *want[ARRAY_SIZE(upstream_files) + ARRAY_SIZE(files_ours)];
	char *have[64];
	size_t nwant = 0, nhave = 0, i, j;
	struct dirent *de;
	DIR *dir;

	for (i = 0; i < ARRAY_SIZE(upstream_files); i++)
		want[nwant++] = upstream_files[i].name;
	for (i = 0; i < ARRAY_SIZE(files_ours); i++)
		want[nwant++] = files_ours[i].name;
	dir = opendir(KSM_SYSFS_DIR);
	ASSERT_NE(NULL, dir);
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		ASSERT_GT(ARRAY_SIZE(have), nhave);
		have[nhave++] = strdup(de->d_name);
	}
	closedir(dir);
	qsort(want, nwant, sizeof(want[0]), cmp_str);
	qsort(have, nhave, sizeof(have[0]), cmp_str);

	for (i = 0; i < nwant; i++) {
		for (j = 0; j < nhave && strcmp(want[i], have[j]); j++)
			;
		EXPECT_LT(j, nhave) TH_LOG("missing: %s%s", KSM_SYSFS_DIR,
					   want[i]);
	}
	for (j = 0; j < nhave; j++) {
		for (i = 0; i < nwant && strcmp(want[i], have[j]); i++)
			;
		EXPECT_LT(i, nwant) TH_LOG("not in upstream 6.12: %s%s",
					   KSM_SYSFS_DIR, have[j]);
	}
	EXPECT_EQ(nwant, nhave);
	for (j = 0; j < nhave; j++)
		free(have[j]);
}

static void check_file(struct __test_metadata *_metadata,
		       const struct ksm_file *f, const char *boot)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), KSM_SYSFS_DIR "%s", f->name);
	ASSERT_EQ(0, stat(path, &st)) TH_LOG("%s: %s", path, strerror(errno));
	EXPECT_TRUE(S_ISREG(st.st_mode)) TH_LOG("%s is not a file", path);
	EXPECT_EQ(f->mode, st.st_mode & 07777)
		TH_LOG("%s: mode %o, upstream %o", path, st.st_mode & 07777,
		       f->mode);
	EXPECT_EQ(0, st.st_uid);
	EXPECT_EQ(0, st.st_gid);
	if (!strcmp(f->name, "run")) {
		EXPECT_TRUE(!strcmp(boot, "0\n") || !strcmp(boot, "2\n"))
			TH_LOG("run read \"%s\" (0 at boot, 2 from the harness)",
			       boot);
	} else if (!strcmp(f->name, "use_zero_pages")) {
		/*
		 * Upstream's ksm_functional_tests, which make check runs
		 * first, leaves use_zero_pages at 1: its boot value is not
		 * known here, only its format.
		 */
		EXPECT_TRUE(!strcmp(boot, "0\n") || !strcmp(boot, "1\n"))
			TH_LOG("use_zero_pages read \"%s\"", boot);
	} else if (f->dflt && (f->mode & 0200 || !strcmp(boot_values[0], "2\n"))) {
		/* The counters are known after run=2, as the harness leaves it. */
		EXPECT_STREQ(f->dflt, boot) TH_LOG("%s", path);
	} else {
		char *end;

		/* One unsigned decimal number and a newline. */
		EXPECT_TRUE(boot[0] >= '0' && boot[0] <= '9')
			TH_LOG("%s reads \"%s\"", path, boot);
		strtoul(boot, &end, 10);
		EXPECT_STREQ("\n", end) TH_LOG("%s reads \"%s\"", path, boot);
	}
}

/* Modes, owner, format and defaults of upstream's files. */
TEST_F(sysfs, modes_and_defaults)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(upstream_files); i++)
		check_file(_metadata, &upstream_files[i], boot_values[i]);
}

TEST_F(sysfs, modes_and_defaults_ours)
{
	size_t i, n = ARRAY_SIZE(upstream_files);

	for (i = 0; i < ARRAY_SIZE(files_ours); i++) {
		if (!ksm_knob_exists(files_ours[i].name))
			SKIP(return, "no %s%s", KSM_SYSFS_DIR, files_ours[i].name);
		check_file(_metadata, &files_ours[i], boot_values[n + i]);
	}
}

struct bad_input {
	const char *knob;
	const char *input;
	int err;		/* upstream's errno */
};

/*
 * What upstream 6.12 refuses, and with which errno.  kstrtouint() and
 * kstrtoul() take decimal digits, an optional '+' and one trailing
 * newline; most stores turn any parse error into EINVAL, while
 * merge_across_nodes and max_page_sharing pass on kstrtoul()'s and
 * kstrtoint()'s own (ERANGE on overflow).  kstrtobool() looks at the first
 * one or two characters only.
 */
#define UINT_JUNK(k)							\
	{ k, "\n", EINVAL }, { k, "-1", EINVAL },			\
	{ k, "-0", EINVAL }, { k, "4294967296", EINVAL },		\
	{ k, "99999999999999999999999", EINVAL }, { k, "abc", EINVAL },	\
	{ k, "12abc", EINVAL }, { k, "0x10", EINVAL }, { k, " 5", EINVAL },\
	{ k, "5 ", EINVAL }, { k, "5\n\n", EINVAL }, { k, "1.5", EINVAL },\
	{ k, "+", EINVAL }
#define ULONG_JUNK(k)							\
	{ k, "\n", EINVAL }, { k, "-1", EINVAL },			\
	{ k, "18446744073709551616", EINVAL }, { k, "abc", EINVAL },	\
	{ k, "12abc", EINVAL }, { k, "0x10", EINVAL }, { k, " 5", EINVAL },\
	{ k, "1.5", EINVAL }
#define BOOL_JUNK(k)							\
	{ k, "\n", EINVAL }, { k, "2", EINVAL }, { k, "-1", EINVAL },	\
	{ k, "abc", EINVAL }, { k, "o", EINVAL }, { k, "ox", EINVAL },	\
	{ k, " 1", EINVAL }

static const struct bad_input bad_inputs[] = {
	UINT_JUNK("run"), { "run", "3", EINVAL }, { "run", "4", EINVAL },
	UINT_JUNK("pages_to_scan"),
	UINT_JUNK("sleep_millisecs"),
	UINT_JUNK("stable_node_chains_prune_millisecs"),
	{ "merge_across_nodes", "\n", EINVAL },
	{ "merge_across_nodes", "-1", EINVAL },
	{ "merge_across_nodes", "2", EINVAL },
	{ "merge_across_nodes", "4294967297", EINVAL },
	{ "merge_across_nodes", "99999999999999999999", ERANGE },
	{ "merge_across_nodes", "abc", EINVAL },
	{ "merge_across_nodes", "1abc", EINVAL },
	{ "max_page_sharing", "\n", EINVAL },
	{ "max_page_sharing", "-1", EINVAL },
	{ "max_page_sharing", "0", EINVAL },
	{ "max_page_sharing", "1", EINVAL },
	{ "max_page_sharing", "2147483648", ERANGE },
	{ "max_page_sharing", "99999999999999999999", ERANGE },
	{ "max_page_sharing", "abc", EINVAL },
	{ "max_page_sharing", "3x", EINVAL },
	BOOL_JUNK("use_zero_pages"),
	BOOL_JUNK("smart_scan"),
	{ "advisor_mode", "\n", EINVAL },
	{ "advisor_mode", "scan", EINVAL },
	{ "advisor_mode", "scan-time-x", EINVAL },
	{ "advisor_mode", "NONE", EINVAL },
	{ "advisor_mode", "[none]", EINVAL },
	{ "advisor_mode", "none scan-time", EINVAL },
	{ "advisor_mode", "1", EINVAL },
	ULONG_JUNK("advisor_max_cpu"),
	ULONG_JUNK("advisor_min_pages_to_scan"),
	ULONG_JUNK("advisor_max_pages_to_scan"),
	ULONG_JUNK("advisor_target_scan_time"),
	{ "advisor_target_scan_time", "0", EINVAL },
	/* ours: kstrtoul(), EINVAL */
	ULONG_JUNK("max_kernel_pages"),
	/* ours, as advisor_mode */
	{ "merge_domain", "\n", EINVAL },
	{ "merge_domain", "proc", EINVAL },
	{ "merge_domain", "GLOBAL", EINVAL },
	{ "merge_domain", "[global]", EINVAL },
	{ "merge_domain", "process cgroup", EINVAL },
	{ "merge_domain", "1", EINVAL },
	BOOL_JUNK("merge_zero_across_domains"),
};

TEST_F(sysfs, bad_input_refused)
{
	char before[64], after[64];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad_inputs); i++) {
		const struct bad_input *b = &bad_inputs[i];
		int ret;

		if (!ksm_knob_exists(b->knob))
			continue;
		ASSERT_LT(0, ksm_read_str(b->knob, before, sizeof(before)));
		ret = ksm_write_str(b->knob, b->input);
		EXPECT_EQ(-b->err, ret)
			TH_LOG("%s <- \"%s\": %s, upstream %s", b->knob,
			       b->input, ret ? strerror(-ret) : "accepted",
			       strerror(b->err));
		ASSERT_LT(0, ksm_read_str(b->knob, after, sizeof(after)));
		EXPECT_STREQ(before, after)
			TH_LOG("%s changed by \"%s\"", b->knob, b->input);
	}
}

struct good_input {
	const char *knob;
	const char *input;
	const char *reads;	/* what the file reads afterwards */
};

/* What upstream takes, and how it reads back. */
static const struct good_input good_inputs[] = {
	{ "use_zero_pages", "1", "1\n" }, { "use_zero_pages", "n", "0\n" },
	{ "use_zero_pages", "Y\n", "1\n" }, { "use_zero_pages", "off", "0\n" },
	{ "use_zero_pages", "on", "1\n" }, { "use_zero_pages", "false", "0\n" },
	{ "use_zero_pages", "10", "1\n" }, { "use_zero_pages", "0", "0\n" },
	{ "smart_scan", "0", "0\n" }, { "smart_scan", "yes", "1\n" },
	{ "smart_scan", "F", "0\n" }, { "smart_scan", "1\n", "1\n" },
	{ "max_page_sharing", "2", "2\n" }, { "max_page_sharing", "+3", "3\n" },
	{ "max_page_sharing", "2147483647", "2147483647\n" },
	{ "max_page_sharing", "256\n", "256\n" },
	{ "merge_across_nodes", "0\n", "0\n" },
	{ "merge_across_nodes", "+1", "1\n" },
	{ "stable_node_chains_prune_millisecs", "0", "0\n" },
	{ "stable_node_chains_prune_millisecs", "4294967295", "4294967295\n" },
	{ "stable_node_chains_prune_millisecs", "2000\n", "2000\n" },
	{ "advisor_mode", "scan-time\n", "none [scan-time]\n" },
	{ "advisor_mode", "scan-time", "none [scan-time]\n" },
	{ "advisor_mode", "none", "[none] scan-time\n" },
	{ "advisor_max_cpu", "1", "1\n" }, { "advisor_max_cpu", "100", "100\n" },
	{ "advisor_max_cpu", "+70\n", "70\n" },
	{ "advisor_target_scan_time", "1", "1\n" },
	{ "advisor_target_scan_time", "200\n", "200\n" },
	{ "advisor_min_pages_to_scan", "+499", "499\n" },
	{ "advisor_max_pages_to_scan", "29999\n", "29999\n" },
};

TEST_F(sysfs, good_input_taken)
{
	char buf[64];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(good_inputs); i++) {
		const struct good_input *g = &good_inputs[i];
		int ret = ksm_write_str(g->knob, g->input);

		EXPECT_EQ(0, ret) TH_LOG("%s <- \"%s\": %s", g->knob, g->input,
					 strerror(-ret));
		ASSERT_LT(0, ksm_read_str(g->knob, buf, sizeof(buf)));
		EXPECT_STREQ(g->reads, buf) TH_LOG("%s after \"%s\"", g->knob,
						   g->input);
	}
}

/*
 * Upstream 6.12 takes any number for the advisor's bounds: no range
 * check on advisor_max_cpu, advisor_{min,max}_pages_to_scan (not even
 * min <= max), nor an upper one on advisor_target_scan_time.  Ours
 * refuses what can never make sense (0, more than 100 percent, more pages
 * than pages_to_scan holds) with EINVAL, and keeps the value: see
 * Documentation/admin-guide/mm/ksm.rst.  A minimum above the maximum is
 * taken, as upstream takes it, so that the order of two writes does not
 * matter (advisor_bounds_any_order in ksm_regress).
 */
static const struct { const char *knob, *input; } advisor_nonsense[] = {
	{ "advisor_max_cpu", "0" }, { "advisor_max_cpu", "101" },
	{ "advisor_min_pages_to_scan", "0" },
	{ "advisor_max_pages_to_scan", "0" },
	{ "advisor_max_pages_to_scan", "4294967296" },
	{ "advisor_min_pages_to_scan", "5000000000" },
	{ "advisor_target_scan_time", "0" },
	{ "advisor_target_scan_time", "4294967296" },
};

TEST_F(sysfs, advisor_bounds_refuse_nonsense)
{
	char before[64], after[64];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(advisor_nonsense); i++) {
		const char *knob = advisor_nonsense[i].knob;
		const char *input = advisor_nonsense[i].input;

		ASSERT_LT(0, ksm_read_str(knob, before, sizeof(before)));
		EXPECT_EQ(-EINVAL, ksm_write_str(knob, input))
			TH_LOG("%s <- \"%s\"", knob, input);
		ASSERT_LT(0, ksm_read_str(knob, after, sizeof(after)));
		EXPECT_STREQ(before, after) TH_LOG("%s after \"%s\"", knob,
						   input);
	}
}

/* Non-root cannot open a single file for writing. */
TEST_F(sysfs, nobody_cannot_write)
{
	size_t i, n = ARRAY_SIZE(upstream_files) + ARRAY_SIZE(files_ours);
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int bad = 0;

		if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
			_exit(100);
		for (i = 0; i < n; i++) {
			const struct ksm_file *f = i < ARRAY_SIZE(upstream_files) ?
				&upstream_files[i] :
				&files_ours[i - ARRAY_SIZE(upstream_files)];
			char path[PATH_MAX];
			int fd;

			snprintf(path, sizeof(path), KSM_SYSFS_DIR "%s", f->name);
			if (access(path, F_OK))
				continue;
			fd = open(path, O_WRONLY);
			if (fd >= 0 || errno != EACCES) {
				ksft_print_msg("nobody: open(%s, O_WRONLY): %s\n",
					       path, fd >= 0 ? "opened" :
					       strerror(errno));
				bad++;
			}
			if (fd >= 0)
				close(fd);
			/* Reading is for everyone. */
			fd = open(path, O_RDONLY);
			if (fd < 0) {
				ksft_print_msg("nobody: cannot read %s: %s\n",
					       path, strerror(errno));
				bad++;
			} else {
				close(fd);
			}
		}
		_exit(bad);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_NE(100, WEXITSTATUS(status)) TH_LOG("cannot become nobody");
	EXPECT_EQ(0, WEXITSTATUS(status));
}

/*
 * Going to run=2 unmerges everything and, upstream, starts full_scans
 * again from 0 (unmerge_and_remove_all_rmap_items() resets seqnr).
 */
TEST_F_TIMEOUT(sysfs, run_unmerge_resets_full_scans, KSM_TEST_TIMEOUT)
{
	ASSERT_EQ(0, ksm_prepare(1000, 10));
	self->area = map_same(16, 0x5f5);
	ASSERT_NE(NULL, self->area);
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_scans(2, KSM_WAIT_SECS));
	ASSERT_LE(2, ksm_get("full_scans"));
	ASSERT_EQ(0, ksm_set("run", 2));
	EXPECT_EQ(0, ksm_get("full_scans"));
	EXPECT_EQ(0, ksm_get("pages_shared"));
	EXPECT_EQ(0, ksm_get("pages_sharing"));
}

TEST_HARNESS_MAIN
