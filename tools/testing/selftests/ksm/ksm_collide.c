// SPDX-License-Identifier: GPL-2.0
/*
 * Checksum collisions: pages of different content whose checksums are
 * equal must neither keep identical pages apart, nor make ksmd's work grow
 * with the square of their number.
 *
 * Our KSM orders its stable and unstable trees by a 32-bit checksum of the
 * page (ksm_checksum() below is the same function).  On x86-64 with AVX2
 * it is the lane function: sixteen 64-bit lanes, word i to lane i % 16,
 * each step x = lane ^ word, lane = the halves of x ^ lo32(x) * K
 * swapped; elsewhere the word function: four lanes of xor-multiply over
 * the page's 64-bit words; both folded at the end.  Neither is meant to
 * resist an attacker, and neither does.  For the word function every
 * multiplier is odd, so
 *
 *	(x ^ 2^63) * K == (x * K) ^ 2^63	(mod 2^64)
 *
 * and flipping bit 63 of word j and of word j + 4 (the same lane, one step
 * later) cancels out.  For the lane function, bit 63 of x does not reach
 * the multiply, and the swap takes it to bit 31: flipping bit 63 of word j
 * and bit 31 of word j + 16 cancels out.  Either way the checksum is
 * unchanged, whatever the content.  So
 * any user can make a page X that differs from a given page C and has its
 * checksum, and as many distinct such pages as it likes by flipping several
 * disjoint pairs (flip_pairs(): one pair per set bit of an index).  The
 * pairs sit at the end of the page, so that telling X from C by content
 * reads nearly all of it.  The tests build their pages this way and first
 * check in user space that they really collide with their targets.
 *
 * What must hold, as it does with upstream's KSM (which orders both trees
 * by memcmp()):
 *
 *  - victim_merges_past_colliding_pair: an attacker's KSM page of content
 *    X does not stop 63 pages of content C (same checksum) from merging
 *    into one KSM page.  An engine whose stable-tree search takes the first
 *    node of the right checksum, without comparing contents, fails the
 *    merge with X's page every time and falls back on the unstable tree:
 *    C merges in pairs only (31 KSM pages for 63 pages).
 *  - zero_content_past_colliding_pair: the same for pages of zeroes (with
 *    use_zero_pages=0), the content every process has most of.
 *  - many_colliders_stay_cheap: ksmd's CPU time per full scan over 2048
 *    distinct pages of one checksum stays within a constant factor of that
 *    over 2048 random pages, and grows about linearly (not quadratically)
 *    from 512 colliding pages to 2048.  An engine that compares a page with
 *    every other page of its checksum in turn does O(n^2) page comparisons
 *    per scan.
 *  - colliding_duplicates_group_correctly: with max_page_sharing=4, ten
 *    pages of C and ten of X make exactly three KSM pages of each: a second
 *    KSM page of one content is made only when the first is full, never
 *    because the search stopped at a KSM page of the other content.  No
 *    frame ever holds both contents.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "../kselftest_harness.h"
#include "ksm_common.h"

/* max_page_sharing's default, which the first three tests run with. */
#define SHARING_DEFAULT		256

#define VICTIM_PAGES		63
#define ZERO_COPIES		512
#define COST_PAGES		2048
#define COST_FEW		512
#define DUP_PAGES		10
#define DUP_LIMIT		4

/* A bound on each cost measurement, warm-up included. */
#define COST_WAIT_SECS		(3 * KSM_WAIT_SECS)

/* The tag of content C, a page of fill_page()'s kind. */
#define TAG_C			0xc011de5ULL

/* ---------------------------------------------------------------------- */
/* The checksum and the pages that collide under it                      */
/* ---------------------------------------------------------------------- */

#define K0	0x9e3779b97f4a7c15ULL
#define K1	0xc2b2ae3d27d4eb4fULL
#define K2	0x165667b19e3779f9ULL
#define K3	0x27d4eb2f165667c5ULL

static inline uint64_t rol64(uint64_t x, unsigned int r)
{
	return (x << r) | (x >> (64 - r));
}

static uint32_t fold(uint64_t a)
{
	a ^= a >> 33;
	a *= K1;
	a ^= a >> 29;
	return (uint32_t)a ^ (uint32_t)(a >> 32);
}

/* The word function: four lanes of xor-multiply. */
static uint32_t words_checksum(const uint64_t *w)
{
	uint64_t a = K0, b = K1, c = K2, d = K3;
	size_t i;

	for (i = 0; i < page_size / sizeof(*w); i += 4) {
		a = (a ^ w[i]) * K1;
		b = (b ^ w[i + 1]) * K2;
		c = (c ^ w[i + 2]) * K3;
		d = (d ^ w[i + 3]) * K0;
	}
	return fold(rol64(a, 1) + rol64(b, 7) + rol64(c, 12) + rol64(d, 18));
}

#define LANES	16
#define LANE_K	0x3c6ef362U

/* The lane function: sixteen lanes, each step a multiply and a swap. */
static uint32_t lanes_checksum(const uint64_t *w)
{
	uint64_t lane[LANES], a = 0;
	size_t i;

	for (i = 0; i < LANES; i++)
		lane[i] = K0 * (i + 1);
	for (i = 0; i < page_size / sizeof(*w); i++) {
		uint64_t x = lane[i % LANES] ^ w[i];

		x ^= (x & 0xffffffffULL) * LANE_K;
		lane[i % LANES] = x >> 32 | x << 32;
	}
	for (i = 0; i < LANES; i++)
		a = (rol64(a, 17) ^ lane[i]) * K2;
	return fold(a);
}

/*
 * Does our KSM use the lane function?  On an x86-64 kernel (whatever this
 * program was built for) with AVX2, which /proc/cpuinfo shows only where
 * the kernel can use it.
 */
static bool kernel_lanes(void)
{
	static int lanes = -1;
	struct utsname u;

	/* Not UML's, which shows the host's flags */
	if (lanes < 0)
		lanes = !uname(&u) && !strcmp(u.machine, "x86_64") &&
			file_has("/proc/cpuinfo", " avx2") &&
			!file_has("/proc/cpuinfo", "User Mode Linux");
	return lanes;
}

/*
 * Known answers, which KUnit's ksm_test_checksum checks for the kernel's
 * functions: word i holding i * 0x0101010101010101, in a page of 4 KiB
 * (others are not checked).  Else this file's copies could differ from
 * the kernel's and every test here pass with pages that do not collide
 * there.
 */
static bool checksums_known(void)
{
	size_t n = page_size / sizeof(uint64_t), i;
	uint64_t *w = malloc(page_size);
	bool ok;

	if (!w)
		return false;
	for (i = 0; i < n; i++)
		w[i] = i * 0x0101010101010101ULL;
	ok = page_size != 4096 || (words_checksum(w) == 0xe1755836U &&
				   lanes_checksum(w) == 0x8dd9b146U);
	free(w);
	return ok;
}

/* The checksum by which our KSM orders its trees (mm/ksm.c). */
static uint32_t ksm_checksum(const uint64_t *w)
{
	return kernel_lanes() ? lanes_checksum(w) : words_checksum(w);
}

/*
 * For each set bit b of @flips, flip a pair: with the word function, bit
 * 63 of words j and j + 4, where j = n - 8 * (b / 4 + 1) + b % 4 for a
 * page of n words (four disjoint pairs in each block of eight words,
 * blocks counting down from the end of the page); with the lane function,
 * bit 63 of word j and bit 31 of word j + 16, j = n - 32 * (b / 16 + 1) +
 * b % 16.  The checksum does not change; the content does.
 */
static void flip_pairs(uint64_t *w, uint32_t flips)
{
	size_t n = page_size / sizeof(*w), s = kernel_lanes() ? LANES : 4, j;
	unsigned int b;

	for (b = 0; b < 32; b++) {
		if (!(flips & (1U << b)))
			continue;
		j = n - 2 * s * (b / s + 1) + b % s;
		w[j] ^= 1ULL << 63;
		if (s == LANES)
			w[j + s] ^= 1ULL << 31;
		else
			w[j + s] ^= 1ULL << 63;
	}
}

/* What a page holds: fill_page(@val) or random words, then flip_pairs(). */
struct page_spec {
	uint64_t val;		/* the tag (TAG_ZERO: zeroes), or the seed */
	uint32_t flips;
	bool random;
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void make_page(void *page, const struct page_spec *s)
{
	uint64_t *w = page, x = s->val;
	size_t i;

	if (s->random) {
		for (i = 0; i < page_size / sizeof(*w); i++)
			w[i] = splitmix64(&x);
	} else {
		fill_page(page, s->val);
	}
	flip_pairs(w, s->flips);
}

/*
 * Do the pages of @specs all have the checksum of @target, and (@differ)
 * a content of their own?  Returns the index of the first that does not,
 * or -1.
 */
static long check_collisions(const struct page_spec *specs, size_t n,
			     const struct page_spec *target, bool differ)
{
	uint64_t *t = malloc(page_size), *p = malloc(page_size);
	long bad = -1;
	uint32_t sum;
	size_t i;

	if (!t || !p) {
		bad = 0;
		goto out;
	}
	make_page(t, target);
	sum = ksm_checksum(t);
	for (i = 0; i < n && bad < 0; i++) {
		make_page(p, &specs[i]);
		if (ksm_checksum(p) != sum ||
		    (differ && !memcmp(p, t, page_size)))
			bad = i;
	}
out:
	free(t);
	free(p);
	return bad;
}

/* ---------------------------------------------------------------------- */
/* Workers that hold pages of any page_spec                              */
/* ---------------------------------------------------------------------- */

/*
 * Like the workers of ksm_common.c (worker_pfn() and the conditions built
 * on it work on these), but the pages are made from page_specs, which
 * tags cannot express.  Commands: 'c' replies how many pages do not hold
 * their content; anything else, or end of file, ends the worker.
 */
struct spec_worker {
	const struct page_spec *specs;
	size_t n;
};

static void spec_worker_main(void *arg, int cmd_fd, int reply_fd)
{
	const struct spec_worker *sw = arg;
	const struct page_spec *specs = sw->specs;
	size_t n = sw->n, i;
	char *addr, *expect, op;
	int64_t reply;

	addr = map_anon(n, false);
	expect = malloc(page_size);
	if (!addr || !expect) {
		reply = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < n; i++) {
		/* A real page of our own, whatever is written next. */
		*(volatile char *)(addr + i * page_size) = 1;
		make_page(addr + i * page_size, &specs[i]);
	}
	if (madvise(addr, n * page_size, MADV_MERGEABLE)) {
		reply = -errno;
		goto fail;
	}
	reply = (int64_t)(unsigned long)addr;
	if (write(reply_fd, &reply, sizeof(reply)) != sizeof(reply))
		_exit(1);
	while (read(cmd_fd, &op, 1) == 1 && op == 'c') {
		reply = 0;
		for (i = 0; i < n; i++) {
			make_page(expect, &specs[i]);
			if (memcmp(addr + i * page_size, expect, page_size))
				reply++;
		}
		if (write(reply_fd, &reply, sizeof(reply)) != sizeof(reply))
			_exit(1);
	}
	_exit(0);
fail:
	if (write(reply_fd, &reply, sizeof(reply)) != sizeof(reply))
		_exit(1);
	_exit(1);
}

static int spec_worker_stop(struct ksm_worker *w)
{
	int status = 0;

	if (!w->pid)
		return 0;
	/*
	 * Any command but 'c' ends the worker.  Not end of file alone: a
	 * worker forked later holds a copy of this one's command pipe.
	 */
	if (write(w->cmd_fd, "q", 1) != 1)
		kill(w->pid, SIGKILL);
	close(w->cmd_fd);
	close(w->reply_fd);
	if (w->pagemap_fd >= 0)
		close(w->pagemap_fd);
	if (waitpid(w->pid, &status, 0) != w->pid)
		status = -1;
	w->pid = 0;
	w->pagemap_fd = -1;
	if (status == -1)
		return -ECHILD;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int spec_worker_start(struct ksm_worker *w,
			     const struct page_spec *specs, size_t n)
{
	struct spec_worker sw = { specs, n };

	return worker_spawn(w, n, spec_worker_main, &sw);
}

static int spec_worker_start_same(struct ksm_worker *w,
				  const struct page_spec *spec, size_t n)
{
	struct page_spec *specs = malloc(n * sizeof(*specs));
	size_t i;
	int ret;

	if (!specs)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		specs[i] = *spec;
	ret = spec_worker_start(w, specs, n);
	free(specs);
	return ret;
}

/* How many of the worker's pages do not hold their content. */
static int spec_worker_check(struct ksm_worker *w)
{
	int64_t reply;
	char op = 'c';

	if (!w->pid)
		return -ESRCH;
	if (write(w->cmd_fd, &op, 1) != 1 ||
	    read(w->reply_fd, &reply, sizeof(reply)) != sizeof(reply))
		return -EPIPE;
	return reply;
}

/* ---------------------------------------------------------------------- */
/* Frames                                                                 */
/* ---------------------------------------------------------------------- */

static int cmp_ulong(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a;
	unsigned long y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

struct frames {
	size_t distinct;	/* frames among the present pages */
	size_t most;		/* the most pages on one frame */
	size_t absent;		/* pages with no frame */
};

static struct frames count_frames(const unsigned long *pfns, size_t n)
{
	struct frames f = { 0, 0, 0 };
	unsigned long *s = malloc(n * sizeof(*s));
	size_t i, run = 0;

	if (!s) {
		f.absent = n;
		return f;
	}
	memcpy(s, pfns, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_ulong);
	for (i = 0; i < n; i++) {
		if (!s[i]) {
			f.absent++;
			continue;
		}
		if (i && s[i] == s[i - 1]) {
			run++;
		} else {
			f.distinct++;
			run = 1;
		}
		if (run > f.most)
			f.most = run;
	}
	free(s);
	return f;
}

static struct frames worker_frames(struct ksm_worker *w)
{
	unsigned long *pfns = malloc(w->npages * sizeof(*pfns));
	struct frames f = { 0, 0, w->npages };

	if (pfns) {
		worker_pfns(w, pfns);
		f = count_frames(pfns, w->npages);
		free(pfns);
	}
	return f;
}

/* Does a frame of @a also appear among @b's? */
static bool frames_overlap(struct ksm_worker *a, struct ksm_worker *b)
{
	size_t i, j;

	for (i = 0; i < a->npages; i++) {
		unsigned long pfn = worker_pfn(a, i);

		for (j = 0; pfn && j < b->npages; j++)
			if (worker_pfn(b, j) == pfn)
				return true;
	}
	return false;
}

/* Every page of each of @nr workers is present, on @max_frames at most. */
struct few_frames {
	struct ksm_worker *w;
	int nr;
	size_t max_frames;
};

static bool on_few_frames(void *arg)
{
	struct few_frames *ff = arg;
	struct frames f;
	int i;

	for (i = 0; i < ff->nr; i++) {
		f = worker_frames(&ff->w[i]);
		if (f.absent || f.distinct > ff->max_frames)
			return false;
	}
	return true;
}

/* ---------------------------------------------------------------------- */
/* Waiting                                                                */
/* ---------------------------------------------------------------------- */

struct cond_or_scans {
	bool (*cond)(void *arg);
	void *arg;
	unsigned long until;	/* full_scans */
};

static bool cond_or_scans(void *arg)
{
	struct cond_or_scans *c = arg;
	unsigned long scans;

	return c->cond(c->arg) ||
	       (!ksm_read("full_scans", &scans) && scans >= c->until);
}

/*
 * Let ksmd settle: wait until @cond holds, or 2 * KSM_SETTLE_SCANS full
 * scans have gone by without it (a defective engine never gets there,
 * and need not cost the whole KSM_WAIT_SECS), then KSM_SETTLE_SCANS more.
 * The caller judges the outcome; 0, or -ETIMEDOUT if ksmd stalled.
 */
static int settle(bool (*cond)(void *arg), void *arg)
{
	struct cond_or_scans c = { cond, arg, 0 };
	int ret;

	ret = ksm_read("full_scans", &c.until);
	if (ret)
		return ret;
	c.until += 2 * KSM_SETTLE_SCANS;
	ret = ksm_wait_for(cond_or_scans, &c, KSM_WAIT_SECS);
	if (ret)
		return ret;
	return ksm_wait_scans(KSM_SETTLE_SCANS, KSM_WAIT_SECS);
}

/* ---------------------------------------------------------------------- */
/* ksmd's CPU time                                                       */
/* ---------------------------------------------------------------------- */

static pid_t find_ksmd(void)
{
	char path[64], comm[32];
	struct dirent *de;
	pid_t pid = 0;
	DIR *dir;
	FILE *f;

	dir = opendir("/proc");
	if (!dir)
		return 0;
	while (!pid && (de = readdir(dir))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/comm",
			 atoi(de->d_name));
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && !strcmp(comm, "ksmd\n"))
			pid = atoi(de->d_name);
		fclose(f);
	}
	closedir(dir);
	return pid;
}

/*
 * The CPU time @pid has run, in ns: se.sum_exec_runtime of /proc/PID/sched
 * (CONFIG_SCHED_DEBUG, printed as ms.nnnnnn), else the first field of
 * /proc/PID/schedstat (CONFIG_SCHED_INFO).  0 or a negative errno.
 */
static int runtime_ns(pid_t pid, uint64_t *ns)
{
	unsigned long long ms, frac, val;
	char path[64], line[256], *colon;
	int ret = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/sched", pid);
	f = fopen(path, "r");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			if (strncmp(line, "se.sum_exec_runtime", 19))
				continue;
			colon = strchr(line, ':');
			if (colon &&
			    sscanf(colon + 1, " %llu.%6llu", &ms, &frac) == 2) {
				*ns = ms * 1000000ULL + frac;
				ret = 0;
			}
			break;
		}
		fclose(f);
		if (!ret)
			return 0;
	}
	snprintf(path, sizeof(path), "/proc/%d/schedstat", pid);
	f = fopen(path, "r");
	if (!f)
		return ret;
	if (fscanf(f, "%llu", &val) == 1) {
		*ns = val;
		ret = 0;
	}
	fclose(f);
	return ret;
}

struct scan_cost {
	uint64_t ns;		/* ksmd's CPU time over... */
	unsigned long scans;	/* ...this many full scans */
	unsigned long shared;	/* pages_shared at the end */
	bool done;		/* false: gave up after COST_WAIT_SECS */
};

static double cost_ms(const struct scan_cost *c)
{
	return c->ns / 1e6 / (c->scans ? c->scans : 1);
}

/* Wait for @nr more full scans, but not past @deadline (ms). */
static int wait_scans_until(unsigned long nr, unsigned long deadline)
{
	unsigned long now = now_ms();

	if (now >= deadline)
		return -ETIMEDOUT;
	return ksm_wait_scans(nr, (deadline - now + 999) / 1000);
}

/*
 * ksmd's CPU time per full scan over the pages of @specs, held by one
 * process: two full scans to warm up (the first makes the items), then
 * three measured, each a batch of its own since pages_to_scan exceeds the
 * pages.  ksmd is stopped (run=0 waits for a batch in progress) to read
 * the clock on a batch boundary.  Everything within COST_WAIT_SECS; on
 * -ETIMEDOUT, @cost holds what was spent since the start.
 */
static int measure_cost(pid_t ksmd, const struct page_spec *specs, size_t n,
			struct scan_cost *cost)
{
	unsigned long deadline, f_start, f0, f1;
	uint64_t r_start, r0, r1;
	struct ksm_worker w;
	int ret, err;

	memset(cost, 0, sizeof(*cost));
	ret = ksm_set("run", 2);
	if (!ret)
		ret = spec_worker_start(&w, specs, n);
	if (ret)
		return ret;
	deadline = now_ms() + COST_WAIT_SECS * 1000UL;
	ret = ksm_read("full_scans", &f_start);
	if (!ret)
		ret = runtime_ns(ksmd, &r_start);
	if (!ret)
		ret = ksm_set("run", 1);
	if (!ret)
		ret = wait_scans_until(2, deadline);
	if (!ret)
		ret = ksm_set("run", 0);
	if (!ret)
		ret = ksm_read("full_scans", &f0);
	if (!ret)
		ret = runtime_ns(ksmd, &r0);
	if (!ret)
		ret = ksm_set("run", 1);
	if (!ret)
		ret = wait_scans_until(3, deadline);
	err = ksm_set("run", 0);
	if (!ret)
		ret = err;
	if (!ret)
		ret = ksm_read("full_scans", &f1);
	if (!ret)
		ret = runtime_ns(ksmd, &r1);
	if (!ret) {
		cost->ns = r1 - r0;
		cost->scans = f1 - f0;
		cost->done = true;
	} else if (ret == -ETIMEDOUT && !ksm_read("full_scans", &f1) &&
		   !runtime_ns(ksmd, &r1)) {
		cost->ns = r1 - r_start;
		cost->scans = f1 - f_start;
	}
	if (ksm_read("pages_shared", &cost->shared))
		cost->shared = ULONG_MAX;
	spec_worker_stop(&w);
	err = ksm_set("run", 2);
	return ret ? ret : err;
}

/* ---------------------------------------------------------------------- */
/* The tests                                                              */
/* ---------------------------------------------------------------------- */

FIXTURE(collide) {
	struct ksm_saved saved;
	struct ksm_worker w[2];
};

FIXTURE_SETUP(collide)
{
	KSM_FIXTURE_BEGIN();
	ASSERT_EQ(0, page_size % 64) TH_LOG("page size %zu", page_size);
	ASSERT_TRUE(checksums_known())
		TH_LOG("this file's checksums are not the kernel's");
	/* run=2: no KSM page is left, so the limits below may change. */
	ASSERT_EQ(0, ksm_prepare(4096, 10));
	ASSERT_EQ(0, ksm_set("max_page_sharing", SHARING_DEFAULT));
	if (ksm_knob_exists("use_zero_pages")) {
		ASSERT_EQ(0, ksm_set("use_zero_pages", 0));
	}
	/* One tree for all, whatever the NUMA layout. */
	if (ksm_knob_exists("merge_across_nodes")) {
		ASSERT_EQ(0, ksm_set("merge_across_nodes", 1));
	}
}

FIXTURE_TEARDOWN(collide)
{
	spec_worker_stop(&self->w[0]);
	spec_worker_stop(&self->w[1]);
	ksm_restore(&self->saved);
}

/*
 * The attacker's two pages of X merge into a KSM page; its checksum is
 * C's.  Then 63 pages of C arrive: they must all merge into one KSM page.
 */
TEST_F_TIMEOUT(collide, victim_merges_past_colliding_pair,
	       2 * KSM_TEST_TIMEOUT)
{
	const struct page_spec c = { .val = TAG_C };
	const struct page_spec x = { .val = TAG_C, .flips = 1 };
	struct few_frames one_victim = { &self->w[1], 1, 1 };
	struct ksm_worker *attacker = &self->w[0], *victim = &self->w[1];
	struct ksm_counters cnt;
	struct frames f;

	ASSERT_EQ(-1, check_collisions(&x, 1, &c, true))
		TH_LOG("X does not collide with C: the checksum has changed?");

	ASSERT_EQ(0, spec_worker_start_same(attacker, &x, 2));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(all_one_frame, attacker, KSM_WAIT_SECS))
		TH_LOG("the attacker's two pages were not merged");
	ASSERT_EQ(0, ksm_wait_scans(1, KSM_WAIT_SECS));
	ASSERT_EQ(1, ksm_get("pages_shared"));
	ASSERT_EQ(1, ksm_get("pages_sharing"));

	ASSERT_EQ(0, spec_worker_start_same(victim, &c, VICTIM_PAGES));
	ASSERT_EQ(0, settle(on_few_frames, &one_victim))
		TH_LOG("ksmd made no progress");
	ASSERT_EQ(0, ksm_stop_and_read(&cnt));

	f = worker_frames(victim);
	EXPECT_EQ(0, f.absent);
	EXPECT_EQ(1, f.distinct)
		TH_LOG("the victim's %d pages are on %zu frames, up to %zu on one",
		       VICTIM_PAGES, f.distinct, f.most);
	EXPECT_TRUE(all_one_frame(attacker));
	EXPECT_FALSE(frames_overlap(attacker, victim));
	EXPECT_EQ(0, spec_worker_check(attacker));
	EXPECT_EQ(0, spec_worker_check(victim));
	/* X's KSM page and C's; 1 mapping saved for X, 62 for C. */
	EXPECT_EQ(2, cnt.shared);
	EXPECT_EQ(1 + VICTIM_PAGES - 1, cnt.sharing);
	EXPECT_EQ(0, cnt.unshared);
}

/*
 * The same for pages of zeroes: after a KSM page of X, which has the
 * checksum of a page of zeroes, 512 pages of zeroes (real pages, since
 * use_zero_pages=0) merge into as few KSM pages as max_page_sharing
 * allows: two of 256.
 */
TEST_F_TIMEOUT(collide, zero_content_past_colliding_pair,
	       2 * KSM_TEST_TIMEOUT)
{
	const size_t most = (ZERO_COPIES + SHARING_DEFAULT - 1) /
			    SHARING_DEFAULT;
	const struct page_spec zero = { .val = TAG_ZERO };
	const struct page_spec x = { .val = TAG_ZERO, .flips = 1 };
	struct few_frames zeroes = { &self->w[1], 1, most };
	struct ksm_worker *attacker = &self->w[0], *victim = &self->w[1];
	struct ksm_counters cnt;
	struct frames f;

	ASSERT_EQ(-1, check_collisions(&x, 1, &zero, true))
		TH_LOG("X does not collide with zeroes: the checksum has changed?");

	ASSERT_EQ(0, spec_worker_start_same(attacker, &x, 2));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(all_one_frame, attacker, KSM_WAIT_SECS))
		TH_LOG("the attacker's two pages were not merged");
	ASSERT_EQ(0, ksm_wait_scans(1, KSM_WAIT_SECS));
	ASSERT_EQ(1, ksm_get("pages_shared"));

	ASSERT_EQ(0, spec_worker_start_same(victim, &zero, ZERO_COPIES));
	ASSERT_EQ(0, settle(on_few_frames, &zeroes))
		TH_LOG("ksmd made no progress");
	ASSERT_EQ(0, ksm_stop_and_read(&cnt));

	f = worker_frames(victim);
	EXPECT_EQ(0, f.absent);
	EXPECT_GE(most, f.distinct)
		TH_LOG("%d pages of zeroes are on %zu frames, up to %zu on one",
		       ZERO_COPIES, f.distinct, f.most);
	EXPECT_GE(SHARING_DEFAULT, f.most);
	EXPECT_TRUE(all_one_frame(attacker));
	EXPECT_FALSE(frames_overlap(attacker, victim));
	EXPECT_EQ(0, spec_worker_check(attacker));
	EXPECT_EQ(0, spec_worker_check(victim));
	/* The counters agree with the frames. */
	EXPECT_GE(1 + most, cnt.shared);
	EXPECT_EQ(1 + f.distinct, cnt.shared);
	EXPECT_EQ(1 + ZERO_COPIES - f.distinct, cnt.sharing);
	EXPECT_LE(1 + ZERO_COPIES - most, cnt.sharing);
}

/*
 * ksmd's CPU time per full scan over (a) 2048 random pages, (b) 2048
 * distinct pages of one checksum, (c) 512 such pages and 1536 random
 * ones.  Nothing merges.  (b) may cost more than (a), by the comparisons
 * of nearly whole pages that telling them apart takes, but not by a factor
 * that grows with their number: about log2(2048) = 11 comparisons a page
 * against about 2048 for an engine that walks every page of its checksum.
 * And (b) costs about 4-5 times (c) if the work is n log n, 16 times if
 * it is n^2.  Measured: (b)/(a) 10.7 on the plain kernel, 14 on the debug
 * kernel (KASAN makes each page read dearer), 2.5 on upstream's, 700 on
 * our engine before the trees were ordered by content; (b)/(c) 3.5, 3.9,
 * 1.8 and 17.  The bounds, 40 and 8, leave room for the noise of a busy
 * TCG guest and still fail a quadratic engine.
 */
TEST_F_TIMEOUT(collide, many_colliders_stay_cheap,
	       3 * COST_WAIT_SECS + KSM_TEST_TIMEOUT)
{
	struct page_spec *rnd, *col, *mix;
	struct scan_cost a, b, c;
	double ratio_ba, ratio_bc;
	pid_t ksmd;
	size_t i;
	int ret;

	ksmd = find_ksmd();
	ASSERT_NE(0, ksmd) TH_LOG("no ksmd in /proc");
	ASSERT_EQ(0, runtime_ns(ksmd, &a.ns))
		TH_LOG("cannot read ksmd's CPU time from /proc/%d/sched", ksmd);

	rnd = calloc(COST_PAGES, sizeof(*rnd));
	col = calloc(COST_PAGES, sizeof(*col));
	mix = calloc(COST_PAGES, sizeof(*mix));
	ASSERT_TRUE(rnd && col && mix);
	for (i = 0; i < COST_PAGES; i++) {
		/* Seeds one apart give distinct first words, so pages. */
		rnd[i] = (struct page_spec){ .val = 0x5eed0000 + i,
					     .random = true };
		/* Pair sets of distinct indices: distinct pages. */
		col[i] = (struct page_spec){ .val = 0xc0111de, .flips = i,
					     .random = true };
		mix[i] = i < COST_FEW ? col[i] : rnd[i];
	}
	ASSERT_EQ(-1, check_collisions(col + 1, COST_PAGES - 1, col, true))
		TH_LOG("the crafted pages do not collide");

	ret = measure_cost(ksmd, rnd, COST_PAGES, &a);
	TH_LOG("(a) %d random pages: %.3f ms per full scan (%lu scans)",
	       COST_PAGES, cost_ms(&a), a.scans);
	ASSERT_EQ(0, ret) TH_LOG("gave up on (a) after %d s", COST_WAIT_SECS);
	EXPECT_EQ(0, a.shared);

	ret = measure_cost(ksmd, mix, COST_PAGES, &c);
	TH_LOG("(c) %d colliding + %d random pages: %.3f ms per full scan (%lu scans)",
	       COST_FEW, COST_PAGES - COST_FEW, cost_ms(&c), c.scans);
	ASSERT_EQ(0, ret) TH_LOG("gave up on (c) after %d s, %.1f ms of CPU spent",
				 COST_WAIT_SECS, c.ns / 1e6);
	EXPECT_EQ(0, c.shared);

	ret = measure_cost(ksmd, col, COST_PAGES, &b);
	TH_LOG("(b) %d colliding pages: %.3f ms per full scan (%lu scans)",
	       COST_PAGES, cost_ms(&b), b.scans);
	ASSERT_EQ(0, ret) {
		TH_LOG("gave up on (b) after %d s: %.1f ms of CPU, %lu full scans",
		       COST_WAIT_SECS, b.ns / 1e6, b.scans);
		TH_LOG("so (b) costs %.0f times (a) per scan at least",
		       b.ns / 1e6 / (b.scans + 1) / cost_ms(&a));
	}
	EXPECT_EQ(0, b.shared);

	ASSERT_NE(0, a.ns);
	ASSERT_NE(0, c.ns);
	ratio_ba = cost_ms(&b) / cost_ms(&a);
	ratio_bc = cost_ms(&b) / cost_ms(&c);
	TH_LOG("(b)/(a) = %.1f, (b)/(c) = %.1f", ratio_ba, ratio_bc);
	EXPECT_TRUE(ratio_ba < 40.0)
		TH_LOG("colliding pages cost %.0f times random ones", ratio_ba);
	EXPECT_TRUE(ratio_bc < 8.0)
		TH_LOG("4 times the colliding pages cost %.1f times as much",
		       ratio_bc);
	free(rnd);
	free(col);
	free(mix);
}

/*
 * max_page_sharing=4, 10 pages of C in one process and 10 of X in
 * another: 4 + 4 + 2 of each, so 3 KSM pages per content and 6 in all.
 * A page must go to a KSM page of its own content with room, never be
 * kept from it by a full or foreign KSM page of the same checksum.
 */
TEST_F_TIMEOUT(collide, colliding_duplicates_group_correctly,
	       2 * KSM_TEST_TIMEOUT)
{
	const size_t per = (DUP_PAGES + DUP_LIMIT - 1) / DUP_LIMIT;
	const struct page_spec c = { .val = TAG_C };
	const struct page_spec x = { .val = TAG_C, .flips = 0x88 };
	struct few_frames both = { self->w, 2, per };
	struct ksm_counters cnt;
	struct frames fc, fx;

	ASSERT_EQ(-1, check_collisions(&x, 1, &c, true))
		TH_LOG("X does not collide with C: the checksum has changed?");
	ASSERT_EQ(0, ksm_set("max_page_sharing", DUP_LIMIT));

	ASSERT_EQ(0, spec_worker_start_same(&self->w[0], &c, DUP_PAGES));
	ASSERT_EQ(0, spec_worker_start_same(&self->w[1], &x, DUP_PAGES));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, settle(on_few_frames, &both))
		TH_LOG("ksmd made no progress");
	ASSERT_EQ(0, ksm_stop_and_read(&cnt));

	/* Each page reads its own content: C on C's frames, X on X's. */
	EXPECT_EQ(0, spec_worker_check(&self->w[0]));
	EXPECT_EQ(0, spec_worker_check(&self->w[1]));
	EXPECT_FALSE(frames_overlap(&self->w[0], &self->w[1]));

	fc = worker_frames(&self->w[0]);
	fx = worker_frames(&self->w[1]);
	EXPECT_EQ(0, fc.absent);
	EXPECT_EQ(0, fx.absent);
	EXPECT_GE(DUP_LIMIT, fc.most);
	EXPECT_GE(DUP_LIMIT, fx.most);
	EXPECT_EQ(per, fc.distinct)
		TH_LOG("%d pages of C on %zu frames", DUP_PAGES, fc.distinct);
	EXPECT_EQ(per, fx.distinct)
		TH_LOG("%d pages of X on %zu frames", DUP_PAGES, fx.distinct);
	EXPECT_EQ(2 * per, cnt.shared);
	EXPECT_EQ(2 * (DUP_PAGES - per), cnt.sharing);
}

TEST_HARNESS_MAIN
