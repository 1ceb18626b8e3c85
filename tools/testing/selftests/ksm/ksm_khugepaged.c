// SPDX-License-Identifier: GPL-2.0
/*
 * khugepaged and KSM pages.  khugepaged collapses a huge-page-aligned range
 * of small pages into a huge page by copying them; a range holding KSM
 * pages would give this process private copies of merged memory, and ksmd
 * would split the huge page again on its next pass.  So khugepaged skips
 * such ranges ("mm/khugepaged: leave KSM pages to KSM"); MADV_COLLAPSE,
 * an explicit request, still collapses them.
 *
 * Each test maps two huge-page-aligned ranges of small pages: the KSM range,
 * of which every STRIDE-th page is merged with a twin mapped elsewhere
 * (pfns equal, and the smaps KSM line counts them), and a control range of
 * unique pages that khugepaged must collapse, which proves khugepaged really
 * scanned this process.  Upstream 6.12 collapses the KSM range too (its
 * KSM pages stay under max_ptes_shared), so khugepaged_skips_ksm_range
 * fails there.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "../kselftest_harness.h"
#include "ksm_common.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE	25
#endif

#define THP_DIR		"/sys/kernel/mm/transparent_hugepage/"
#define KHP_DIR		THP_DIR "khugepaged/"
#define STRIDE		16	/* one page in STRIDE has a twin */
#define KSM_TAG		0x6b5000ULL
#define CTL_TAG		0xc71000ULL

/* khugepaged's knobs that the tests change, restored afterwards. */
static const char * const khp_knobs[] = {
	KHP_DIR "pages_to_scan",
	KHP_DIR "scan_sleep_millisecs",
	KHP_DIR "alloc_sleep_millisecs",
};

#define NR_KHP_KNOBS	ARRAY_SIZE(khp_knobs)

FIXTURE(khugepaged) {
	struct ksm_saved saved;
	unsigned long khp_saved[NR_KHP_KNOBS];
	bool khp_have[NR_KHP_KNOBS];
	char thp_enabled[64];	/* the word in [brackets] of "enabled" */
	char *raw;		/* holds both aligned ranges */
	size_t raw_len;
	char *ksm;		/* the KSM range: one huge page's worth */
	char *ctl;		/* the control range, right after it */
	char *twins;
	size_t hpage, nsub, ntwins;
	int pagemap_fd;
};

/* Every twin shares its frame with its page of the KSM range. */
struct twin_pairs {
	FIXTURE_DATA(khugepaged) *self;
};

static bool pairs_merged(void *arg)
{
	FIXTURE_DATA(khugepaged) *self = ((struct twin_pairs *)arg)->self;
	unsigned long a, b;
	size_t i;

	for (i = 0; i < self->ntwins; i++) {
		a = pagemap_pfn(self->pagemap_fd,
				self->ksm + i * STRIDE * page_size);
		b = pagemap_pfn(self->pagemap_fd, self->twins + i * page_size);
		if (!a || a != b)
			return false;
	}
	return true;
}

/* @p is one huge page: THP flag and contiguous frames. */
static bool range_huge(FIXTURE_DATA(khugepaged) *self, char *p)
{
	unsigned long first = pagemap_pfn(self->pagemap_fd, p);
	size_t i;

	if (!pfn_is_thp(first) || first % self->nsub)
		return false;
	for (i = 1; i < self->nsub; i++)
		if (pagemap_pfn(self->pagemap_fd, p + i * page_size) != first + i)
			return false;
	return true;
}

static bool ctl_huge(void *arg)
{
	FIXTURE_DATA(khugepaged) *self = arg;

	return range_huge(self, self->ctl);
}

/* khugepaged has finished the full scan numbered *@arg. */
static bool khugepaged_scanned(void *arg)
{
	unsigned long scans;

	return !ksm_read(KHP_DIR "full_scans", &scans) &&
	       scans >= *(unsigned long *)arg;
}

static bool contents_ok(FIXTURE_DATA(khugepaged) *self)
{
	size_t i;

	for (i = 0; i < self->nsub; i++) {
		if (!page_has(self->ksm + i * page_size, KSM_TAG + i) ||
		    !page_has(self->ctl + i * page_size, CTL_TAG + i))
			return false;
	}
	for (i = 0; i < self->ntwins; i++)
		if (!page_has(self->twins + i * page_size,
			      KSM_TAG + i * STRIDE))
			return false;
	return true;
}

/* Read every page, so that khugepaged finds them young (referenced). */
static void touch_all(FIXTURE_DATA(khugepaged) *self)
{
	volatile char sink;
	size_t i;

	for (i = 0; i < 2 * self->nsub; i++)
		sink = self->ksm[i * page_size];
	(void)sink;
}

FIXTURE_SETUP(khugepaged)
{
	const char *skip = ksm_skip_reason(true);
	struct twin_pairs tp = { self };
	char *open_br, *close_br;
	uintptr_t a;
	size_t i;

	self->raw = NULL;
	self->twins = NULL;
	self->pagemap_fd = -1;
	self->thp_enabled[0] = '\0';
	memset(self->khp_have, 0, sizeof(self->khp_have));
	if (skip)
		SKIP(return, "%s", skip);
	self->hpage = thp_pmd_size();
	if (!self->hpage || access(KHP_DIR "full_scans", R_OK))
		SKIP(return, "no transparent huge pages or no khugepaged");
	self->nsub = self->hpage / page_size;
	self->ntwins = self->nsub / STRIDE;

	ksm_save(&self->saved);
	for (i = 0; i < NR_KHP_KNOBS; i++)
		self->khp_have[i] = !ksm_read(khp_knobs[i], &self->khp_saved[i]);
	ASSERT_LT(0, ksm_read_str(THP_DIR "enabled", self->thp_enabled,
				  sizeof(self->thp_enabled)));
	open_br = strchr(self->thp_enabled, '[');
	close_br = open_br ? strchr(open_br, ']') : NULL;
	ASSERT_NE(NULL, close_br);
	*close_br = '\0';
	memmove(self->thp_enabled, open_br + 1, strlen(open_br + 1) + 1);
	/* khugepaged runs for "madvise" and "always"; faults stay small
	 * below since the ranges are MADV_NOHUGEPAGE until filled.
	 */
	ASSERT_EQ(0, ksm_write_str(THP_DIR "enabled", "madvise"));
	/* Slow khugepaged until the ranges are ready. */
	ASSERT_EQ(0, ksm_set(KHP_DIR "scan_sleep_millisecs", 60000));

	ASSERT_EQ(0, ksm_prepare(1000, 10));
	self->pagemap_fd = pagemap_open(0);
	ASSERT_LE(0, self->pagemap_fd);

	self->raw_len = 3 * self->hpage;
	self->raw = mmap(NULL, self->raw_len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->raw);
	ASSERT_EQ(0, madvise(self->raw, self->raw_len, MADV_NOHUGEPAGE));
	a = ((uintptr_t)self->raw + self->hpage - 1) & ~(self->hpage - 1);
	self->ksm = (char *)a;
	self->ctl = self->ksm + self->hpage;
	for (i = 0; i < self->nsub; i++) {
		fill_page(self->ksm + i * page_size, KSM_TAG + i);
		fill_page(self->ctl + i * page_size, CTL_TAG + i);
	}
	self->twins = map_anon(self->ntwins, false);
	ASSERT_NE(NULL, self->twins);
	/*
	 * Flags of their own, so that the twins never join the KSM range's
	 * VMA when mmap puts them right next to it: smaps counts per VMA.
	 */
	ASSERT_EQ(0, madvise(self->twins, self->ntwins * page_size,
			     MADV_DONTFORK));
	for (i = 0; i < self->ntwins; i++)
		fill_page(self->twins + i * page_size, KSM_TAG + i * STRIDE);

	ASSERT_EQ(0, madvise(self->ksm, self->hpage, MADV_MERGEABLE));
	ASSERT_EQ(0, madvise(self->twins, self->ntwins * page_size,
			     MADV_MERGEABLE));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(pairs_merged, &tp, KSM_WAIT_SECS))
		TH_LOG("the twins did not merge");
	/* ksmd stops: what follows is between khugepaged and the pages. */
	ASSERT_EQ(0, ksm_set("run", 0));
	ASSERT_EQ((long)(self->ntwins * page_size / 1024),
		  smaps_kb(0, self->ksm, "KSM"));
	ASSERT_FALSE(range_huge(self, self->ksm));
	ASSERT_FALSE(range_huge(self, self->ctl));
}

FIXTURE_TEARDOWN(khugepaged)
{
	size_t i;

	for (i = 0; i < NR_KHP_KNOBS; i++)
		if (self->khp_have[i])
			ksm_set(khp_knobs[i], self->khp_saved[i]);
	if (self->thp_enabled[0])
		ksm_write_str(THP_DIR "enabled", self->thp_enabled);
	ksm_restore(&self->saved);
	if (self->raw && self->raw != MAP_FAILED)
		munmap(self->raw, self->raw_len);
	if (self->twins)
		munmap(self->twins, self->ntwins * page_size);
	if (self->pagemap_fd >= 0)
		close(self->pagemap_fd);
}

/*
 * khugepaged collapses the control range but leaves the KSM range as it
 * is: still small pages, every twin still sharing its frame.
 */
TEST_F_TIMEOUT(khugepaged, khugepaged_skips_ksm_range, KSM_TEST_TIMEOUT)
{
	struct twin_pairs tp = { self };
	unsigned long scans;

	touch_all(self);
	ASSERT_EQ(0, madvise(self->ksm, 2 * self->hpage, MADV_HUGEPAGE));
	ASSERT_EQ(0, ksm_set(KHP_DIR "pages_to_scan", 8 * self->nsub));
	ASSERT_EQ(0, ksm_set(KHP_DIR "alloc_sleep_millisecs", 10));
	ASSERT_EQ(0, ksm_set(KHP_DIR "scan_sleep_millisecs", 10));
	ASSERT_EQ(0, poll_until(ctl_huge, self, KSM_WAIT_SECS))
		TH_LOG("khugepaged did not collapse the control range");
	/* Two more full scans: khugepaged has looked at the KSM range. */
	ASSERT_EQ(0, ksm_read(KHP_DIR "full_scans", &scans));
	scans += 2;
	ASSERT_EQ(0, poll_until(khugepaged_scanned, &scans, KSM_WAIT_SECS));
	EXPECT_FALSE(range_huge(self, self->ksm))
		TH_LOG("khugepaged collapsed a range holding KSM pages");
	EXPECT_TRUE(pairs_merged(&tp));
	EXPECT_EQ((long)(self->ntwins * page_size / 1024),
		  smaps_kb(0, self->ksm, "KSM"));
	EXPECT_TRUE(contents_ok(self));
}

/* MADV_COLLAPSE is an explicit request: it collapses the KSM range. */
TEST_F_TIMEOUT(khugepaged, madvise_collapse_collapses, KSM_TEST_TIMEOUT)
{
	int tries, ret;

	ASSERT_EQ(0, madvise(self->ksm, self->hpage, MADV_HUGEPAGE));
	/* EAGAIN: a page was briefly busy; try again. */
	for (tries = 0; tries < 20; tries++) {
		ret = madvise(self->ksm, self->hpage, MADV_COLLAPSE);
		if (!ret || errno != EAGAIN)
			break;
		usleep(100000);
	}
	ASSERT_EQ(0, ret) TH_LOG("MADV_COLLAPSE: %s", strerror(errno));
	EXPECT_TRUE(range_huge(self, self->ksm));
	EXPECT_EQ(0, smaps_kb(0, self->ksm, "KSM"));
	/* The twins keep the KSM pages, now mapped once each. */
	EXPECT_EQ((long)(self->ntwins * page_size / 1024),
		  smaps_kb(0, self->twins, "KSM"));
	EXPECT_TRUE(contents_ok(self));
}

TEST_HARNESS_MAIN
