// SPDX-License-Identifier: GPL-2.0
/*
 * The tracepoints of include/trace/events/ksm.h, read through tracefs,
 * fire where their names say, with the fields upstream 6.12 gives them:
 *
 *   ksm_start_scan, ksm_stop_scan  once per full scan; seq is full_scans
 *                                  before the scan completes
 *   ksm_enter, ksm_exit            an mm's first MADV_MERGEABLE, and the
 *                                  exit of the process (from __ksm_exit(),
 *                                  whether ksmd runs or not)
 *   ksm_merge_with_ksm_page        a page merged; "ksm pfn" is the KSM page
 *   ksm_merge_one_page             a page merged with the zero page
 *                                  (use_zero_pages)
 *   ksm_remove_ksm_page            a KSM page goes away (run=2, or freed)
 *   ksm_remove_rmap_item           a stable node is dropped while items
 *                                  still point at it (its page was freed)
 *
 * The ksm_advisor event is tested by ksm_advisor.
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

#define NPAGES	8

FIXTURE(trace) {
	struct ksm_saved saved;
	struct ksm_worker w[2];
	char *text;
};

FIXTURE_SETUP(trace)
{
	self->text = NULL;
	KSM_FIXTURE_BEGIN();
	if (access(TRACEFS_DIR "events/ksm", F_OK))
		SKIP(return, "no %sevents/ksm (tracefs, CONFIG_TRACING)",
		     TRACEFS_DIR);
	ASSERT_EQ(0, ksm_prepare(1000, 10));
}

FIXTURE_TEARDOWN(trace)
{
	int i;

	trace_ksm_stop();
	for (i = 0; i < 2; i++)
		worker_stop(&self->w[i]);
	ksm_restore(&self->saved);
	free(self->text);
}

/* The trace, with the events stopped. */
static char *stop_and_read(struct __test_metadata *_metadata)
{
	char *text;

	trace_ksm_stop();
	text = trace_read();
	if (!text)
		TH_LOG("cannot read %strace", TRACEFS_DIR);
	return text;
}

/* Does @line (up to @end) come from task @pid ("comm-PID [cpu] ...")? */
static bool line_of_pid(const char *line, const char *end, pid_t pid)
{
	char pat[32];
	const char *p;

	snprintf(pat, sizeof(pat), "-%d ", pid);
	p = strstr(line, pat);
	return p && p < end;
}

/*
 * Each line of @text for @event, in order: calls @fn(line, fields, end,
 * arg), @fields pointing after "event: ".
 */
typedef int (*event_fn)(const char *line, const char *p, const char *end,
			void *arg);

static int walk_events(const char *text, const char *event, event_fn fn,
		       void *arg)
{
	char pat[64];
	const char *line, *end;
	int n = 0;

	snprintf(pat, sizeof(pat), " %s: ", event);
	for (line = text; *line; line = end + 1) {
		const char *hit;

		end = strchrnul(line, '\n');
		hit = strstr(line, pat);
		if (*line != '#' && hit && hit < end) {
			n++;
			if (fn && fn(line, hit + strlen(pat), end, arg))
				break;
		}
		if (!*end)
			break;
	}
	return n;
}

/* Two workers with NPAGES identical pages, merged. */
static void merge_two(struct __test_metadata *_metadata,
		      struct ksm_worker *w, uint64_t base)
{
	struct same_frames sf = { w, 2, 0, NPAGES };
	uint64_t *tags = make_tags(NPAGES, base);

	ASSERT_NE(NULL, tags);
	ASSERT_EQ(0, worker_start(&w[0], tags, NPAGES));
	ASSERT_EQ(0, worker_start(&w[1], tags, NPAGES));
	free(tags);
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(frames_shared, &sf, KSM_WAIT_SECS))
		TH_LOG("identical pages not merged");
	ASSERT_EQ(0, ksm_set("run", 0));
}

struct scan_seq {
	char kind[NPAGES * 8];	/* 's'tart or 'S'top, in order */
	long seq[NPAGES * 8];
	int n;
};

/* ksm_start_scan and ksm_stop_scan, merged in trace order. */
static void scan_events(const char *text, struct scan_seq *s)
{
	const char *line, *end;

	s->n = 0;
	for (line = text; *line; line = end + 1) {
		const char *hit;

		end = strchrnul(line, '\n');
		if (*line != '#' && s->n < (int)sizeof(s->kind)) {
			hit = strstr(line, " ksm_start_scan: ");
			if (hit && hit < end &&
			    sscanf(hit + 17, "seq %ld", &s->seq[s->n]) == 1)
				s->kind[s->n++] = 's';
			hit = strstr(line, " ksm_stop_scan: ");
			if (hit && hit < end &&
			    sscanf(hit + 16, "seq %ld", &s->seq[s->n]) == 1)
				s->kind[s->n++] = 'S';
		}
		if (!*end)
			break;
	}
}

static const char * const scan_ev[] = {
	"ksm_start_scan", "ksm_stop_scan", NULL
};

/* One start and one stop per full scan, in turn. */
TEST_F_TIMEOUT(trace, start_stop_per_full_scan, KSM_TEST_TIMEOUT)
{
	unsigned long before, after;
	struct scan_seq s;
	int i, stops = 0;
	uint64_t *tags = make_tags(NPAGES, 0x7a0000);

	ASSERT_NE(NULL, tags);
	ASSERT_EQ(0, worker_start(&self->w[0], tags, NPAGES));
	free(tags);
	ASSERT_EQ(0, trace_ksm_start(scan_ev));
	before = ksm_get("full_scans");
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_scans(4, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_set("run", 0));
	after = ksm_get("full_scans");
	self->text = stop_and_read(_metadata);
	ASSERT_NE(NULL, self->text);
	scan_events(self->text, &s);
	ASSERT_LT(0, s.n);
	ASSERT_GT((int)sizeof(s.kind), s.n) TH_LOG("too many scans to check");
	for (i = 0; i < s.n; i++) {
		EXPECT_EQ(i % 2 ? 'S' : 's', s.kind[i])
			TH_LOG("event %d out of turn", i);
		if (s.kind[i] == 'S')
			stops++;
	}
	EXPECT_EQ(after - before, stops)
		TH_LOG("full_scans %lu -> %lu, %d ksm_stop_scan", before, after,
		       stops);
	/* A pass begun before run=0 may still be open. */
	EXPECT_TRUE(s.n == 2 * stops || s.n == 2 * stops + 1);
}

/*
 * Upstream's seq: full_scans when the scan began, in both events of a
 * scan (ksm_scan.seqnr, counted up after ksm_stop_scan).
 */
TEST_F_TIMEOUT(trace, scan_seq_is_full_scans, KSM_TEST_TIMEOUT)
{
	unsigned long before;
	struct scan_seq s;
	int i, stops = 0;
	uint64_t *tags = make_tags(NPAGES, 0x7b0000);

	ASSERT_NE(NULL, tags);
	ASSERT_EQ(0, worker_start(&self->w[0], tags, NPAGES));
	free(tags);
	ASSERT_EQ(0, trace_ksm_start(scan_ev));
	before = ksm_get("full_scans");
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_scans(3, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_set("run", 0));
	self->text = stop_and_read(_metadata);
	ASSERT_NE(NULL, self->text);
	scan_events(self->text, &s);
	for (i = 0; i < s.n; i++) {
		long want = before + stops;

		EXPECT_EQ(want, s.seq[i])
			TH_LOG("ksm_%s_scan %d: seq %ld, full_scans was %ld",
			       s.kind[i] == 's' ? "start" : "stop", i, s.seq[i],
			       want);
		if (s.kind[i] == 'S')
			stops++;
	}
}

struct mm_of {
	pid_t pid;
	char mm[40];
	int n;
};

/* The hashed "mm %p" of a ksm_enter event. */
static int find_enter(const char *line, const char *p, const char *end,
		      void *arg)
{
	struct mm_of *m = arg;

	if (!line_of_pid(line, end, m->pid))
		return 0;
	if (sscanf(p, "mm %39s", m->mm) == 1)
		m->n++;
	return 0;
}

static int count_mm(const char *line, const char *p, const char *end,
		    void *arg)
{
	struct mm_of *m = arg;
	char mm[40];

	if (sscanf(p, "mm %39s", mm) == 1 && !strcmp(mm, m->mm))
		m->n++;
	return 0;
}

/*
 * One ksm_enter, from the process, at its first MADV_MERGEABLE (not at a
 * second); one ksm_exit for the same mm when it exits.
 */
static void enter_exit(struct __test_metadata *_metadata,
		       FIXTURE_DATA(trace) *self, bool merged)
{
	static const char * const ev[] = { "ksm_enter", "ksm_exit", NULL };
	struct mm_of m = { 0 };
	uint64_t *tags = make_tags(NPAGES, 0x7c0000);
	pid_t pid;

	ASSERT_NE(NULL, tags);
	ASSERT_EQ(0, trace_ksm_start(ev));
	ASSERT_EQ(0, worker_start(&self->w[0], tags, NPAGES));
	pid = self->w[0].pid;
	/* Not a first time: no event. */
	ASSERT_EQ(0, worker_madvise(&self->w[0], 0, NPAGES / 2, MADV_MERGEABLE));
	if (merged) {
		/* All pages alike: ksmd has items and a KSM page. */
		size_t i;

		for (i = 1; i < NPAGES; i++)
			ASSERT_EQ(0, worker_write(&self->w[0], i, tags[0]));
		ASSERT_EQ(0, ksm_set("run", 1));
		ASSERT_EQ(0, ksm_wait_for(all_one_frame, &self->w[0],
					  KSM_WAIT_SECS));
		/* ksmd stopped: the exit is the process's business alone. */
		ASSERT_EQ(0, ksm_set("run", 0));
	}
	free(tags);
	ASSERT_EQ(0, worker_stop(&self->w[0]));
	usleep(100000);
	self->text = stop_and_read(_metadata);
	ASSERT_NE(NULL, self->text);

	m.pid = pid;
	walk_events(self->text, "ksm_enter", find_enter, &m);
	ASSERT_EQ(1, m.n) TH_LOG("%d ksm_enter events from pid %d", m.n, pid);
	m.n = 0;
	walk_events(self->text, "ksm_enter", count_mm, &m);
	EXPECT_EQ(1, m.n) TH_LOG("%d ksm_enter events for mm %s", m.n, m.mm);
	m.n = 0;
	walk_events(self->text, "ksm_exit", count_mm, &m);
	EXPECT_EQ(1, m.n) TH_LOG("%d ksm_exit events for mm %s%s", m.n, m.mm,
				 merged ? " (merged, ksmd stopped)" : "");
}

TEST_F_TIMEOUT(trace, enter_and_exit, KSM_TEST_TIMEOUT)
{
	enter_exit(_metadata, self, false);
}

TEST_F_TIMEOUT(trace, exit_of_merged_process, KSM_TEST_TIMEOUT)
{
	enter_exit(_metadata, self, true);
}

struct pfn_set {
	unsigned long pfn[NPAGES];
	int hits[NPAGES];
	int other, errors;
	const char *prefix;	/* "ksm pfn " or "pfn " */
};

static int note_pfn(const char *line, const char *p, const char *end,
		    void *arg)
{
	struct pfn_set *s = arg;
	size_t len = strlen(s->prefix);
	unsigned long pfn;
	const char *e;
	int i;

	if (strncmp(p, s->prefix, len))
		return 0;
	e = strstr(p, " error ");
	if (e && e < end && atoi(e + 7)) {
		s->errors++;
		return 0;
	}
	if (sscanf(p + len, "%lu", &pfn) != 1)
		return 0;
	for (i = 0; i < NPAGES; i++) {
		if (s->pfn[i] == pfn) {
			s->hits[i]++;
			return 0;
		}
	}
	s->other++;
	return 0;
}

static void shared_pfns(struct ksm_worker *w, struct pfn_set *s)
{
	int i;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < NPAGES; i++)
		s->pfn[i] = worker_pfn(w, i);
}

/* A merge is reported by ksm_merge_with_ksm_page, for the KSM page. */
TEST_F_TIMEOUT(trace, merge_names_ksm_page, KSM_TEST_TIMEOUT)
{
	static const char * const ev[] = {
		"ksm_merge_with_ksm_page", "ksm_merge_one_page", NULL
	};
	struct pfn_set s;
	int i, n;

	ASSERT_EQ(0, trace_ksm_start(ev));
	merge_two(_metadata, self->w, 0x7d0000);
	self->text = stop_and_read(_metadata);
	ASSERT_NE(NULL, self->text);

	shared_pfns(&self->w[0], &s);
	s.prefix = "ksm pfn ";
	n = walk_events(self->text, "ksm_merge_with_ksm_page", note_pfn, &s);
	TH_LOG("%d ksm_merge_with_ksm_page events: %d with a failure, %d naming another frame",
	       n, s.errors, s.other);
	for (i = 0; i < NPAGES; i++) {
		EXPECT_LE(1, s.hits[i])
			TH_LOG("page %d: no successful merge into KSM page %lu",
			       i, s.pfn[i]);
	}
	EXPECT_EQ(0, s.other) TH_LOG("successful merges named a frame that is no KSM page");
}

/* use_zero_pages: upstream reports the merge with ksm_merge_one_page. */
TEST_F_TIMEOUT(trace, zero_page_merge, KSM_TEST_TIMEOUT)
{
	static const char * const ev[] = { "ksm_merge_one_page", NULL };
	unsigned long zpfn = zero_pfn();
	uint64_t tags[NPAGES];
	char match[64];
	int i, n;

	ASSERT_NE(0, zpfn);
	for (i = 0; i < NPAGES; i++)
		tags[i] = TAG_ZERO;
	ASSERT_EQ(0, ksm_set("use_zero_pages", 1));
	ASSERT_EQ(0, trace_ksm_start(ev));
	ASSERT_EQ(0, worker_start(&self->w[0], tags, NPAGES));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_for(all_one_frame, &self->w[0], KSM_WAIT_SECS));
	ASSERT_EQ(zpfn, worker_pfn(&self->w[0], 0));
	ASSERT_EQ(0, ksm_set("run", 0));
	self->text = stop_and_read(_metadata);
	ASSERT_NE(NULL, self->text);
	snprintf(match, sizeof(match), "ksm pfn %lu ", zpfn);
	n = trace_count(self->text, "ksm_merge_one_page", match);
	EXPECT_LE(NPAGES, n) TH_LOG("%d ksm_merge_one_page events for the zero page (pfn %lu)",
				    n, zpfn);
}

static const char * const remove_ev[] = {
	"ksm_remove_ksm_page", "ksm_remove_rmap_item", NULL
};

/* run=2: every KSM page goes, each reported once, by its frame. */
TEST_F_TIMEOUT(trace, remove_on_unmerge, KSM_TEST_TIMEOUT)
{
	struct pfn_set s;
	int i;

	merge_two(_metadata, self->w, 0x7e0000);
	shared_pfns(&self->w[0], &s);
	ASSERT_EQ(0, trace_ksm_start(remove_ev));
	ASSERT_EQ(0, ksm_set("run", 2));
	self->text = stop_and_read(_metadata);
	ASSERT_NE(NULL, self->text);
	s.prefix = "pfn ";
	walk_events(self->text, "ksm_remove_ksm_page", note_pfn, &s);
	for (i = 0; i < NPAGES; i++) {
		EXPECT_EQ(1, s.hits[i]) TH_LOG("KSM page %lu: %d removals",
					       s.pfn[i], s.hits[i]);
	}
	EXPECT_EQ(0, s.other);
	EXPECT_EQ(0, worker_check(&self->w[0]));
	EXPECT_EQ(0, worker_check(&self->w[1]));
}

/*
 * Both processes drop their mappings: the KSM pages are freed under
 * their stable nodes, which ksmd then drops with the items still on
 * them.
 */
TEST_F_TIMEOUT(trace, remove_when_freed, KSM_TEST_TIMEOUT)
{
	struct pfn_set s, r;
	int i;

	merge_two(_metadata, self->w, 0x7f0000);
	shared_pfns(&self->w[0], &s);
	r = s;
	ASSERT_EQ(0, trace_ksm_start(remove_ev));
	ASSERT_EQ(0, worker_madvise(&self->w[0], 0, NPAGES, MADV_DONTNEED));
	ASSERT_EQ(0, worker_madvise(&self->w[1], 0, NPAGES, MADV_DONTNEED));
	ASSERT_EQ(0, ksm_set("run", 1));
	ASSERT_EQ(0, ksm_wait_scans(KSM_SETTLE_SCANS, KSM_WAIT_SECS));
	ASSERT_EQ(0, ksm_set("run", 0));
	self->text = stop_and_read(_metadata);
	ASSERT_NE(NULL, self->text);
	EXPECT_EQ(0, ksm_get("pages_shared"));
	s.prefix = "pfn ";
	walk_events(self->text, "ksm_remove_ksm_page", note_pfn, &s);
	r.prefix = "pfn ";
	walk_events(self->text, "ksm_remove_rmap_item", note_pfn, &r);
	for (i = 0; i < NPAGES; i++) {
		EXPECT_EQ(1, s.hits[i]) TH_LOG("KSM page %lu: %d removals",
					       s.pfn[i], s.hits[i]);
		EXPECT_LE(1, r.hits[i]) TH_LOG("KSM page %lu: no item removed",
					       s.pfn[i]);
	}
	EXPECT_EQ(0, s.other);
	EXPECT_EQ(0, r.other);
}

TEST_HARNESS_MAIN
