// SPDX-License-Identifier: GPL-2.0
/*
 * prctl(PR_SET_MEMORY_MERGE): "merge any" makes every anonymous
 * private mapping of the process mergeable, old and new, without madvise();
 * PR_GET_MEMORY_MERGE reads it back; it survives fork and exec; turning it
 * off unmerges.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "../kselftest_harness.h"
#include "ksm_common.h"

#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE	67
#define PR_GET_MEMORY_MERGE	68
#endif

#define EXEC_CHILD_ENV	"KSM_PRCTL_EXEC_CHILD"
#define NPAGES		16

/*
 * Run as the exec'd child of inherited_by_exec: report PR_GET_MEMORY_MERGE
 * as the exit status before the harness starts.
 */
static void __attribute__((constructor)) exec_child(void)
{
	int ret;

	if (!getenv(EXEC_CHILD_ENV))
		return;
	ret = prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0);
	_exit(ret < 0 ? 100 : ret);
}

FIXTURE(prctl) {
	struct ksm_saved saved;
};

FIXTURE_SETUP(prctl)
{
	const char *skip = ksm_skip_reason(true);

	if (skip)
		SKIP(return, "%s", skip);
	ksm_save(&self->saved);
	ASSERT_EQ(0, ksm_prepare(1000, 10));
}

FIXTURE_TEARDOWN(prctl)
{
	ksm_restore(&self->saved);
}

TEST_F(prctl, set_and_get)
{
	EXPECT_EQ(0, prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0));
	ASSERT_EQ(0, prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0))
		TH_LOG("PR_SET_MEMORY_MERGE: %s", strerror(errno));
	EXPECT_EQ(1, prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0));
	EXPECT_EQ(0, prctl(PR_SET_MEMORY_MERGE, 0, 0, 0, 0));
	EXPECT_EQ(0, prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0));

	/* Unused arguments must be 0. */
	EXPECT_EQ(-1, prctl(PR_SET_MEMORY_MERGE, 1, 1, 0, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, prctl(PR_GET_MEMORY_MERGE, 1, 0, 0, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0));
}

/* A private anonymous area of identical pages, not madvised. */
static char *map_plain(uint64_t tag)
{
	char *p = map_anon(NPAGES, false);
	size_t i;

	for (i = 0; p && i < NPAGES; i++)
		fill_page(p + i * page_size, tag);
	return p;
}

TEST_F_TIMEOUT(prctl, merges_without_madvise, KSM_TEST_TIMEOUT)
{
	struct own_range before = { pagemap_open(0), NULL, 0, NPAGES };
	struct own_range after = { before.pagemap_fd, NULL, 0, NPAGES };
	unsigned long pfns[NPAGES];
	size_t i;

	ASSERT_LE(0, before.pagemap_fd);
	before.p = map_plain(0xbef0);
	ASSERT_NE(NULL, before.p);
	EXPECT_EQ(0, vma_flag(0, before.p, "mg"));

	ASSERT_EQ(0, prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0));
	after.p = map_plain(0xaf7e);
	ASSERT_NE(NULL, after.p);
	EXPECT_EQ(1, vma_flag(0, before.p, "mg")) TH_LOG("existing area");
	EXPECT_EQ(1, vma_flag(0, after.p, "mg")) TH_LOG("new area");

	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(own_one_frame, &before, KSM_WAIT_SECS))
		TH_LOG("the area mapped before the prctl was not merged");
	ASSERT_EQ(0, ksm_wait_for(own_one_frame, &after, KSM_WAIT_SECS))
		TH_LOG("the area mapped after the prctl was not merged");

	/* Off again: everything unmerged, nothing mergeable. */
	ASSERT_EQ(0, prctl(PR_SET_MEMORY_MERGE, 0, 0, 0, 0));
	EXPECT_EQ(0, vma_flag(0, before.p, "mg"));
	EXPECT_EQ(0, vma_flag(0, after.p, "mg"));
	for (i = 0; i < NPAGES; i++)
		pfns[i] = pagemap_pfn(before.pagemap_fd, before.p + i * page_size);
	EXPECT_TRUE(pfns_all_distinct(pfns, NPAGES));
	for (i = 0; i < NPAGES; i++) {
		EXPECT_TRUE(page_has(before.p + i * page_size, 0xbef0));
		EXPECT_TRUE(page_has(after.p + i * page_size, 0xaf7e));
	}
	close(before.pagemap_fd);
}

TEST_F_TIMEOUT(prctl, inherited_by_fork, KSM_TEST_TIMEOUT)
{
	int status;
	pid_t pid;

	ASSERT_EQ(0, prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0));
	ASSERT_EQ(0, ksm_set("run", 1));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct own_range r = { pagemap_open(0), NULL, 0, NPAGES };

		if (prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0) != 1)
			_exit(1);
		r.p = map_plain(0xf0f0);
		if (!r.p || r.pagemap_fd < 0)
			_exit(2);
		if (vma_flag(0, r.p, "mg") != 1)
			_exit(3);
		_exit(ksm_wait_for(own_one_frame, &r, KSM_WAIT_SECS) ? 4 : 0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status))
		TH_LOG("child: 1 not inherited, 2 no memory, 3 not mergeable, 4 not merged");
}

TEST_F(prctl, inherited_by_exec)
{
	int status;
	pid_t pid;

	ASSERT_EQ(0, prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		setenv(EXEC_CHILD_ENV, "1", 1);
		execl("/proc/self/exe", "ksm_prctl", NULL);
		_exit(101);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(1, WEXITSTATUS(status))
		TH_LOG("after exec: 0 not inherited, 100 prctl failed, 101 exec failed");
}

TEST_HARNESS_MAIN
