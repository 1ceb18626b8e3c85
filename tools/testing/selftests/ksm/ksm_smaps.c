// SPDX-License-Identifier: GPL-2.0
/*
 * What /proc shows of KSM pages: the "KSM:" line of /proc/PID/smaps
 * counts the merged memory of the VMA, the "mg" VmFlag marks mergeable
 * VMAs, and /proc/kpageflags sets KPF_KSM (bit 21) on KSM pages.
 *
 * Not checked: that KPF_KSM is clear on other pages.  6.12's
 * fs/proc/page.c tests "mapping & PAGE_MAPPING_KSM", and PAGE_MAPPING_KSM
 * includes PAGE_MAPPING_ANON, so every anonymous page reads as KSM there,
 * whichever KSM runs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "../kselftest_harness.h"
#include "ksm_common.h"

#define NPAGES	16
#define NSAME	10	/* pages 0..NSAME-1 alike in both workers */

FIXTURE(smaps) {
	struct ksm_saved saved;
	struct ksm_worker w[2];
};

FIXTURE_SETUP(smaps)
{
	KSM_FIXTURE_BEGIN();
	ASSERT_EQ(0, ksm_prepare(1000, 10));
}

FIXTURE_TEARDOWN(smaps)
{
	KSM_FIXTURE_END();
}

TEST_F_TIMEOUT(smaps, ksm_line_flag_and_kpageflags, KSM_TEST_TIMEOUT)
{
	struct same_frames sf = { self->w, 2, 0, NSAME };
	const long kb = page_size / 1024;
	uint64_t *t0 = make_tags(NPAGES, 0x3e0000);
	uint64_t *t1 = make_tags(NPAGES, 0x3f0000);
	size_t i;
	int j;

	ASSERT_NE(NULL, t0);
	ASSERT_NE(NULL, t1);
	memcpy(t1, t0, NSAME * sizeof(*t0));
	ASSERT_EQ(0, worker_start(&self->w[0], t0, NPAGES));
	ASSERT_EQ(0, worker_start(&self->w[1], t1, NPAGES));
	free(t0);
	free(t1);

	/* Mergeable, nothing merged yet. */
	for (j = 0; j < 2; j++) {
		EXPECT_EQ(1, vma_flag(self->w[j].pid, self->w[j].addr, "mg"));
		EXPECT_EQ(0, smaps_kb(self->w[j].pid, self->w[j].addr, "KSM"));
	}

	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(frames_shared, &sf, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_wait_scans(KSM_SETTLE_SCANS, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_set("run", 0));

	for (j = 0; j < 2; j++) {
		EXPECT_EQ(NSAME * kb, smaps_kb(self->w[j].pid, self->w[j].addr,
					       "KSM"))
			TH_LOG("worker %d", j);
		for (i = 0; i < NSAME; i++) {
			EXPECT_TRUE(kpageflags(worker_pfn(&self->w[j], i)) &
				    (1ULL << KPF_KSM))
				TH_LOG("worker %d page %zu: no KPF_KSM", j, i);
		}
	}

	/* Unmergeable: flag gone, pages private again, KSM: 0 kB. */
	ASSERT_EQ(0, worker_madvise(&self->w[0], 0, NPAGES, MADV_UNMERGEABLE));
	EXPECT_EQ(0, vma_flag(self->w[0].pid, self->w[0].addr, "mg"));
	EXPECT_EQ(0, smaps_kb(self->w[0].pid, self->w[0].addr, "KSM"));
	for (i = 0; i < NSAME; i++) {
		EXPECT_NE(worker_pfn(&self->w[0], i), worker_pfn(&self->w[1], i));
	}
	/* The other process still maps the (now unshared) KSM pages. */
	EXPECT_EQ(1, vma_flag(self->w[1].pid, self->w[1].addr, "mg"));
	EXPECT_EQ(NSAME * kb, smaps_kb(self->w[1].pid, self->w[1].addr, "KSM"));
	EXPECT_EQ(0, worker_check(&self->w[0]));
	EXPECT_EQ(0, worker_check(&self->w[1]));

	/* run=2: nothing KSM anywhere. */
	ASSERT_EQ(0, ksm_set("run", 2));
	EXPECT_EQ(0, smaps_kb(self->w[1].pid, self->w[1].addr, "KSM"));
	EXPECT_EQ(1, vma_flag(self->w[1].pid, self->w[1].addr, "mg"));
	EXPECT_EQ(0, worker_check(&self->w[1]));
}

TEST_HARNESS_MAIN
