// SPDX-License-Identifier: GPL-2.0
/*
 * The part-1 sysfs interface of KSM in /sys/kernel/mm/ksm/: run,
 * pages_to_scan and sleep_millisecs accept what kstrtouint() accepts,
 * reject anything else with EINVAL and keep their value; the counters are
 * read-only; and each knob has the effect it is documented to have.
 *
 * Effects are checked with bounds that slow machines cannot break (a
 * stopped ksmd scans nothing; ksmd never scans more than pages_to_scan per
 * wake-up, nor wakes up more often than sleep_millisecs allows) and with
 * progress that is waited for with a generous timeout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "../kselftest_harness.h"
#include "ksm_common.h"

static const char * const writable_knobs[] = {
	"run", "pages_to_scan", "sleep_millisecs",
};

static const char * const read_only_counters[] = {
	"pages_shared", "pages_sharing", "pages_unshared", "pages_volatile",
	"full_scans", "pages_scanned", "pages_skipped",
};

/* Pages of the mergeable region that keeps ksmd busy in the rate tests. */
#define KEEPER_PAGES	256

FIXTURE(knobs) {
	struct ksm_saved saved;
	struct own_range keeper;	/* mergeable memory: work for ksmd */
};

FIXTURE_SETUP(knobs)
{
	const char *skip = ksm_skip_reason(true);

	self->keeper.p = NULL;
	self->keeper.pagemap_fd = -1;
	if (skip)
		SKIP(return, "%s", skip);
	ksm_save(&self->saved);
	ASSERT_EQ(0, ksm_prepare(1000, 10));
}

FIXTURE_TEARDOWN(knobs)
{
	ksm_restore(&self->saved);
	if (self->keeper.p)
		munmap(self->keeper.p, self->keeper.nr * page_size);
	if (self->keeper.pagemap_fd >= 0)
		close(self->keeper.pagemap_fd);
}

/*
 * ksmd only scans while some mm has mergeable memory: map @npages identical
 * pages, MADV_MERGEABLE, to give it work.
 */
static int map_keeper(struct own_range *keeper, size_t npages)
{
	keeper->p = map_same(npages, 0x6b6565706572);
	if (!keeper->p)
		return -ENOMEM;
	keeper->first = 0;
	keeper->nr = npages;
	keeper->pagemap_fd = pagemap_open(0);
	return keeper->pagemap_fd < 0 ? -errno : 0;
}

/*
 * Growth of pages_scanned over roughly @ms milliseconds; the real length
 * of the window is returned in @elapsed (it only errs on the long side).
 */
static unsigned long scanned_during(unsigned int ms, unsigned long *elapsed)
{
	unsigned long t0, s0, s1;

	t0 = now_ms();
	s0 = ksm_get("pages_scanned");
	usleep(ms * 1000);
	s1 = ksm_get("pages_scanned");
	*elapsed = now_ms() - t0 + 1;
	return s1 - s0;
}

/*
 * The most pages ksmd may scan in @elapsed ms with @pages per wake-up and
 * @sleep_ms between wake-ups: one batch may be in flight when the window
 * opens and one may start right away.  A timed sleep can end up to a jiffy
 * early (msecs_to_jiffies() rounding), so count each sleep as 20 ms shorter.
 */
static unsigned long max_scanned(unsigned long elapsed, unsigned long pages,
				 unsigned long sleep_ms)
{
	return pages * (elapsed / (sleep_ms - 20) + 2);
}

/* Wait until pages_scanned has grown by more than @nr; 0 or -ETIMEDOUT. */
static int wait_scanned(unsigned long nr, unsigned int timeout_s)
{
	unsigned long deadline = now_ms() + timeout_s * 1000UL;
	unsigned long start = ksm_get("pages_scanned");

	while (ksm_get("pages_scanned") - start <= nr) {
		if (now_ms() > deadline)
			return -ETIMEDOUT;
		usleep(20000);
	}
	return 0;
}

TEST_F(knobs, files_and_modes)
{
	struct stat st;
	unsigned long val;
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(writable_knobs); i++) {
		snprintf(path, sizeof(path), KSM_SYSFS_DIR "%s", writable_knobs[i]);
		ASSERT_EQ(0, stat(path, &st)) TH_LOG("%s missing", path);
		EXPECT_EQ(0644, st.st_mode & 0777) TH_LOG("%s mode %o", path,
							  st.st_mode & 0777);
		EXPECT_EQ(0, ksm_read(writable_knobs[i], &val))
			TH_LOG("%s is not one decimal number", path);
	}
	for (i = 0; i < ARRAY_SIZE(read_only_counters); i++) {
		snprintf(path, sizeof(path), KSM_SYSFS_DIR "%s",
			 read_only_counters[i]);
		ASSERT_EQ(0, stat(path, &st)) TH_LOG("%s missing", path);
		EXPECT_EQ(0444, st.st_mode & 0777) TH_LOG("%s mode %o", path,
							  st.st_mode & 0777);
		/* pages_volatile is signed upstream; it is read on its own. */
		if (strcmp(read_only_counters[i], "pages_volatile"))
			EXPECT_EQ(0, ksm_read(read_only_counters[i], &val))
				TH_LOG("%s is not one decimal number", path);
	}
	/* run=2 (from the setup) is read back as such. */
	EXPECT_EQ(2, ksm_get("run"));
}

/* Even root cannot write a counter, and the attempt changes nothing. */
TEST_F(knobs, counters_reject_writes)
{
	unsigned long before, after;
	char path[PATH_MAX];
	ssize_t ret;
	size_t i;
	int fd;

	/* ksmd is stopped (run=2): no counter moves during the test. */
	for (i = 0; i < ARRAY_SIZE(read_only_counters); i++) {
		const char *name = read_only_counters[i];

		if (!strcmp(name, "pages_volatile"))
			before = 0;
		else
			ASSERT_EQ(0, ksm_read(name, &before));
		snprintf(path, sizeof(path), KSM_SYSFS_DIR "%s", name);
		fd = open(path, O_WRONLY);
		if (fd >= 0) {
			ret = write(fd, "12345\n", 6);
			EXPECT_EQ(-1, ret) TH_LOG("write to %s succeeded", path);
			close(fd);
		} else {
			EXPECT_EQ(EACCES, errno) TH_LOG("open(%s): %s", path,
							strerror(errno));
		}
		if (strcmp(name, "pages_volatile")) {
			ASSERT_EQ(0, ksm_read(name, &after));
			EXPECT_EQ(before, after) TH_LOG("%s changed", name);
		}
	}
}

struct knob_input {
	const char *knob;
	const char *input;
	unsigned long expect;
};

/* What kstrtouint() accepts: decimal, an optional '+' and one newline. */
static const struct knob_input valid_inputs[] = {
	{ "pages_to_scan", "0", 0 },
	{ "pages_to_scan", "1", 1 },
	{ "pages_to_scan", "4294967295", 4294967295UL },
	{ "pages_to_scan", "+7", 7 },
	{ "pages_to_scan", "8\n", 8 },
	{ "pages_to_scan", "100", 100 },
	{ "sleep_millisecs", "0", 0 },
	{ "sleep_millisecs", "1", 1 },
	{ "sleep_millisecs", "4294967295", 4294967295UL },
	{ "sleep_millisecs", "+7", 7 },
	{ "sleep_millisecs", "8\n", 8 },
	{ "sleep_millisecs", "20", 20 },
	{ "run", "0", 0 },
	{ "run", "1\n", 1 },
	{ "run", "0\n", 0 },
	{ "run", "+1", 1 },
	{ "run", "2", 2 },
	{ "run", "1", 1 },
	{ "run", "2\n", 2 },
};

TEST_F(knobs, accepts_valid_values)
{
	const struct knob_input *v;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(valid_inputs); i++) {
		v = &valid_inputs[i];
		EXPECT_EQ(0, ksm_write_str(v->knob, v->input))
			TH_LOG("%s rejected \"%s\"", v->knob, v->input);
		EXPECT_EQ(v->expect, ksm_get(v->knob))
			TH_LOG("%s after \"%s\"", v->knob, v->input);
	}
}

/*
 * Junk is refused with EINVAL and the old value stays.  kstrtouint() takes
 * no sign but '+', no space, no base prefix, nothing after the digits but
 * one newline, and nothing above UINT_MAX.
 */
static const char * const junk_inputs[] = {
	"\n", "-1", "-0", "99999999999999999999", "4294967296", "abc",
	"12abc", "0x10", " 5", "5 ", "5\n\n", "1.5", "+", "++1",
};

FIXTURE(junk) {
	struct ksm_saved saved;
};

FIXTURE_VARIANT(junk) {
	const char *knob;
	unsigned long good;		/* value set before the junk */
	const char * const *extra;	/* more junk for this knob only */
};

static const char * const run_extra_junk[] = { "3", "4", "10", NULL };

FIXTURE_VARIANT_ADD(junk, run) {
	.knob = "run",
	.good = 0,
	.extra = run_extra_junk,
};

FIXTURE_VARIANT_ADD(junk, pages_to_scan) {
	.knob = "pages_to_scan",
	.good = 123,
};

FIXTURE_VARIANT_ADD(junk, sleep_millisecs) {
	.knob = "sleep_millisecs",
	.good = 37,
};

FIXTURE_SETUP(junk)
{
	const char *skip = ksm_skip_reason(false);

	if (skip)
		SKIP(return, "%s", skip);
	ksm_save(&self->saved);
	ASSERT_EQ(0, ksm_set("run", 2));
}

FIXTURE_TEARDOWN(junk)
{
	ksm_restore(&self->saved);
}

static void check_junk(struct __test_metadata *_metadata, const char *knob,
		       const char *junk, unsigned long good)
{
	EXPECT_EQ(-EINVAL, ksm_write_str(knob, junk))
		TH_LOG("%s: writing \"%s\"", knob, junk);
	EXPECT_EQ(good, ksm_get(knob))
		TH_LOG("%s: value changed by \"%s\"", knob, junk);
}

TEST_F(junk, rejected_and_value_kept)
{
	size_t i;

	ASSERT_EQ(0, ksm_set(variant->knob, variant->good));
	ASSERT_EQ(variant->good, ksm_get(variant->knob));
	for (i = 0; i < ARRAY_SIZE(junk_inputs); i++)
		check_junk(_metadata, variant->knob, junk_inputs[i],
			   variant->good);
	for (i = 0; variant->extra && variant->extra[i]; i++)
		check_junk(_metadata, variant->knob, variant->extra[i],
			   variant->good);
}

/*
 * run=1 makes full scans happen; run=0 and run=2 stop them at once (a
 * write to run waits for the scan batch in progress).
 */
TEST_F_TIMEOUT(knobs, run_starts_and_stops_ksmd, KSM_TEST_TIMEOUT)
{
	unsigned long scans, scanned;

	ASSERT_EQ(0, map_keeper(&self->keeper, 64));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_scans(2, KSM_WAIT_SECS))
		TH_LOG("run=1: full_scans did not advance");
	ASSERT_EQ(0, ksm_wait_for(own_one_frame, &self->keeper, KSM_WAIT_SECS))
		TH_LOG("run=1: identical pages not merged");

	ASSERT_EQ(0, ksm_set("run", 0));
	scans = ksm_get("full_scans");
	scanned = ksm_get("pages_scanned");
	sleep(2);
	EXPECT_EQ(scans, ksm_get("full_scans")) TH_LOG("run=0 still scans");
	EXPECT_EQ(scanned, ksm_get("pages_scanned"));
	/* run=0 keeps what was merged. */
	EXPECT_TRUE(own_one_frame(&self->keeper));

	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_scans(2, KSM_WAIT_SECS))
		TH_LOG("run=1 after run=0: full_scans did not advance");

	ASSERT_EQ(0, ksm_set("run", 2));
	scans = ksm_get("full_scans");
	scanned = ksm_get("pages_scanned");
	sleep(2);
	EXPECT_EQ(scans, ksm_get("full_scans")) TH_LOG("run=2 still scans");
	EXPECT_EQ(scanned, ksm_get("pages_scanned"));
	EXPECT_EQ(0, ksm_get("pages_shared"));
	EXPECT_EQ(0, ksm_get("pages_sharing"));
	EXPECT_FALSE(own_one_frame(&self->keeper)) TH_LOG("run=2 left pages merged");
}

/* pages_to_scan=0 is accepted, and a running ksmd then scans nothing. */
TEST_F_TIMEOUT(knobs, pages_to_scan_zero_scans_nothing, KSM_TEST_TIMEOUT)
{
	unsigned long scans, scanned;

	ASSERT_EQ(0, map_keeper(&self->keeper, 64));
	ASSERT_EQ(0, ksm_set("pages_to_scan", 0));
	ASSERT_EQ(0, ksm_set("run", 1));
	scans = ksm_get("full_scans");
	scanned = ksm_get("pages_scanned");
	sleep(2);
	EXPECT_EQ(scans, ksm_get("full_scans"));
	EXPECT_EQ(scanned, ksm_get("pages_scanned"));

	ASSERT_EQ(0, ksm_set("pages_to_scan", 1000));
	EXPECT_EQ(0, ksm_wait_scans(2, KSM_WAIT_SECS))
		TH_LOG("pages_to_scan 0 -> 1000: ksmd did not resume");
}

/* ksmd never scans more than pages_to_scan pages per wake-up. */
TEST_F_TIMEOUT(knobs, pages_to_scan_bounds_each_wakeup, KSM_TEST_TIMEOUT)
{
	static const unsigned long batches[] = { 4, 32 };
	const unsigned long sleep_ms = 500;
	unsigned long grown, elapsed;
	size_t i;

	ASSERT_EQ(0, map_keeper(&self->keeper, KEEPER_PAGES));
	ASSERT_EQ(0, ksm_set("sleep_millisecs", sleep_ms));
	for (i = 0; i < ARRAY_SIZE(batches); i++) {
		ASSERT_EQ(0, ksm_set("run", 0));
		ASSERT_EQ(0, ksm_set("pages_to_scan", batches[i]));
		ASSERT_EQ(0, ksm_set("run", 1));
		/* It does scan ... */
		ASSERT_EQ(0, wait_scanned(2 * batches[i], KSM_WAIT_SECS))
			TH_LOG("pages_to_scan=%lu: nothing scanned", batches[i]);
		/* ... but no more than allowed. */
		grown = scanned_during(3000, &elapsed);
		TH_LOG("pages_to_scan=%lu: %lu pages in %lu ms (at most %lu)",
		       batches[i], grown, elapsed,
		       max_scanned(elapsed, batches[i], sleep_ms));
		EXPECT_LE(grown, max_scanned(elapsed, batches[i], sleep_ms))
			TH_LOG("pages_to_scan=%lu sleep_millisecs=%lu: %lu pages in %lu ms",
			       batches[i], sleep_ms, grown, elapsed);
	}
}

/* sleep_millisecs sets the pause between wake-ups. */
TEST_F_TIMEOUT(knobs, sleep_millisecs_bounds_rate, KSM_TEST_TIMEOUT)
{
	const unsigned long batch = 8, long_sleep = 60000;
	unsigned long grown, elapsed;

	ASSERT_EQ(0, map_keeper(&self->keeper, KEEPER_PAGES));
	ASSERT_EQ(0, ksm_set("pages_to_scan", batch));
	ASSERT_EQ(0, ksm_set("sleep_millisecs", 10));
	ASSERT_EQ(0, ksm_set("run", 1));
	/* Short sleeps: many wake-ups. */
	ASSERT_EQ(0, wait_scanned(10 * batch, KSM_WAIT_SECS))
		TH_LOG("sleep_millisecs=10: ksmd does not scan");

	/* A minute's sleep: at most the batch in flight and one more. */
	ASSERT_EQ(0, ksm_set("sleep_millisecs", long_sleep));
	sleep(1);
	grown = scanned_during(3000, &elapsed);
	TH_LOG("sleep_millisecs=%lu: %lu pages in %lu ms (at most %lu)",
	       long_sleep, grown, elapsed,
	       max_scanned(elapsed, batch, long_sleep));
	EXPECT_LE(grown, max_scanned(elapsed, batch, long_sleep))
		TH_LOG("sleep_millisecs=%lu: %lu pages in %lu ms", long_sleep,
		       grown, elapsed);

	/* Back to short sleeps (at the latest when the long one ends). */
	ASSERT_EQ(0, ksm_set("sleep_millisecs", 10));
	EXPECT_EQ(0, wait_scanned(10 * batch, KSM_WAIT_SECS))
		TH_LOG("sleep_millisecs=10 again: ksmd does not scan");
}

TEST_HARNESS_MAIN
