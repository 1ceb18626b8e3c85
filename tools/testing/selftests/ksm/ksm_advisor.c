// SPDX-License-Identifier: GPL-2.0
/*
 * The scan-time advisor (6.8+): advisor_mode=scan-time takes over
 * pages_to_scan (writes to it fail with EINVAL), starts it at
 * advisor_min_pages_to_scan and sets it after every full scan within
 * [advisor_min_pages_to_scan, advisor_max_pages_to_scan], reporting each
 * decision through the ksm_advisor tracepoint; advisor_mode=none gives
 * pages_to_scan back, at upstream's default of 100.  Bad values to the
 * advisor's knobs are ksm_sysfs's business.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../kselftest_harness.h"
#include "ksm_common.h"

/* Enough pages that a pass at MIN_PAGES per wake-up outlasts TARGET_S. */
#define NPAGES		512
#define MIN_PAGES	10
#define MAX_PAGES	1000
#define TARGET_S	1
#define SLEEP_MS	50

FIXTURE(advisor) {
	struct ksm_saved saved;
	struct ksm_worker w;
	bool tracing;
};

FIXTURE_SETUP(advisor)
{
	const char *skip = ksm_skip_reason(false);

	memset(&self->w, 0, sizeof(self->w));
	self->tracing = false;
	if (skip)
		SKIP(return, "%s", skip);
	if (ksm_advisor_mode() == ADVISOR_ABSENT)
		SKIP(return, "no %sadvisor_mode", KSM_SYSFS_DIR);
	ksm_save(&self->saved);
	ASSERT_EQ(0, ksm_prepare(100, SLEEP_MS));
	ASSERT_EQ(ADVISOR_NONE, ksm_advisor_mode());
}

FIXTURE_TEARDOWN(advisor)
{
	if (self->tracing)
		trace_ksm_stop();
	worker_stop(&self->w);
	ksm_restore(&self->saved);
}

TEST_F(advisor, owns_pages_to_scan)
{
	ASSERT_EQ(0, ksm_set("pages_to_scan", 1234));
	ASSERT_EQ(0, ksm_set("advisor_min_pages_to_scan", 600));
	ASSERT_EQ(0, ksm_set_advisor_mode(ADVISOR_SCAN_TIME));
	EXPECT_EQ(ADVISOR_SCAN_TIME, ksm_advisor_mode());
	/* It starts from its minimum ... */
	EXPECT_EQ(600, ksm_get("pages_to_scan"));
	/* ... and nobody else may write it. */
	EXPECT_EQ(-EINVAL, ksm_set("pages_to_scan", 100));
	EXPECT_EQ(-EINVAL, ksm_set("pages_to_scan", 600));
	EXPECT_EQ(600, ksm_get("pages_to_scan"));
	/* Again: no change, the advisor stays, pages_to_scan too. */
	ASSERT_EQ(0, ksm_set_advisor_mode(ADVISOR_SCAN_TIME));
	EXPECT_EQ(600, ksm_get("pages_to_scan"));

	ASSERT_EQ(0, ksm_set_advisor_mode(ADVISOR_NONE));
	EXPECT_EQ(ADVISOR_NONE, ksm_advisor_mode());
	EXPECT_EQ(0, ksm_set("pages_to_scan", 77));
	EXPECT_EQ(77, ksm_get("pages_to_scan"));
}

/* Upstream's set_advisor_defaults(): back to none is back to 100. */
TEST_F(advisor, none_sets_default_pages_to_scan)
{
	ASSERT_EQ(0, ksm_set("pages_to_scan", 1234));
	ASSERT_EQ(0, ksm_set_advisor_mode(ADVISOR_SCAN_TIME));
	ASSERT_EQ(0, ksm_set_advisor_mode(ADVISOR_NONE));
	EXPECT_EQ(100, ksm_get("pages_to_scan"))
		TH_LOG("upstream sets pages_to_scan to 100 when the advisor goes");
}

struct advisor_event {
	long long scan_time;
	unsigned long pages;
	unsigned int cpu;
};

/* The ksm_advisor events in @text; how many were parsed into @ev. */
static int parse_advisor(const char *text, struct advisor_event *ev, int max)
{
	const char *p = text;
	int n = 0;

	while (n < max && (p = strstr(p, " ksm_advisor: "))) {
		if (sscanf(p, " ksm_advisor: ksm scan time %lld pages_to_scan %lu cpu percent %u",
			   &ev[n].scan_time, &ev[n].pages, &ev[n].cpu) == 3)
			n++;
		p++;
	}
	return n;
}

/*
 * A pass over NPAGES pages at MIN_PAGES per SLEEP_MS wake-up takes some
 * seconds, well over the TARGET_S-second target: the advisor must raise
 * pages_to_scan, and never leave [MIN_PAGES, MAX_PAGES].
 */
TEST_F_TIMEOUT(advisor, adjusts_within_bounds, KSM_TEST_TIMEOUT)
{
	static const char * const events[] = { "ksm_advisor", NULL };
	unsigned long deadline, pts, start_scans, t0, max_seen = 0;
	struct advisor_event ev[256];
	uint64_t *tags;
	char *text;
	int n, i, ret;

	ASSERT_EQ(0, ksm_set("advisor_max_pages_to_scan", MAX_PAGES));
	ASSERT_EQ(0, ksm_set("advisor_min_pages_to_scan", MIN_PAGES));
	ASSERT_EQ(0, ksm_set("advisor_target_scan_time", TARGET_S));
	ASSERT_EQ(0, ksm_set("advisor_max_cpu", 70));
	ASSERT_EQ(0, ksm_set_advisor_mode(ADVISOR_SCAN_TIME));
	ASSERT_EQ(MIN_PAGES, ksm_get("pages_to_scan"));

	tags = make_tags(NPAGES, 0xad0000);
	ASSERT_NE(NULL, tags);
	ASSERT_EQ(0, worker_start(&self->w, tags, NPAGES));
	free(tags);

	ret = trace_ksm_start(events);
	if (ret)
		TH_LOG("no tracefs event ksm/ksm_advisor (%s): not checking it",
		       strerror(-ret));
	self->tracing = !ret;

	t0 = now_ms();
	start_scans = ksm_get("full_scans");
	ASSERT_EQ(0, ksm_set("run", 1));
	deadline = now_ms() + KSM_WAIT_SECS * 1000UL;
	/* Every value it takes, until 3 full scans are done. */
	while (ksm_get("full_scans") < start_scans + 3 && now_ms() < deadline) {
		pts = ksm_get("pages_to_scan");
		EXPECT_LE(MIN_PAGES, pts);
		EXPECT_GE(MAX_PAGES, pts);
		if (pts > max_seen)
			max_seen = pts;
		usleep(10000);
	}
	ASSERT_LE(start_scans + 3, ksm_get("full_scans"))
		TH_LOG("ksmd made no 3 full scans in %d s", KSM_WAIT_SECS);
	ASSERT_EQ(0, ksm_set("run", 0));
	pts = ksm_get("pages_to_scan");
	if (pts > max_seen)
		max_seen = pts;
	TH_LOG("pages_to_scan %d -> up to %lu in 3 scans", MIN_PAGES, max_seen);
	EXPECT_LT(MIN_PAGES, max_seen) TH_LOG("the advisor never raised it");
	EXPECT_LE(MIN_PAGES, pts);
	EXPECT_GE(MAX_PAGES, pts);

	/* Still the advisor's. */
	EXPECT_EQ(-EINVAL, ksm_set("pages_to_scan", 100));

	if (!self->tracing)
		return;
	trace_ksm_stop();
	self->tracing = false;
	text = trace_read();
	ASSERT_NE(NULL, text);
	n = parse_advisor(text, ev, ARRAY_SIZE(ev));
	free(text);
	/* One per full scan, at least for the three waited for. */
	EXPECT_LE(3, n) TH_LOG("%d ksm_advisor events", n);
	for (i = 0; i < n; i++) {
		EXPECT_LE(MIN_PAGES, ev[i].pages);
		EXPECT_GE(MAX_PAGES, ev[i].pages);
		EXPECT_GE(100, ev[i].cpu);
		/* Upstream reports whole seconds (at least 1). */
		EXPECT_LE(1, ev[i].scan_time);
		EXPECT_GE((long long)(now_ms() - t0) / 1000 + 1, ev[i].scan_time)
			TH_LOG("event %d: scan time %lld, but the test ran %lu s",
			       i, ev[i].scan_time, (now_ms() - t0) / 1000);
	}
	/* The last decision is what pages_to_scan says. */
	if (n)
		EXPECT_EQ(pts, ev[n - 1].pages);
}

TEST_HARNESS_MAIN
