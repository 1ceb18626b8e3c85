// SPDX-License-Identifier: GPL-2.0
/*
 * Merging: identical pages in separate processes, and within one process,
 * end up on one page frame; unique pages do not; the counters agree; and a
 * write to a merged page breaks COW for the writer only.
 *
 * Every process maps and fills its own memory after fork, so nothing is
 * shared except what KSM shares.  "Merged" is decided from the frame
 * numbers in /proc/PID/pagemap, then the counters are checked against it
 * with ksmd stopped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "../kselftest_harness.h"
#include "ksm_common.h"

#define MAX_WORKERS	3

FIXTURE(merge) {
	struct ksm_saved saved;
	struct ksm_worker w[MAX_WORKERS];
};

FIXTURE_SETUP(merge)
{
	KSM_FIXTURE_BEGIN();
	ASSERT_EQ(0, ksm_prepare(1000, 10));
}

FIXTURE_TEARDOWN(merge)
{
	KSM_FIXTURE_END();
}

/*
 * Two processes with 32 pages alike and 32 pages of their own: the 32 pairs
 * merge, the rest stay apart.  pages_shared counts the 32 KSM pages,
 * pages_sharing the 32 mappings saved, pages_unshared the 64 unique pages.
 */
TEST_F_TIMEOUT(merge, across_processes, KSM_TEST_TIMEOUT)
{
	const size_t ndup = 32, nuniq = 32, n = ndup + nuniq;
	struct same_frames dups = { self->w, 2, 0, ndup };
	unsigned long pfns[2 * (32 + 32)], pfns_b[32 + 32];
	struct ksm_counters c;
	uint64_t *ta, *tb;
	size_t i;

	ta = make_tags(n, 0xa000);
	tb = make_tags(n, 0xb000);
	ASSERT_TRUE(ta && tb);
	for (i = 0; i < ndup; i++) {
		ta[i] = 0x1000 + i;
		tb[i] = ta[i];
	}
	ASSERT_EQ(0, worker_start(&self->w[0], ta, n));
	ASSERT_EQ(0, worker_start(&self->w[1], tb, n));

	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(frames_shared, &dups, KSM_WAIT_SECS))
		TH_LOG("identical pages of two processes were not merged");
	ASSERT_EQ(0, ksm_wait_scans(KSM_SETTLE_SCANS, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_stop_and_read(&c));

	/* The pairs still share; everything else is on a frame of its own. */
	EXPECT_TRUE(frames_shared(&dups));
	worker_pfns(&self->w[0], pfns);
	worker_pfns(&self->w[1], pfns_b);
	memcpy(pfns + n, pfns_b + ndup, nuniq * sizeof(*pfns));
	EXPECT_TRUE(pfns_all_distinct(pfns, n + nuniq)) {
		for (i = 0; i < n; i++)
			TH_LOG("page %zu: %lx %lx", i, pfns[i], pfns_b[i]);
	}
	EXPECT_EQ(0, worker_check(&self->w[0]));
	EXPECT_EQ(0, worker_check(&self->w[1]));

	EXPECT_EQ(ndup, c.shared);
	EXPECT_EQ(ndup, c.sharing);
	EXPECT_EQ(2 * nuniq, c.unshared);
	EXPECT_EQ(0, c.volatile_);
	free(ta);
	free(tb);
}

/* 64 identical pages of one process: one KSM page, 63 mappings saved. */
TEST_F_TIMEOUT(merge, within_one_process, KSM_TEST_TIMEOUT)
{
	const size_t n = 64;
	struct ksm_counters c;
	uint64_t tags[64];
	size_t i;

	for (i = 0; i < n; i++)
		tags[i] = 0x5a5a;
	ASSERT_EQ(0, worker_start(&self->w[0], tags, n));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(all_one_frame, &self->w[0], KSM_WAIT_SECS))
		TH_LOG("identical pages of one process were not merged");
	ASSERT_EQ(0, ksm_wait_scans(KSM_SETTLE_SCANS, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_stop_and_read(&c));

	EXPECT_TRUE(all_one_frame(&self->w[0]));
	EXPECT_EQ(0, worker_check(&self->w[0]));
	EXPECT_EQ(1, c.shared);
	EXPECT_EQ(n - 1, c.sharing);
	EXPECT_EQ(0, c.unshared);
	EXPECT_EQ(0, c.volatile_);
}

/* Three processes alike: each KSM page is mapped three times. */
TEST_F_TIMEOUT(merge, three_processes, KSM_TEST_TIMEOUT)
{
	const size_t n = 16;
	struct same_frames all = { self->w, 3, 0, n };
	struct ksm_counters c;
	unsigned long pfns[16];
	uint64_t *tags;
	int j;

	tags = make_tags(n, 0x3000);
	ASSERT_NE(NULL, tags);
	for (j = 0; j < 3; j++) {
		ASSERT_EQ(0, worker_start(&self->w[j], tags, n));
	}
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(frames_shared, &all, KSM_WAIT_SECS))
		TH_LOG("three processes alike were not merged");
	ASSERT_EQ(0, ksm_wait_scans(KSM_SETTLE_SCANS, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_stop_and_read(&c));

	EXPECT_TRUE(frames_shared(&all));
	/* Different contents, different KSM pages. */
	worker_pfns(&self->w[0], pfns);
	EXPECT_TRUE(pfns_all_distinct(pfns, n));
	for (j = 0; j < 3; j++) {
		EXPECT_EQ(0, worker_check(&self->w[j]));
	}
	EXPECT_EQ(n, c.shared);
	EXPECT_EQ(2 * n, c.sharing);
	EXPECT_EQ(0, c.unshared);
	EXPECT_EQ(0, c.volatile_);
	free(tags);
}

/*
 * Nothing alike, nothing merged: every page keeps its frame and is counted
 * in pages_unshared once ksmd has seen it twice.
 */
TEST_F_TIMEOUT(merge, unique_pages_not_merged, KSM_TEST_TIMEOUT)
{
	const size_t n = 64;
	unsigned long pfns[2 * 64];
	struct ksm_counters c;
	uint64_t *ta, *tb;

	ta = make_tags(n, 0x10000);
	tb = make_tags(n, 0x20000);
	ASSERT_TRUE(ta && tb);
	ASSERT_EQ(0, worker_start(&self->w[0], ta, n));
	ASSERT_EQ(0, worker_start(&self->w[1], tb, n));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_scans(KSM_SETTLE_SCANS + 1, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_stop_and_read(&c));

	worker_pfns(&self->w[0], pfns);
	worker_pfns(&self->w[1], pfns + n);
	EXPECT_TRUE(pfns_all_distinct(pfns, 2 * n));
	EXPECT_EQ(0, worker_check(&self->w[0]));
	EXPECT_EQ(0, worker_check(&self->w[1]));
	EXPECT_EQ(0, c.shared);
	EXPECT_EQ(0, c.sharing);
	EXPECT_EQ(2 * n, c.unshared);
	EXPECT_EQ(0, c.volatile_);
	free(ta);
	free(tb);
}

/*
 * A write to a merged page gives the writer a copy with the new data and
 * leaves the other process on the KSM page with the old data.  Rewriting
 * the same data copies too, and the copy is merged again later.
 */
TEST_F_TIMEOUT(merge, write_breaks_cow, KSM_TEST_TIMEOUT)
{
	const size_t n = 16, changed = 3, rewritten = 5;
	struct same_frames all = { self->w, 2, 0, n };
	struct same_frames again = { self->w, 2, rewritten, 1 };
	struct ksm_worker *a = &self->w[0], *b = &self->w[1];
	unsigned long ksm_pfn[16], pfn;
	struct ksm_counters c;
	uint64_t *tags;
	size_t i;

	tags = make_tags(n, 0x4000);
	ASSERT_NE(NULL, tags);
	ASSERT_EQ(0, worker_start(a, tags, n));
	ASSERT_EQ(0, worker_start(b, tags, n));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(frames_shared, &all, KSM_WAIT_SECS))
		TH_LOG("identical pages of two processes were not merged");
	ASSERT_EQ(0, ksm_set("run", 0));
	worker_pfns(a, ksm_pfn);

	/* A writes new data: A gets a new frame, B keeps the KSM page. */
	ASSERT_EQ(0, worker_write(a, changed, 0xc0c0c0));
	pfn = worker_pfn(a, changed);
	EXPECT_NE(0, pfn);
	EXPECT_NE(ksm_pfn[changed], pfn);
	EXPECT_EQ(ksm_pfn[changed], worker_pfn(b, changed));
	EXPECT_EQ(0, worker_check(a)) TH_LOG("the writer lost its data");
	EXPECT_EQ(0, worker_check(b)) TH_LOG("the other side saw the write");

	/* B rewrites what was there: still a copy, for B only. */
	ASSERT_EQ(0, worker_write(b, rewritten, tags[rewritten]));
	pfn = worker_pfn(b, rewritten);
	EXPECT_NE(0, pfn);
	EXPECT_NE(ksm_pfn[rewritten], pfn);
	EXPECT_EQ(ksm_pfn[rewritten], worker_pfn(a, rewritten));
	EXPECT_EQ(0, worker_check(a));
	EXPECT_EQ(0, worker_check(b));

	/* The other pages were not disturbed. */
	for (i = 0; i < n; i++) {
		if (i == changed || i == rewritten)
			continue;
		EXPECT_EQ(ksm_pfn[i], worker_pfn(a, i)) TH_LOG("page %zu", i);
		EXPECT_EQ(ksm_pfn[i], worker_pfn(b, i)) TH_LOG("page %zu", i);
	}

	/* The rewritten copy merges again; the changed page has no twin. */
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(frames_shared, &again, KSM_WAIT_SECS))
		TH_LOG("a rewritten page was not merged again");
	ASSERT_EQ(0, ksm_wait_scans(KSM_SETTLE_SCANS, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_stop_and_read(&c));
	EXPECT_NE(worker_pfn(a, changed), worker_pfn(b, changed));
	EXPECT_EQ(0, worker_check(a));
	EXPECT_EQ(0, worker_check(b));
	/* 15 pairs share; A's changed page is unique. */
	EXPECT_EQ(n - 1, c.sharing);
	EXPECT_EQ(1, c.unshared);
	free(tags);
}

/*
 * A page that something else holds a reference to (a pipe after
 * vmsplice() here; O_DIRECT, a device's DMA or a long-term pin alike) may
 * still be read or written through it: merging would leave the holder on
 * a page the process no longer maps, and a write through it would be
 * lost.  The page is not merged while the reference lasts, and merges
 * once it is dropped (upstream's refcount test, the same).  The other
 * pages of its content merge meanwhile; upstream keeps the referenced
 * page as the unstable tree's partner for that content, so none of them
 * merges until the pipe is read (this test fails there for that).
 */
TEST_F_TIMEOUT(merge, referenced_page_waits, KSM_TEST_TIMEOUT)
{
	const size_t n = 8;
	struct own_range rest = { pagemap_open(0), NULL, 1, n - 1 };
	struct own_range all = { rest.pagemap_fd, NULL, 0, n };
	struct iovec iov;
	int pipe_fd[2];
	char *p, *buf;

	ASSERT_LE(0, rest.pagemap_fd);
	p = map_same(n, 0x7e7e);
	ASSERT_NE(NULL, p);
	rest.p = p;
	all.p = p;
	buf = malloc(page_size);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, pipe(pipe_fd));
	iov.iov_base = p;
	iov.iov_len = page_size;
	ASSERT_EQ((ssize_t)page_size, vmsplice(pipe_fd[1], &iov, 1, 0));

	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(own_one_frame, &rest, KSM_WAIT_SECS))
		TH_LOG("identical pages were not merged");
	ASSERT_EQ(0, ksm_wait_scans(KSM_SETTLE_SCANS, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_set("run", 0));
	EXPECT_FALSE(own_one_frame(&all))
		TH_LOG("a page in a pipe was merged");
	EXPECT_TRUE(page_has(p, 0x7e7e));

	/* The pipe read, the reference goes, and the page merges. */
	ASSERT_EQ((ssize_t)page_size, read(pipe_fd[0], buf, page_size));
	EXPECT_TRUE(page_has(buf, 0x7e7e));
	ASSERT_EQ(0, ksm_set("run", 1));
	EXPECT_EQ(0, ksm_wait_for(own_one_frame, &all, KSM_WAIT_SECS))
		TH_LOG("the page was not merged once the pipe let it go");
	EXPECT_TRUE(page_has(p, 0x7e7e));
	close(pipe_fd[0]);
	close(pipe_fd[1]);
	close(rest.pagemap_fd);
	free(buf);
	munmap(p, n * page_size);
}

/*
 * The phases of LTP's ksm01 (its create_same_memory(), smaller), which
 * distributions run against every kernel: three processes rewrite all
 * their pages while ksmd runs, and after KSM_SETTLE_SCANS full scans,
 * with ksmd stopped, the counters are exactly upstream's.  Merged pages
 * are written over (COW), their KSM pages go, and the new contents merge:
 * c a a (2 KSM pages), c b a (3), d d d (1), then d d d but for the last
 * page of the second process (1, and one page unshared).  run=2 leaves
 * every counter at 0.
 */
#define PHASE_PAGES	64

TEST_F_TIMEOUT(merge, rewritten_in_phases, 4 * KSM_TEST_TIMEOUT)
{
	static const struct {
		uint64_t tag[MAX_WORKERS];
		bool odd;	/* the second process's last page differs */
		unsigned long shared, unshared;
	} phase[] = {
		{ { 'c', 'a', 'a' }, false, 2, 0 },
		{ { 'c', 'b', 'a' }, false, 3, 0 },
		{ { 'd', 'd', 'd' }, false, 1, 0 },
		{ { 'd', 'd', 'd' }, true, 1, 1 },
	};
	const unsigned long all = MAX_WORKERS * PHASE_PAGES;
	struct ksm_counters c;
	uint64_t *tags;
	size_t p, i;
	int j;

	tags = make_tags(PHASE_PAGES, 0x5000);
	ASSERT_NE(NULL, tags);
	for (j = 0; j < MAX_WORKERS; j++) {
		ASSERT_EQ(0, worker_start(&self->w[j], tags, PHASE_PAGES));
	}
	ASSERT_EQ(0, ksm_set("run", 1));
	for (p = 0; p < ARRAY_SIZE(phase); p++) {
		for (j = 0; j < MAX_WORKERS; j++) {
			for (i = 0; i < PHASE_PAGES; i++) {
				uint64_t tag = phase[p].tag[j];

				if (phase[p].odd && j == 1 && i == PHASE_PAGES - 1)
					tag = 'e';
				ASSERT_EQ(0, worker_write(&self->w[j], i, tag));
			}
		}
		ASSERT_EQ(0, ksm_wait_scans(KSM_SETTLE_SCANS, KSM_WAIT_SECS));
		ASSERT_EQ(0, ksm_stop_and_read(&c));
		EXPECT_EQ(phase[p].shared, c.shared) TH_LOG("phase %zu", p + 1);
		EXPECT_EQ(all - phase[p].shared - phase[p].unshared, c.sharing)
			TH_LOG("phase %zu", p + 1);
		EXPECT_EQ(phase[p].unshared, c.unshared) TH_LOG("phase %zu", p + 1);
		EXPECT_EQ(0, c.volatile_) TH_LOG("phase %zu", p + 1);
		for (j = 0; j < MAX_WORKERS; j++) {
			EXPECT_EQ(0, worker_check(&self->w[j]));
		}
		ASSERT_EQ(0, ksm_set("run", 1));
	}
	ASSERT_EQ(0, ksm_set("run", 2));
	ASSERT_EQ(0, ksm_read_counters(&c));
	EXPECT_EQ(0, c.shared);
	EXPECT_EQ(0, c.sharing);
	EXPECT_EQ(0, c.unshared);
	EXPECT_EQ(0, c.volatile_);
	for (j = 0; j < MAX_WORKERS; j++) {
		EXPECT_EQ(0, worker_check(&self->w[j]));
	}
	free(tags);
}

TEST_HARNESS_MAIN
