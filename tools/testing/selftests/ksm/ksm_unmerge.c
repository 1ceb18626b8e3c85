// SPDX-License-Identifier: GPL-2.0
/*
 * Unmerging: MADV_UNMERGEABLE (on a whole range or part of it) and run=2
 * give every page its own frame again, with the same contents; run=2 also
 * zeroes pages_shared and pages_sharing, and keeps the areas registered so
 * that run=1 merges them again.  madvise() ranges KSM must refuse or skip.
 * An area write-protected by userfaultfd, or PROT_NONE, unmerges too (as
 * upstream's ksm_functional_tests check, which CI's debug stage leaves
 * out: these run there instead).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/userfaultfd.h>

#include "../kselftest_harness.h"
#include "ksm_common.h"

#define MAX_WORKERS	3

FIXTURE(unmerge) {
	struct ksm_saved saved;
	struct ksm_worker w[MAX_WORKERS];
};

FIXTURE_SETUP(unmerge)
{
	KSM_FIXTURE_BEGIN();
	ASSERT_EQ(0, ksm_prepare(1000, 10));
}

FIXTURE_TEARDOWN(unmerge)
{
	KSM_FIXTURE_END();
}

/* Start two workers alike, with @n distinct pages, and wait for the merge. */
static int start_merged_pair(struct ksm_worker w[2], size_t n)
{
	struct same_frames all = { w, 2, 0, n };
	uint64_t *tags = make_tags(n, 0x6000);
	int ret;

	if (!tags)
		return -ENOMEM;
	ret = worker_start(&w[0], tags, n);
	if (!ret)
		ret = worker_start(&w[1], tags, n);
	free(tags);
	if (!ret)
		ret = ksm_set("run", 1);
	if (!ret)
		ret = ksm_wait_for(frames_shared, &all, KSM_WAIT_SECS);
	return ret;
}

/*
 * MADV_UNMERGEABLE on a merged range: the caller's pages are private again
 * at once, same data; the other process stays on the KSM pages; ksmd does
 * not merge them again until MADV_MERGEABLE says so.
 */
TEST_F_TIMEOUT(unmerge, madv_unmergeable, KSM_TEST_TIMEOUT)
{
	const size_t n = 32;
	struct ksm_worker *a = &self->w[0], *b = &self->w[1];
	struct same_frames all = { self->w, 2, 0, n };
	unsigned long ksm_pfn[32], pfns[2 * 32];
	struct ksm_counters c;
	size_t i;

	ASSERT_EQ(0, start_merged_pair(self->w, n))
		TH_LOG("identical pages of two processes were not merged");
	worker_pfns(b, ksm_pfn);
	EXPECT_EQ(1, vma_flag(a->pid, a->addr, "mg"));

	ASSERT_EQ(0, worker_madvise(a, 0, n, MADV_UNMERGEABLE));
	worker_pfns(a, pfns);
	worker_pfns(b, pfns + n);
	/* B is still on the KSM pages, A on private pages of its own. */
	for (i = 0; i < n; i++) {
		EXPECT_EQ(ksm_pfn[i], pfns[n + i]) TH_LOG("page %zu", i);
	}
	EXPECT_TRUE(pfns_all_distinct(pfns, 2 * n));
	EXPECT_EQ(0, worker_check(a)) TH_LOG("unmerge changed the data");
	EXPECT_EQ(0, worker_check(b));
	EXPECT_EQ(0, vma_flag(a->pid, a->addr, "mg"));

	/* ksmd leaves A alone now. */
	ASSERT_EQ(0, ksm_wait_scans(KSM_SETTLE_SCANS, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_stop_and_read(&c));
	worker_pfns(a, pfns);
	EXPECT_TRUE(pfns_all_distinct(pfns, 2 * n));
	EXPECT_EQ(0, c.sharing);

	/* And merges it again once it is mergeable again. */
	ASSERT_EQ(0, worker_madvise(a, 0, n, MADV_MERGEABLE));
	EXPECT_EQ(1, vma_flag(a->pid, a->addr, "mg"));
	ASSERT_EQ(0, ksm_set("run", 1));
	EXPECT_EQ(0, ksm_wait_for(frames_shared, &all, KSM_WAIT_SECS))
		TH_LOG("MADV_MERGEABLE again: pages were not merged again");
	EXPECT_EQ(0, worker_check(a));
	EXPECT_EQ(0, worker_check(b));
}

/* MADV_UNMERGEABLE on the middle of a merged range touches only that. */
TEST_F_TIMEOUT(unmerge, madv_unmergeable_part, KSM_TEST_TIMEOUT)
{
	const size_t n = 32, first = 8, nr = 16;
	struct ksm_worker *a = &self->w[0], *b = &self->w[1];
	unsigned long ksm_pfn[32], pfn;
	size_t i;

	ASSERT_EQ(0, start_merged_pair(self->w, n))
		TH_LOG("identical pages of two processes were not merged");
	ASSERT_EQ(0, ksm_set("run", 0));
	worker_pfns(b, ksm_pfn);

	ASSERT_EQ(0, worker_madvise(a, first, nr, MADV_UNMERGEABLE));
	for (i = 0; i < n; i++) {
		pfn = worker_pfn(a, i);
		EXPECT_NE(0, pfn);
		if (i >= first && i < first + nr) {
			EXPECT_NE(ksm_pfn[i], pfn) TH_LOG("page %zu still merged", i);
		} else {
			EXPECT_EQ(ksm_pfn[i], pfn) TH_LOG("page %zu unmerged", i);
		}
		EXPECT_EQ(ksm_pfn[i], worker_pfn(b, i));
	}
	EXPECT_EQ(0, worker_check(a));
	EXPECT_EQ(0, worker_check(b));
	/* The VMA was split in three: mergeable, not, mergeable. */
	EXPECT_EQ(1, vma_flag(a->pid, a->addr, "mg"));
	EXPECT_EQ(0, vma_flag(a->pid, a->addr + first * page_size, "mg"));
	EXPECT_EQ(1, vma_flag(a->pid, a->addr + (first + nr) * page_size, "mg"));
}

/*
 * run=2 unmerges every process at once and zeroes the counters, but keeps
 * the mergeable areas: run=1 merges them again without a new madvise().
 */
TEST_F_TIMEOUT(unmerge, run_2_unmerges_everything, KSM_TEST_TIMEOUT)
{
	const size_t n = 32, nsame = 16;
	struct ksm_worker *a = &self->w[0], *b = &self->w[1], *s = &self->w[2];
	struct same_frames pair = { self->w, 2, 0, n };
	unsigned long pfns[2 * 32 + 16];
	uint64_t same[16];
	size_t i;

	for (i = 0; i < nsame; i++)
		same[i] = 0x7777;
	ASSERT_EQ(0, worker_start(s, same, nsame));
	ASSERT_EQ(0, start_merged_pair(self->w, n))
		TH_LOG("identical pages of two processes were not merged");
	ASSERT_EQ(0, ksm_wait_for(all_one_frame, s, KSM_WAIT_SECS))
		TH_LOG("identical pages of one process were not merged");
	EXPECT_NE(0, ksm_get("pages_shared"));
	EXPECT_NE(0, ksm_get("pages_sharing"));

	ASSERT_EQ(0, ksm_set("run", 2));
	EXPECT_EQ(2, ksm_get("run"));
	EXPECT_EQ(0, ksm_get("pages_shared"));
	EXPECT_EQ(0, ksm_get("pages_sharing"));
	worker_pfns(a, pfns);
	worker_pfns(b, pfns + n);
	worker_pfns(s, pfns + 2 * n);
	EXPECT_TRUE(pfns_all_distinct(pfns, 2 * n + nsame))
		TH_LOG("run=2 left pages merged");
	EXPECT_EQ(0, worker_check(a)) TH_LOG("run=2 changed the data");
	EXPECT_EQ(0, worker_check(b));
	EXPECT_EQ(0, worker_check(s));
	/* Still registered. */
	EXPECT_EQ(1, vma_flag(a->pid, a->addr, "mg"));

	ASSERT_EQ(0, ksm_set("run", 1));
	EXPECT_EQ(0, ksm_wait_for(frames_shared, &pair, KSM_WAIT_SECS))
		TH_LOG("run=1 after run=2: pages were not merged again");
	EXPECT_EQ(0, ksm_wait_for(all_one_frame, s, KSM_WAIT_SECS))
		TH_LOG("run=1 after run=2: pages were not merged again");
}

/*
 * madvise() on ranges: an unaligned start is refused with EINVAL; a range
 * with a hole reports ENOMEM but still marks the mapped parts; an empty
 * range and UNMERGEABLE on never-mergeable memory are harmless no-ops.
 */
TEST_F(unmerge, madvise_ranges)
{
	const size_t n = 4;
	char *p;

	p = map_anon(n, false);
	ASSERT_NE(NULL, p);
	memset(p, 0x11, n * page_size);

	EXPECT_EQ(-1, madvise(p + 1, page_size, MADV_MERGEABLE));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, madvise(p + 1, page_size, MADV_UNMERGEABLE));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, vma_flag(0, p, "mg"));

	EXPECT_EQ(0, madvise(p, 0, MADV_MERGEABLE));
	EXPECT_EQ(0, madvise(p, n * page_size, MADV_UNMERGEABLE));
	EXPECT_EQ(0, vma_flag(0, p, "mg"));

	ASSERT_EQ(0, munmap(p + 2 * page_size, page_size));
	EXPECT_EQ(-1, madvise(p, n * page_size, MADV_MERGEABLE));
	EXPECT_EQ(ENOMEM, errno);
	EXPECT_EQ(1, vma_flag(0, p, "mg"));
	EXPECT_EQ(1, vma_flag(0, p + 3 * page_size, "mg"));

	EXPECT_EQ(-1, madvise(p, n * page_size, MADV_UNMERGEABLE));
	EXPECT_EQ(ENOMEM, errno);
	EXPECT_EQ(0, vma_flag(0, p, "mg"));
	EXPECT_EQ(0, vma_flag(0, p + 3 * page_size, "mg"));
	munmap(p, n * page_size);
}

/*
 * KSM only merges private anonymous memory: MADV_MERGEABLE on a shared
 * mapping succeeds but does nothing, and its identical pages stay apart
 * while a private mergeable area beside it merges.
 */
TEST_F_TIMEOUT(unmerge, shared_memory_never_merged, KSM_TEST_TIMEOUT)
{
	const size_t n = 16;
	struct ksm_worker *w = &self->w[0];
	unsigned long pfns[16];
	uint64_t tags[16];
	int fd;
	size_t i;
	char *p;

	p = map_anon(n, true);
	ASSERT_NE(NULL, p);
	for (i = 0; i < n; i++)
		fill_page(p + i * page_size, 0x5555);
	EXPECT_EQ(0, madvise(p, n * page_size, MADV_MERGEABLE));
	EXPECT_EQ(0, vma_flag(0, p, "mg"));

	/* Private identical pages of a worker, so that ksmd has work. */
	for (i = 0; i < n; i++)
		tags[i] = 0x5555;
	ASSERT_EQ(0, worker_start(w, tags, n));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(all_one_frame, w, KSM_WAIT_SECS))
		TH_LOG("private identical pages were not merged");
	ASSERT_EQ(0, ksm_wait_scans(KSM_SETTLE_SCANS, KSM_WAIT_SECS));

	fd = pagemap_open(0);
	ASSERT_LE(0, fd);
	for (i = 0; i < n; i++)
		pfns[i] = pagemap_pfn(fd, p + i * page_size);
	close(fd);
	EXPECT_TRUE(pfns_all_distinct(pfns, n)) TH_LOG("shared pages merged");
	EXPECT_NE(worker_pfn(w, 0), pfns[0]);
	for (i = 0; i < n; i++) {
		EXPECT_TRUE(page_has(p + i * page_size, 0x5555));
	}
	munmap(p, n * page_size);
}

#define OWN_PAGES	32

/*
 * Merge OWN_PAGES pages of this process, all of one content, into one KSM
 * page: the area, or MAP_FAILED.  *@fd is a pagemap of ours (or -1).
 */
static char *own_merged(struct __test_metadata *_metadata, int *fd)
{
	struct own_range r;
	char *p = map_same(OWN_PAGES, 0x0f1e);

	*fd = pagemap_open(0);
	if (!p || *fd < 0)
		return MAP_FAILED;
	r = (struct own_range){ *fd, p, 0, OWN_PAGES };
	if (ksm_set("run", 1) ||
	    ksm_wait_for(own_one_frame, &r, KSM_WAIT_SECS) ||
	    ksm_set("run", 0)) {
		TH_LOG("pages of one content were not merged");
		return MAP_FAILED;
	}
	return p;
}

/* Every page of @p has a frame of its own and still holds its content. */
static void expect_unmerged(struct __test_metadata *_metadata, int fd,
			    char *p)
{
	unsigned long pfns[OWN_PAGES];
	size_t i;

	for (i = 0; i < OWN_PAGES; i++) {
		pfns[i] = pagemap_pfn(fd, p + i * page_size);
		EXPECT_NE(0, pfns[i]) TH_LOG("page %zu not present", i);
		EXPECT_TRUE(page_has(p + i * page_size, 0x0f1e))
			TH_LOG("page %zu changed", i);
	}
	EXPECT_TRUE(pfns_all_distinct(pfns, OWN_PAGES));
}

/*
 * MADV_UNMERGEABLE of an area that userfaultfd write-protects: the
 * unsharing is no write, so no fault goes to the (absent) handler, the
 * pages get frames of their own, and they stay write-protected.
 */
TEST_F_TIMEOUT(unmerge, uffd_wp_area, KSM_TEST_TIMEOUT)
{
	struct uffdio_api api = { .api = UFFD_API,
				  .features = UFFD_FEATURE_PAGEFAULT_FLAG_WP };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_WP };
	struct uffdio_writeprotect wp = { .mode = UFFDIO_WRITEPROTECT_MODE_WP };
	int fd, uffd;
	char *p;
	size_t i;

	uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		SKIP(return, "no userfaultfd: %s", strerror(errno));
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_API, &api));
	if (!(api.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP)) {
		close(uffd);
		SKIP(return, "no userfaultfd write-protection");
	}
	p = own_merged(_metadata, &fd);
	ASSERT_NE(MAP_FAILED, p);
	reg.range.start = (unsigned long)p;
	reg.range.len = OWN_PAGES * page_size;
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_REGISTER, &reg));
	wp.range = reg.range;
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_WRITEPROTECT, &wp));

	ASSERT_EQ(0, madvise(p, OWN_PAGES * page_size, MADV_UNMERGEABLE));
	expect_unmerged(_metadata, fd, p);
	for (i = 0; i < OWN_PAGES; i++)
		EXPECT_TRUE(pagemap_entry(fd, p + i * page_size) & PM_UFFD_WP)
			TH_LOG("page %zu lost its write protection", i);
	close(uffd);
	close(fd);
	munmap(p, OWN_PAGES * page_size);
}

/* MADV_UNMERGEABLE of a PROT_NONE area unmerges it all the same. */
TEST_F_TIMEOUT(unmerge, prot_none_area, KSM_TEST_TIMEOUT)
{
	int fd;
	char *p = own_merged(_metadata, &fd);

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, mprotect(p, OWN_PAGES * page_size, PROT_NONE));
	ASSERT_EQ(0, madvise(p, OWN_PAGES * page_size, MADV_UNMERGEABLE));
	ASSERT_EQ(0, mprotect(p, OWN_PAGES * page_size, PROT_READ));
	expect_unmerged(_metadata, fd, p);
	close(fd);
	munmap(p, OWN_PAGES * page_size);
}

TEST_HARNESS_MAIN
