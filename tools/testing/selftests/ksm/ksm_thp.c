// SPDX-License-Identifier: GPL-2.0
/*
 * Transparent huge pages: KSM merges subpages of a THP with identical
 * pages elsewhere, splitting the THP to do so, but leaves a THP that has
 * nothing to merge whole, however often it is scanned.  THP-ness is read
 * from /proc/kpageflags (KPF_THP) and the AnonHugePages line of smaps.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "../kselftest_harness.h"
#include "ksm_common.h"

#define NMATCH	4	/* subpages of the THP with a twin elsewhere */

FIXTURE(thp) {
	struct ksm_saved saved;
	char *raw;		/* the mapping that holds the THP */
	size_t raw_len;
	char *thp;		/* its huge-page-aligned part */
	size_t hpage;		/* huge page size */
	size_t nsub;		/* subpages per huge page */
	char *twins;		/* small pages alike NMATCH subpages */
	int pagemap_fd;
};

FIXTURE_SETUP(thp)
{
	const char *skip = ksm_skip_reason(true);
	uintptr_t a;
	size_t i;

	self->raw = NULL;
	self->twins = NULL;
	self->pagemap_fd = -1;
	if (skip)
		SKIP(return, "%s", skip);
	self->hpage = thp_pmd_size();
	if (!self->hpage)
		SKIP(return, "no transparent huge pages (CONFIG_TRANSPARENT_HUGEPAGE)");
	self->nsub = self->hpage / page_size;
	ksm_save(&self->saved);
	ASSERT_EQ(0, ksm_prepare(1000, 10));
	self->pagemap_fd = pagemap_open(0);
	ASSERT_LE(0, self->pagemap_fd);

	self->raw_len = 2 * self->hpage;
	self->raw = mmap(NULL, self->raw_len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->raw);
	a = ((uintptr_t)self->raw + self->hpage - 1) & ~(self->hpage - 1);
	self->thp = (char *)a;
	ASSERT_EQ(0, madvise(self->thp, self->hpage, MADV_HUGEPAGE));
	/* The first touch faults in a huge page, if one can be had. */
	for (i = 0; i < self->nsub; i++)
		fill_page(self->thp + i * page_size, 0x7e9000 + i);
	if (!pfn_is_thp(pagemap_pfn(self->pagemap_fd, self->thp)))
		SKIP(return, "could not get a huge page");
}

FIXTURE_TEARDOWN(thp)
{
	ksm_restore(&self->saved);
	if (self->raw && self->raw != MAP_FAILED)
		munmap(self->raw, self->raw_len);
	if (self->twins)
		munmap(self->twins, NMATCH * page_size);
	if (self->pagemap_fd >= 0)
		close(self->pagemap_fd);
}

/* The whole range is one huge page: THP flag, contiguous frames. */
static bool still_huge(FIXTURE_DATA(thp) *self)
{
	unsigned long first = pagemap_pfn(self->pagemap_fd, self->thp);
	size_t i;

	if (!pfn_is_thp(first) || first % self->nsub)
		return false;
	for (i = 1; i < self->nsub; i++)
		if (pagemap_pfn(self->pagemap_fd, self->thp + i * page_size) !=
		    first + i)
			return false;
	return true;
}

static bool contents_ok(FIXTURE_DATA(thp) *self)
{
	size_t i;

	for (i = 0; i < self->nsub; i++)
		if (!page_has(self->thp + i * page_size, 0x7e9000 + i))
			return false;
	return true;
}

/* Nothing to merge with: the THP stays whole. */
TEST_F_TIMEOUT(thp, unique_thp_stays_huge, KSM_TEST_TIMEOUT)
{
	ASSERT_EQ(0, madvise(self->thp, self->hpage, MADV_MERGEABLE));
	ASSERT_TRUE(still_huge(self));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_scans(2 * KSM_SETTLE_SCANS, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_set("run", 0));
	EXPECT_TRUE(still_huge(self)) TH_LOG("a THP without a match was split");
	EXPECT_EQ((long)self->hpage / 1024, smaps_kb(0, self->thp, "AnonHugePages"));
	EXPECT_EQ(0, ksm_get("pages_shared"));
	EXPECT_TRUE(contents_ok(self));
}

struct twins {
	FIXTURE_DATA(thp) *self;
	const size_t *sub;	/* subpage of each twin */
};

/* Every twin shares its frame with its subpage. */
static bool twins_merged(void *arg)
{
	struct twins *tw = arg;
	int fd = tw->self->pagemap_fd;
	size_t i;

	for (i = 0; i < NMATCH; i++) {
		unsigned long pfn = pagemap_pfn(fd, tw->self->twins +
						i * page_size);

		if (!pfn || pfn != pagemap_pfn(fd, tw->self->thp +
					       tw->sub[i] * page_size))
			return false;
	}
	return true;
}

/* NMATCH subpages have twins: those merge, the rest keep their frames. */
TEST_F_TIMEOUT(thp, matching_subpages_merge, KSM_TEST_TIMEOUT)
{
	unsigned long before[512], pfn;
	size_t i, sub[NMATCH];
	struct twins tw;
	bool merged;

	ASSERT_GE(ARRAY_SIZE(before), self->nsub);
	for (i = 0; i < self->nsub; i++)
		before[i] = pagemap_pfn(self->pagemap_fd, self->thp + i * page_size);
	/* Twins of subpages spread over the THP. */
	self->twins = map_anon(NMATCH, false);
	ASSERT_NE(NULL, self->twins);
	for (i = 0; i < NMATCH; i++) {
		sub[i] = 1 + i * (self->nsub / NMATCH);
		fill_page(self->twins + i * page_size, 0x7e9000 + sub[i]);
	}
	ASSERT_EQ(0, madvise(self->twins, NMATCH * page_size, MADV_MERGEABLE));
	ASSERT_EQ(0, madvise(self->thp, self->hpage, MADV_MERGEABLE));
	tw.self = self;
	tw.sub = sub;
	ASSERT_EQ(0, ksm_set("run", 1));
	merged = !ksm_wait_for(twins_merged, &tw, KSM_WAIT_SECS);
	ASSERT_EQ(0, ksm_set("run", 0));
	EXPECT_TRUE(merged) TH_LOG("subpages of a THP not merged with their twins");
	EXPECT_FALSE(still_huge(self));
	EXPECT_EQ(NMATCH, ksm_get("pages_shared"));
	EXPECT_EQ(NMATCH, ksm_get("pages_sharing"));
	for (i = 0; i < NMATCH; i++) {
		pfn = pagemap_pfn(self->pagemap_fd, self->thp + sub[i] * page_size);
		EXPECT_FALSE(pfn_is_thp(pfn));
	}
	/* The other subpages: split in place, not copied, not merged. */
	for (i = 0; i < self->nsub; i++) {
		size_t j;
		bool twin = false;

		for (j = 0; j < NMATCH; j++)
			twin |= sub[j] == i;
		if (twin)
			continue;
		pfn = pagemap_pfn(self->pagemap_fd, self->thp + i * page_size);
		EXPECT_EQ(before[i], pfn) TH_LOG("subpage %zu moved", i);
	}
	/*
	 * The twins, and only they, are KSM pages (smaps: 6.12 sets KPF_KSM
	 * on every anonymous page).
	 */
	EXPECT_EQ(NMATCH * (long)page_size / 1024,
		  smaps_kb(0, self->thp, "KSM"));
	EXPECT_TRUE(contents_ok(self));
}

/* Subpage 1 of the THP and the first twin on one frame. */
static bool twin_merged(void *arg)
{
	FIXTURE_DATA(thp) *self = arg;
	unsigned long pfn = pagemap_pfn(self->pagemap_fd, self->twins);

	return pfn && pfn == pagemap_pfn(self->pagemap_fd,
					 self->thp + page_size);
}

/*
 * With merge domains, a THP that fork left shared is not split to merge
 * a subpage: the child would see its huge page split (AnonHugePages) and
 * learn what the parent holds.  Once the child is gone, it is.
 */
TEST_F_TIMEOUT(thp, fork_shared_thp_not_split, KSM_TEST_TIMEOUT)
{
	int hold[2], status;
	char c = 0;
	pid_t pid;

	if (!ksm_knob_exists("merge_domain"))
		SKIP(return, "no %smerge_domain (upstream's KSM)",
		     KSM_SYSFS_DIR);
	ASSERT_EQ(0, ksm_set_merge_domain("process"));
	ASSERT_EQ(0, madvise(self->thp, self->hpage, MADV_MERGEABLE));
	ASSERT_EQ(0, pipe(hold));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(hold[1]);
		_exit(read(hold[0], &c, 1) < 0);
	}
	close(hold[0]);
	/* A twin of subpage 1, the parent's alone (mapped after the fork). */
	self->twins = map_anon(NMATCH, false);
	ASSERT_NE(NULL, self->twins);
	fill_page(self->twins, 0x7e9000 + 1);
	ASSERT_EQ(0, madvise(self->twins, page_size, MADV_MERGEABLE));

	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_scans(2 * KSM_SETTLE_SCANS, KSM_WAIT_SECS));
	EXPECT_TRUE(still_huge(self)) TH_LOG("a THP fork left shared was split");
	EXPECT_FALSE(twin_merged(self));
	close(hold[1]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, status);
	EXPECT_EQ(0, ksm_wait_for(twin_merged, self, KSM_WAIT_SECS))
		TH_LOG("the subpage did not merge once the THP was the parent's");
	EXPECT_TRUE(contents_ok(self));
}

/* Subpages 3 and 5 of the THP on one frame. */
static bool inner_twins_merged(void *arg)
{
	FIXTURE_DATA(thp) *self = arg;
	unsigned long pfn = pagemap_pfn(self->pagemap_fd,
					self->thp + 3 * page_size);

	return pfn && pfn == pagemap_pfn(self->pagemap_fd,
					 self->thp + 5 * page_size);
}

/*
 * Two subpages of one THP alike: ksmd holds a reference to each while it
 * pairs them, so the THP cannot be split then; it is split once one is
 * let go, and they merge next pass.  (They never merged before: the split
 * failed every pass, as it does in any huge page of a guest's RAM with
 * two pages alike; the bench's rmap workload lost its pairs so whenever
 * its area began less than 128 pages before a huge page boundary.)  The
 * THP is PTE-mapped first, as mprotect() of part of it leaves it.
 */
TEST_F_TIMEOUT(thp, twins_within_one_thp, KSM_TEST_TIMEOUT)
{
	size_t i;

	fill_page(self->thp + 5 * page_size, 0x7e9000 + 3);
	ASSERT_EQ(0, mprotect(self->thp + 100 * page_size, page_size,
			      PROT_READ));
	ASSERT_EQ(0, madvise(self->thp, self->hpage, MADV_MERGEABLE));
	ASSERT_EQ(0, ksm_set("run", 1));
	EXPECT_EQ(0, ksm_wait_for(inner_twins_merged, self, KSM_WAIT_SECS))
		TH_LOG("two subpages alike of one THP not merged");
	ASSERT_EQ(0, ksm_set("run", 0));
	EXPECT_EQ(1, ksm_get("pages_shared"));
	EXPECT_EQ(1, ksm_get("pages_sharing"));
	for (i = 0; i < self->nsub; i++) {
		uint64_t tag = 0x7e9000 + (i == 5 ? 3 : i);

		EXPECT_TRUE(page_has(self->thp + i * page_size, tag))
			TH_LOG("subpage %zu", i);
	}
}

static bool pages_shared_reach(void *arg)
{
	return ksm_get("pages_shared") >= *(size_t *)arg;
}

/*
 * KSM pages first: @n contents, each in two small pages of @twins (of
 * NMATCH pages), the contents of the subpages in @sub.
 */
static int make_ksm_pages(char *twins, const size_t *sub, size_t n)
{
	size_t i;

	if (2 * n > NMATCH)
		return -1;
	for (i = 0; i < 2 * n; i++)
		fill_page(twins + i * page_size, 0x7e9000 + sub[i / 2]);
	if (madvise(twins, 2 * n * page_size, MADV_MERGEABLE) ||
	    ksm_set("run", 1) ||
	    ksm_wait_for(pages_shared_reach, &n, KSM_WAIT_SECS))
		return -1;
	return ksm_set("run", 0);
}

struct on_ksm {
	int fd;			/* pagemap */
	char *thp, *twins;
	const size_t *sub;	/* subpages, each alike a KSM page */
	size_t n;
};

/* Every subpage in @sub maps its KSM page (its pair of twins'). */
static bool subpages_on_ksm(void *arg)
{
	struct on_ksm *ok = arg;
	size_t i;

	for (i = 0; i < ok->n; i++) {
		unsigned long k = pagemap_pfn(ok->fd, ok->twins +
					      2 * i * page_size);

		if (!k || k != pagemap_pfn(ok->fd, ok->thp +
					   ok->sub[i] * page_size))
			return false;
	}
	return true;
}

/*
 * Some subpages of a THP alike KSM pages that exist already (the stable
 * tree's path, where matching_subpages_merge takes the unstable tree's):
 * they merge into them, the THP is split so that their frames are freed,
 * and the other subpages stay where they are, each a small page now.
 */
TEST_F_TIMEOUT(thp, partly_merged_thp_is_split, KSM_TEST_TIMEOUT)
{
	size_t sub[2] = { 3, 300 % self->nsub }, i;
	unsigned long before[512], pfn;
	struct on_ksm ok;

	ASSERT_GE(ARRAY_SIZE(before), self->nsub);
	self->twins = map_anon(NMATCH, false);
	ASSERT_NE(NULL, self->twins);
	ASSERT_EQ(0, make_ksm_pages(self->twins, sub, 2));
	for (i = 0; i < self->nsub; i++)
		before[i] = pagemap_pfn(self->pagemap_fd,
					self->thp + i * page_size);
	ASSERT_TRUE(still_huge(self));
	ASSERT_EQ(0, madvise(self->thp, self->hpage, MADV_MERGEABLE));
	ok.fd = self->pagemap_fd;
	ok.thp = self->thp;
	ok.twins = self->twins;
	ok.sub = sub;
	ok.n = 2;
	ASSERT_EQ(0, ksm_set("run", 1));
	EXPECT_EQ(0, ksm_wait_for(subpages_on_ksm, &ok, KSM_WAIT_SECS))
		TH_LOG("the subpages did not merge into the KSM pages");
	ASSERT_EQ(0, ksm_set("run", 0));
	EXPECT_EQ(2, ksm_get("pages_shared"));
	/* Each KSM page: two twins and a subpage. */
	EXPECT_EQ(4, ksm_get("pages_sharing"));
	for (i = 0; i < self->nsub; i++) {
		if (i == sub[0] || i == sub[1])
			continue;
		pfn = pagemap_pfn(self->pagemap_fd, self->thp + i * page_size);
		EXPECT_EQ(before[i], pfn) TH_LOG("subpage %zu moved", i);
		if (pfn_is_thp(pfn)) {
			EXPECT_FALSE(true)
				TH_LOG("subpage %zu still in a huge page", i);
			break;
		}
	}
	EXPECT_EQ(2 * (long)page_size / 1024, smaps_kb(0, self->thp, "KSM"));
	EXPECT_TRUE(contents_ok(self));
}

struct span {
	char *start;
	size_t len;
};

/* Every page of the span maps a KSM page (smaps; see KPF_KSM). */
static bool all_on_ksm(void *arg)
{
	struct span *sp = arg;

	return smaps_kb(0, sp->start, "KSM") == (long)sp->len / 1024;
}

/*
 * A THP whose subpages are all alike merges without being split: each
 * subpage is merged into a KSM page, the first of them copies of
 * subpages (a page of a huge page cannot become a KSM page in place), and
 * the huge page is freed whole with its last mapping.  Upstream splits it
 * first, which remaps all 512 subpages only for them to go.
 */
TEST_F_TIMEOUT(thp, alike_thp_merges_unsplit, KSM_TEST_TIMEOUT)
{
	struct span sp = { self->thp, self->hpage };
	unsigned long splits, mps;
	size_t i;

	for (i = 0; i < self->nsub; i++)
		fill_page(self->thp + i * page_size, 0x7e9000);
	ASSERT_TRUE(still_huge(self));
	splits = vmstat_get("thp_split_page");
	if (splits == ULONG_MAX)
		SKIP(return, "no thp_split_page in /proc/vmstat");
	mps = ksm_get("max_page_sharing");
	ASSERT_LT(0, mps);
	ASSERT_EQ(0, madvise(self->thp, self->hpage, MADV_MERGEABLE));
	ASSERT_EQ(0, ksm_set("run", 1));
	EXPECT_EQ(0, ksm_wait_for(all_on_ksm, &sp, KSM_WAIT_SECS))
		TH_LOG("not every subpage merged");
	ASSERT_EQ(0, ksm_set("run", 0));
	EXPECT_EQ(splits, vmstat_get("thp_split_page"))
		TH_LOG("the THP was split to merge its subpages");
	/* max_page_sharing mappings a KSM page at most, all of them used. */
	EXPECT_EQ((self->nsub + mps - 1) / mps, ksm_get("pages_shared"));
	EXPECT_EQ(self->nsub - ksm_get("pages_shared"),
		  ksm_get("pages_sharing"));
	EXPECT_EQ(0, smaps_kb(0, self->thp, "AnonHugePages"));
	/* A write breaks one subpage's sharing, and only its. */
	fill_page(self->thp + 7 * page_size, 0x7e9000 + 7);
	for (i = 0; i < self->nsub; i++)
		EXPECT_TRUE(page_has(self->thp + i * page_size,
				     0x7e9000 + (i == 7 ? 7 : 0)))
			TH_LOG("subpage %zu", i);
}

/* Mlocked in kB, with the per-CPU counts folded in first; -1 if unknown. */
static long mlocked_kb(void)
{
	if (write_file("/proc/sys/vm/stat_refresh", "1"))
		return -1;
	return file_key("/proc/meminfo", "Mlocked");
}

/*
 * The same in an mlocked area: the KSM pages made as copies are mlocked
 * once, so Mlocked comes back to where it was once the area is gone.
 * (They were counted twice, by the rmap and again by the LRU.)
 */
TEST_F_TIMEOUT(thp, alike_mlocked_thp_counts_back, KSM_TEST_TIMEOUT)
{
	struct span sp = { self->thp, self->hpage };
	long before, after;
	size_t i;

	for (i = 0; i < self->nsub; i++)
		fill_page(self->thp + i * page_size, 0x7e9000);
	before = mlocked_kb();
	ASSERT_LE(0, before);
	ASSERT_EQ(0, mlock(self->thp, self->hpage));
	ASSERT_TRUE(still_huge(self));
	ASSERT_EQ(0, madvise(self->thp, self->hpage, MADV_MERGEABLE));
	ASSERT_EQ(0, ksm_set("run", 1));
	EXPECT_EQ(0, ksm_wait_for(all_on_ksm, &sp, KSM_WAIT_SECS))
		TH_LOG("not every subpage merged");
	ASSERT_EQ(0, ksm_set("run", 0));
	EXPECT_TRUE(page_has(self->thp + 5 * page_size, 0x7e9000));
	/* Gone: the KSM pages with their last mapping, the THP with it. */
	ASSERT_EQ(0, munmap(self->raw, self->raw_len));
	self->raw = NULL;
	after = mlocked_kb();
	EXPECT_EQ(before, after)
		TH_LOG("Mlocked %ld kB before, %ld kB after", before, after);
}

/*
 * With merge domains, a page of a THP that a child maps too does not
 * merge, even where the THP as a whole looks like the parent's: the
 * parent keeps pages 0-199 of it, the child 100-299, so only page 0's
 * mapcount says who maps the folio.  Pages 0-99, the parent's alone,
 * merge; 100-199 would show the child, in its pagemap, its pages turning
 * exclusive to it.
 */
TEST_F_TIMEOUT(thp, part_shared_thp_pages_stay, KSM_TEST_TIMEOUT)
{
	struct span mine = { self->thp, 100 * page_size };
	int hold[2], ready[2], status;
	size_t i;
	char c = 0;
	pid_t pid;

	if (!ksm_knob_exists("merge_domain"))
		SKIP(return, "no %smerge_domain (upstream's KSM)",
		     KSM_SYSFS_DIR);
	ASSERT_LE(300, self->nsub);
	ASSERT_EQ(0, ksm_set_merge_domain("process"));
	for (i = 0; i < self->nsub; i++)
		fill_page(self->thp + i * page_size, 0x7e9000);
	ASSERT_TRUE(still_huge(self));
	ASSERT_EQ(0, pipe(hold));
	ASSERT_EQ(0, pipe(ready));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		char *t = self->thp;

		close(hold[1]);
		close(ready[0]);
		if (madvise(t, 100 * page_size, MADV_DONTNEED) ||
		    madvise(t + 300 * page_size, (self->nsub - 300) * page_size,
			    MADV_DONTNEED))
			_exit(1);
		if (write(ready[1], &c, 1) != 1)
			_exit(1);
		_exit(read(hold[0], &c, 1) < 0);
	}
	close(hold[0]);
	close(ready[1]);
	ASSERT_EQ(1, read(ready[0], &c, 1));
	close(ready[0]);
	ASSERT_EQ(0, madvise(self->thp + 200 * page_size,
			     (self->nsub - 200) * page_size, MADV_DONTNEED));
	ASSERT_EQ(0, madvise(self->thp, 200 * page_size, MADV_MERGEABLE));
	ASSERT_EQ(0, ksm_set("run", 1));
	EXPECT_EQ(0, ksm_wait_for(all_on_ksm, &mine, KSM_WAIT_SECS))
		TH_LOG("the parent's own pages did not merge");
	ASSERT_EQ(0, ksm_wait_scans(2 * KSM_SETTLE_SCANS, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_set("run", 0));
	EXPECT_EQ(100 * (long)page_size / 1024,
		  smaps_kb(0, self->thp, "KSM"))
		TH_LOG("pages the child maps too merged");
	close(hold[1]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, status);
	for (i = 0; i < 200; i++)
		EXPECT_TRUE(page_has(self->thp + i * page_size, 0x7e9000))
			TH_LOG("page %zu", i);
}

/*
 * A THP of pages alike, one of them held by a pipe (vmsplice): no page of
 * it can merge (the extra reference counts against the whole folio), so
 * ksmd leaves it huge, PMD and all, however often it is scanned.
 */
TEST_F_TIMEOUT(thp, held_thp_stays_huge, KSM_TEST_TIMEOUT)
{
	struct iovec iov = { self->thp + 3 * page_size, page_size };
	int p[2];
	size_t i;

	for (i = 0; i < self->nsub; i++)
		fill_page(self->thp + i * page_size, 0x7e9000);
	ASSERT_TRUE(still_huge(self));
	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ((ssize_t)page_size, vmsplice(p[1], &iov, 1, 0));
	ASSERT_EQ(0, madvise(self->thp, self->hpage, MADV_MERGEABLE));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_scans(2 * KSM_SETTLE_SCANS, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_set("run", 0));
	EXPECT_EQ((long)self->hpage / 1024,
		  smaps_kb(0, self->thp, "AnonHugePages"))
		TH_LOG("ksmd split the PMD of a THP it cannot merge");
	EXPECT_TRUE(still_huge(self));
	EXPECT_EQ(0, ksm_get("pages_shared"));
	close(p[0]);
	close(p[1]);
	for (i = 0; i < self->nsub; i++)
		EXPECT_TRUE(page_has(self->thp + i * page_size, 0x7e9000))
			TH_LOG("page %zu", i);
}

TEST_HARNESS_MAIN
