/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KUnit tests of the parts of KSM that need no process: the checksum and
 * the order of contents, the number of page comparisons a stable tree
 * search makes among colliding checksums, and smart_scan's skips.
 *
 * Included at the end of mm/ksm.c, so the tests see its static functions.
 * The stable tree test swaps in a tree of its own under ksm_lock, with
 * pages it allocates and marks as KSM pages of its own nodes; ksmd and the
 * knobs wait meanwhile, and everything is undone before the lock goes.
 */
#ifndef _MM_KSM_KUNIT_H
#define _MM_KSM_KUNIT_H

#include <kunit/test.h>
#include <linux/log2.h>

/*
 * The checksum's blind spot: a pair of words whose flips cancel out,
 * whatever the content.  The word function: bit 63 of words @j and @j + 4
 * (one lane, one step later; (x ^ 2^63) * K = (x * K) ^ 2^63 for odd K).
 * The lane function: bit 63 of word @j, which a step passes on unmixed
 * (the swap of halves takes it to bit 31), and bit 31 of word @j + 16;
 * in fact any 32-bit value XORed into the high half of one and the low
 * half of the other (ksm_test_checksum()).
 */
static void ksm_test_flip_pair(u64 *w, unsigned int j, bool lanes)
{
	w[j] ^= BIT_ULL(63);
	if (lanes)
		w[j + KSM_LANES] ^= BIT_ULL(31);
	else
		w[j + 4] ^= BIT_ULL(63);
}

/* The distance between the words of a pair, in this kernel's checksum */
static unsigned int ksm_test_stride(void)
{
	return ksm_simd_on() ? KSM_LANES : 4;
}

/* A page of @word everywhere, with the pair of word @i flipped */
static void ksm_test_fill(struct page *page, u64 word, int i)
{
	u64 *w = kmap_local_page(page);
	unsigned int j;

	for (j = 0; j < PAGE_SIZE / sizeof(u64); j++)
		w[j] = word;
	if (i >= 0)
		ksm_test_flip_pair(w, i, ksm_simd_on());
	kunmap_local(w);
}

static void ksm_test_free_page(void *page)
{
	__free_page(page);
}

/* A page, freed when the test ends, whatever way it ends */
static struct page *ksm_test_page(struct kunit *test)
{
	struct page *page = alloc_page(GFP_KERNEL);
	int err;

	KUNIT_ASSERT_NOT_NULL(test, page);
	err = kunit_add_action_or_reset(test, ksm_test_free_page, page);
	KUNIT_ASSERT_EQ(test, 0, err);
	return page;
}

/*
 * The checksum is no defence: flipping a pair of words (see
 * ksm_test_flip_pair()) leaves it unchanged, for any content.  The trees
 * must bear that (see the next tests); this one pins the fact down, for
 * both functions, and that any one word still counts.
 */
static void ksm_test_checksum(struct kunit *test)
{
	struct page *a = ksm_test_page(test), *b = ksm_test_page(test);
	unsigned int i, n = PAGE_SIZE / sizeof(u64);
	u64 *w;
	u32 zero;

	ksm_test_fill(a, 0, -1);
	zero = page_checksum(a);
	KUNIT_EXPECT_EQ(test, zero, ksm_zero_checksum);
	for (i = 0; i + ksm_test_stride() < n; i += 61) {
		ksm_test_fill(b, 0, i);
		KUNIT_EXPECT_EQ(test, page_checksum(b), zero);
		KUNIT_EXPECT_FALSE(test, ksm_pages_equal(a, b));
	}
	for (i = 0; i < n; i++) {
		w = kmap_local_page(b);
		memset(w, 0, PAGE_SIZE);
		w[i] = 1;
		kunmap_local(w);
		KUNIT_EXPECT_NE_MSG(test, page_checksum(b), zero, "word %u", i);
	}

	/* Each function's blind spot, in random content */
	w = kmap_local_page(b);
	get_random_bytes(w, PAGE_SIZE);
	zero = ksm_words_sum(w);
	ksm_test_flip_pair(w, 100, false);
	KUNIT_EXPECT_EQ(test, ksm_words_sum(w), zero);
	zero = ksm_lanes_sum_words(w);
	ksm_test_flip_pair(w, 200, true);
	KUNIT_EXPECT_EQ(test, ksm_lanes_sum_words(w), zero);
	for (i = 0; i < 8; i++) {
		u64 d = get_random_u32();

		w[300 + i] ^= d << 32;
		w[300 + i + KSM_LANES] ^= d;
		KUNIT_EXPECT_EQ(test, ksm_lanes_sum_words(w), zero);
	}

	/*
	 * Known answers, which ksm_collide's copies of the two functions
	 * check too: word i holding i * 0x0101010101010101.
	 */
	for (i = 0; i < n; i++)
		w[i] = i * 0x0101010101010101ULL;
	if (PAGE_SIZE == 4096) {
		KUNIT_EXPECT_EQ(test, ksm_words_sum(w), 0xe1755836U);
		KUNIT_EXPECT_EQ(test, ksm_lanes_sum_words(w), 0x8dd9b146U);
	}
	kunmap_local(w);
}

/*
 * The AVX2 code computes what its word-by-word twin does (a page's
 * checksum must not depend on where it is taken), and finds the first
 * 128 bytes that differ.
 */
static void ksm_test_simd(struct kunit *test)
{
	struct page *a = ksm_test_page(test), *b = ksm_test_page(test);
	unsigned int i, n = PAGE_SIZE / sizeof(u64);
	u64 *x, *y;
	bool __maybe_unused usable;
	u32 __maybe_unused sum;

	if (!ksm_simd_usable())
		kunit_skip(test, "no AVX2 here");
	x = kmap_local_page(a);
	y = kmap_local_page(b);
	memset(x, 0, PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, ksm_lanes_sum_avx2(x), ksm_lanes_sum_words(x));
	get_random_bytes(x, PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, ksm_lanes_sum_avx2(x), ksm_lanes_sum_words(x));
	memcpy(y, x, PAGE_SIZE);
	KUNIT_EXPECT_EQ(test, ksm_diff_avx2(x, y), PAGE_SIZE);
	for (i = 0; i < n; i += 5) {
		y[i] ^= BIT_ULL(i % 64);
		KUNIT_EXPECT_EQ_MSG(test, ksm_lanes_sum_avx2(y),
				    ksm_lanes_sum_words(y), "word %u", i);
		KUNIT_EXPECT_EQ_MSG(test, ksm_diff_avx2(x, y),
				    i * sizeof(u64) & ~127UL, "word %u", i);
		y[i] ^= BIT_ULL(i % 64);
	}

#if defined(CONFIG_X86_64) && !defined(CONFIG_UML)
	/* Where SIMD may not be used, the same checksum, word by word */
	kernel_fpu_begin();
	usable = ksm_simd_usable();
	sum = page_checksum(b);
	kernel_fpu_end();
	KUNIT_EXPECT_FALSE(test, usable);
	KUNIT_EXPECT_EQ(test, sum, page_checksum(b));
#endif

	/* The first difference decides: word 3 down, 40 up */
	x[3] = 100;
	x[17] = 100;
	x[26] = 100;
	x[40] = 100;
	memcpy(y, x, PAGE_SIZE);
	y[3] = 99;
	y[40] = 101;
	KUNIT_EXPECT_GT(test, ksm_pages_cmp(a, b), 0);
	KUNIT_EXPECT_LT(test, ksm_pages_cmp(b, a), 0);
	/* Word 17 up, 26 down: the two halves of one 128-byte block */
	y[3] = 100;
	y[17] = 101;
	y[26] = 99;
	KUNIT_EXPECT_LT(test, ksm_pages_cmp(a, b), 0);
	KUNIT_EXPECT_GT(test, ksm_pages_cmp(b, a), 0);
	kunmap_local(y);
	kunmap_local(x);
}

/* ksm_pages_cmp() is a total order: equal, antisymmetric, any word */
static void ksm_test_pages_cmp(struct kunit *test)
{
	struct page *a = ksm_test_page(test), *b = ksm_test_page(test);
	unsigned int i;

	ksm_test_fill(a, 0x5555, -1);
	ksm_test_fill(b, 0x5555, -1);
	KUNIT_EXPECT_EQ(test, ksm_pages_cmp(a, b), 0);
	for (i = 0; i < PAGE_SIZE / sizeof(u64); i += 7) {
		u64 *w = kmap_local_page(b);

		w[i] = 0x5556;
		kunmap_local(w);
		KUNIT_EXPECT_LT_MSG(test, ksm_pages_cmp(a, b), 0, "word %u", i);
		KUNIT_EXPECT_GT_MSG(test, ksm_pages_cmp(b, a), 0, "word %u", i);
		w = kmap_local_page(b);
		w[i] = 0x5555;
		kunmap_local(w);
	}
	KUNIT_EXPECT_EQ(test, ksm_pages_cmp(a, b), 0);
}

#define KSM_TEST_NODES	1000

struct ksm_test_tree {
	struct rb_root root;
	struct rb_root *saved;
	int saved_sharing;
	bool saved_across;
	struct ksm_stable *node[KSM_TEST_NODES + 1];
	struct page *page[KSM_TEST_NODES + 1];
};

/*
 * Page @i: all zero but for pairs (ksm_test_flip_pair()) that spell @i,
 * near the end: bit b is the pair at word j of the blocks of 2 * stride
 * words counting down from the end.
 */
static void ksm_test_collider(struct page *page, unsigned int i)
{
	u64 *w = kmap_local_page(page);
	unsigned int b, n = PAGE_SIZE / sizeof(u64), s = ksm_test_stride();

	memset(w, 0, PAGE_SIZE);
	for (b = 0; (1U << b) <= i; b++) {
		unsigned int j = n - 2 * s * (b / s + 1) + b % s;

		if (i & (1U << b))
			ksm_test_flip_pair(w, j, ksm_simd_on());
	}
	kunmap_local(w);
}

/* A KSM page of content @content, its own node @i, in the test's tree */
static int ksm_test_add_as(struct ksm_test_tree *t, unsigned int i,
			   unsigned int content)
{
	struct folio *folio;

	t->page[i] = alloc_page(GFP_KERNEL);
	if (!t->page[i])
		return -ENOMEM;
	ksm_test_collider(t->page[i], content);
	t->node[i] = stable_alloc(page_checksum(t->page[i]), 0, 0, NULL);
	if (!t->node[i])
		return -ENOMEM;
	folio = page_folio(t->page[i]);
	t->node[i]->pfn = folio_pfn(folio);
	folio_lock(folio);
	folio_set_stable(folio, t->node[i]);
	folio_unlock(folio);
	stable_insert(t->node[i], t->page[i]);
	return 0;
}

static int ksm_test_add(struct ksm_test_tree *t, unsigned int i)
{
	return ksm_test_add_as(t, i, i);
}

/*
 * Take ksm_lock and put one stable tree of the test's own in place of
 * ksmd's, whatever merge_across_nodes says (the tests may run again
 * through debugfs): with per-node trees, a page found on another node
 * would be refiled into a tree the test does not have.
 */
static void ksm_test_tree_init(struct ksm_test_tree *t)
{
	ksm_mutex_lock();
	t->saved = ksm_stable_trees;
	t->saved_sharing = ksm_max_page_sharing;
	t->saved_across = ksm_merge_across_nodes;
	t->root = RB_ROOT;
	ksm_stable_trees = &t->root;
	ksm_merge_across_nodes = true;
}

/* Undo ksm_test_tree_init(), and free the test's nodes and pages. */
static void ksm_test_tree_undo(struct ksm_test_tree *t)
{
	unsigned int i;

	for (i = 0; i <= KSM_TEST_NODES; i++) {
		if (t->node[i])
			stable_free(t->node[i]);
		if (t->page[i]) {
			WRITE_ONCE(t->page[i]->mapping, NULL);
			__free_page(t->page[i]);
		}
	}
	ksm_stable_trees = t->saved;
	ksm_max_page_sharing = t->saved_sharing;
	ksm_merge_across_nodes = t->saved_across;
	mutex_unlock(&ksm_lock);
}

/* A test tree in place (ksm_test_tree_init()), and a probe of @content */
static struct ksm_test_tree *ksm_test_tree_start(struct kunit *test,
						 struct page **probe,
						 unsigned int content)
{
	struct ksm_test_tree *t = kunit_kzalloc(test, sizeof(*t), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, t);
	*probe = ksm_test_page(test);
	ksm_test_collider(*probe, content);
	ksm_test_tree_init(t);
	return t;
}

/*
 * A thousand KSM pages of one checksum, differing only in their last
 * words: a search finds each, and a page of none, with at most one page
 * comparison per level of the tree (2 log2(n + 1) levels at most).
 */
static void ksm_test_stable_collisions(struct kunit *test)
{
	unsigned int i, bound = 2 * ilog2(KSM_TEST_NODES + 1) + 2;
	unsigned long worst = 0;
	struct ksm_test_tree *t;
	struct page *probe;

	t = kunit_kzalloc(test, sizeof(*t), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, t);
	probe = ksm_test_page(test);

	ksm_test_tree_init(t);
	ksm_max_page_sharing = 2;
	for (i = 1; i <= KSM_TEST_NODES; i++) {
		if (ksm_test_add(t, i)) {
			ksm_test_tree_undo(t);
			KUNIT_FAIL(test, "out of memory");
			return;
		}
	}

	for (i = 0; i <= KSM_TEST_NODES + 1; i++) {
		struct page *found;

		ksm_test_collider(probe, i);
		ksm_test_cmps = 0;
		found = stable_search(probe, 0, page_checksum(probe), 0, NULL);
		worst = max(worst, ksm_test_cmps);
		if (i >= 1 && i <= KSM_TEST_NODES) {
			KUNIT_EXPECT_PTR_EQ(test, found, t->page[i]);
		} else {
			/* 0 is the zero page, KSM_TEST_NODES + 1 is new */
			KUNIT_EXPECT_NULL(test, found);
		}
		if (found)
			put_page(found);
	}
	KUNIT_EXPECT_LE(test, worst, bound);
	kunit_info(test, "%d colliding KSM pages: at most %lu comparisons per search (bound %u)\n",
		   KSM_TEST_NODES, worst, bound);

	/*
	 * A second KSM page of a content (max_page_sharing reached) joins
	 * the first's group, and a search finds whichever has room.
	 */
	t->node[0] = stable_alloc(t->node[7]->checksum, 0, 0, NULL);
	t->page[0] = alloc_page(GFP_KERNEL);
	if (t->node[0] && t->page[0]) {
		struct folio *folio = page_folio(t->page[0]);
		struct page *found;

		ksm_test_collider(t->page[0], 7);
		t->node[0]->pfn = folio_pfn(folio);
		folio_lock(folio);
		folio_set_stable(folio, t->node[0]);
		folio_unlock(folio);
		stable_insert(t->node[0], t->page[0]);
		KUNIT_EXPECT_PTR_EQ(test, t->node[7]->dup_next, t->node[0]);
		KUNIT_EXPECT_PTR_EQ(test, t->node[0]->dup_next, t->node[7]);
		t->node[7]->nr_items = ksm_max_page_sharing;
		ksm_test_collider(probe, 7);
		found = stable_search(probe, 0, page_checksum(probe), 0, NULL);
		KUNIT_EXPECT_PTR_EQ(test, found, t->page[0]);
		if (found)
			put_page(found);
		t->node[0]->nr_items = ksm_max_page_sharing;
		found = stable_search(probe, 0, page_checksum(probe), 0, NULL);
		KUNIT_EXPECT_NULL(test, found);
		if (found)
			put_page(found);
		t->node[0]->nr_items = 0;
		t->node[7]->nr_items = 0;
	} else {
		KUNIT_FAIL(test, "out of memory");
	}

	ksm_test_tree_undo(t);
}

/*
 * The scanner's search takes the first node of its checksum on trust,
 * without a comparison (ksm_fold() compares once the page is
 * write-protected), and says so; the comparing search finds the node of
 * the probe's content among those of its checksum.
 */
static void ksm_test_trusted(struct kunit *test)
{
	struct ksm_test_tree *t;
	struct page *probe, *found;
	bool unverified = false;

	t = kunit_kzalloc(test, sizeof(*t), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, t);
	probe = ksm_test_page(test);

	ksm_test_tree_init(t);
	if (ksm_test_add(t, 1) || ksm_test_add(t, 2)) {
		ksm_test_tree_undo(t);
		KUNIT_FAIL(test, "out of memory");
		return;
	}
	ksm_test_collider(probe, 3);
	ksm_test_cmps = 0;
	found = stable_search(probe, 0, page_checksum(probe), 0, &unverified);
	KUNIT_EXPECT_EQ(test, ksm_test_cmps, 0UL);
	KUNIT_EXPECT_TRUE(test, unverified);
	KUNIT_EXPECT_TRUE(test, found == t->page[1] || found == t->page[2]);
	if (found)
		put_page(found);

	/* A node that a collision marked is compared, not trusted. */
	t->node[1]->collided = 1;
	t->node[2]->collided = 1;
	unverified = false;
	ksm_test_cmps = 0;
	found = stable_search(probe, 0, page_checksum(probe), 0, &unverified);
	KUNIT_EXPECT_NULL(test, found);
	KUNIT_EXPECT_FALSE(test, unverified);
	KUNIT_EXPECT_LT(test, 0UL, ksm_test_cmps);
	if (found)
		put_page(found);

	/*
	 * A group: the node in the tree is full, so a search hands out the
	 * other.  A collision with the one handed out marks the whole group,
	 * which is then compared, not trusted.
	 */
	t->node[1]->collided = 0;
	t->node[2]->collided = 0;
	t->node[0] = stable_alloc(t->node[1]->checksum, 0, 0, NULL);
	t->page[0] = alloc_page(GFP_KERNEL);
	if (t->node[0] && t->page[0]) {
		struct folio *folio = page_folio(t->page[0]);

		ksm_test_collider(t->page[0], 1);
		t->node[0]->pfn = folio_pfn(folio);
		folio_lock(folio);
		folio_set_stable(folio, t->node[0]);
		folio_unlock(folio);
		stable_insert(t->node[0], t->page[0]);
		t->node[1]->nr_items = ksm_max_page_sharing;
		t->node[2]->collided = 1;
		ksm_test_collider(probe, 3);
		found = stable_search(probe, 0, page_checksum(probe), 0,
				      &unverified);
		KUNIT_EXPECT_PTR_EQ(test, found, t->page[0]);
		KUNIT_EXPECT_TRUE(test, unverified);
		if (found) {
			stable_mark_collided(folio_stable(page_folio(found)));
			put_page(found);
		}
		unverified = false;
		found = stable_search(probe, 0, page_checksum(probe), 0,
				      &unverified);
		KUNIT_EXPECT_NULL(test, found);
		KUNIT_EXPECT_FALSE(test, unverified);
		if (found)
			put_page(found);
		t->node[1]->nr_items = 0;
	} else {
		KUNIT_FAIL(test, "out of memory");
	}

	/* Comparing: the probe's own content, or none. */
	found = stable_search(probe, 0, page_checksum(probe), 0, NULL);
	KUNIT_EXPECT_NULL(test, found);
	if (found)
		put_page(found);
	ksm_test_collider(probe, 2);
	found = stable_search(probe, 0, page_checksum(probe), 0, NULL);
	KUNIT_EXPECT_PTR_EQ(test, found, t->page[2]);
	if (found)
		put_page(found);
	ksm_test_tree_undo(t);
}

/*
 * Merge domains: KSM pages of one content in four domains are four
 * nodes, no group; a search finds its own domain's page only, and none
 * for a domain that has none.
 */
static void ksm_test_domains(struct kunit *test)
{
	struct ksm_test_tree *t;
	struct page *probe;
	unsigned int d;

	t = ksm_test_tree_start(test, &probe, 5);
	for (d = 1; d <= 4; d++) {
		if (ksm_test_add(t, d)) {
			ksm_test_tree_undo(t);
			KUNIT_FAIL(test, "out of memory");
			return;
		}
		/* Same content everywhere: re-file node d in domain d. */
		rb_erase(&t->node[d]->rb, &t->root);
		stable_ungroup(t->node[d]);
		ksm_test_collider(t->page[d], 5);
		t->node[d]->checksum = page_checksum(t->page[d]);
		t->node[d]->domain = d;
		stable_insert(t->node[d], t->page[d]);
	}
	for (d = 0; d <= 5; d++) {
		struct page *found;

		found = stable_search(probe, d, page_checksum(probe), 0, NULL);
		if (d >= 1 && d <= 4)
			KUNIT_EXPECT_PTR_EQ(test, found, t->page[d]);
		else
			KUNIT_EXPECT_NULL(test, found);
		if (found)
			put_page(found);
		if (d >= 1 && d <= 4)
			KUNIT_EXPECT_NULL(test, t->node[d]->dup_next);
	}
	ksm_test_tree_undo(t);
}

/* smart_scan: no skip for six failed passes, then more, up to 8 */
static void ksm_test_smart_scan_skips(struct kunit *test)
{
	u8 age, last = 0;

	for (age = 0; age < 7; age++)
		KUNIT_EXPECT_EQ(test, smart_scan_skips(age), 0);
	for (age = 0; age <= ITEM_AGE_MAX; age++) {
		u8 skips = smart_scan_skips(age);

		KUNIT_EXPECT_GE(test, skips, last);
		KUNIT_EXPECT_LE(test, skips, 8);
		/* @skip is a 4-bit field */
		KUNIT_EXPECT_LT(test, skips, 16);
		last = skips;
	}
	KUNIT_EXPECT_EQ(test, smart_scan_skips(7), 1);
	KUNIT_EXPECT_EQ(test, smart_scan_skips(ITEM_AGE_MAX), 8);
}

/*
 * A content shared 2^24 times makes 65536 KSM pages at the default
 * max_page_sharing, one group.  Each node leaves the group in O(1), and a
 * search for one with room walks at most KSM_GROUP_STEPS full ones: with
 * either linear, making or freeing the group would cost its square.
 */
#define KSM_TEST_GROUP	(4 * KSM_GROUP_STEPS)
static void ksm_test_group(struct kunit *test)
{
	unsigned long groups, nodes;
	struct ksm_stable **n, *s;
	unsigned int i, seen;

	n = kunit_kcalloc(test, KSM_TEST_GROUP, sizeof(*n), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, n);
	mutex_lock(&ksm_lock);
	groups = ksm_dup_groups;
	nodes = ksm_dup_nodes;
	for (i = 0; i < KSM_TEST_GROUP; i++) {
		n[i] = stable_alloc(1, 0, 0, NULL);
		if (!n[i])
			break;
		/* No page: pfn 0 is no poisoned KSM page. */
		n[i]->nr_items = ksm_max_page_sharing;
		if (i)
			stable_group(n[i], n[i - 1]);
	}
	if (i < KSM_TEST_GROUP) {
		KUNIT_FAIL(test, "out of memory");
		goto out;
	}
	KUNIT_EXPECT_EQ(test, ksm_dup_groups, groups + 1);
	KUNIT_EXPECT_EQ(test, ksm_dup_nodes, nodes + KSM_TEST_GROUP);

	/* All full: no walk of it all. */
	KUNIT_EXPECT_NULL(test, stable_with_room(n[0]));
	/* Room far off is not looked for; near by, it comes to the front. */
	s = n[0]->dup_next;
	for (seen = 1; seen < 2 * KSM_GROUP_STEPS; seen++)
		s = s->dup_next;
	s->nr_items = 0;
	KUNIT_EXPECT_NULL(test, stable_with_room(n[0]));
	s->nr_items = ksm_max_page_sharing;
	s = n[0]->dup_next->dup_next->dup_next;
	s->nr_items = 0;
	KUNIT_EXPECT_PTR_EQ(test, stable_with_room(n[0]), s);
	KUNIT_EXPECT_PTR_EQ(test, n[0]->dup_next, s);
	KUNIT_EXPECT_PTR_EQ(test, s->dup_prev, n[0]);

	/* Every other node leaves: the ring stays whole both ways. */
	for (i = 1; i < KSM_TEST_GROUP; i += 2) {
		stable_free(n[i]);
		n[i] = NULL;
	}
	seen = 0;
	s = n[0];
	do {
		KUNIT_EXPECT_PTR_EQ(test, s->dup_next->dup_prev, s);
		s = s->dup_next;
	} while (++seen <= KSM_TEST_GROUP && s != n[0]);
	KUNIT_EXPECT_EQ(test, seen, KSM_TEST_GROUP / 2);
	KUNIT_EXPECT_EQ(test, ksm_dup_nodes, nodes + KSM_TEST_GROUP / 2);
out:
	for (i = 0; i < KSM_TEST_GROUP; i++)
		if (n[i])
			stable_free(n[i]);
	KUNIT_EXPECT_EQ(test, ksm_dup_groups, groups);
	KUNIT_EXPECT_EQ(test, ksm_dup_nodes, nodes);
	mutex_unlock(&ksm_lock);
}

/*
 * A group built by stable_insert(), as ksmd builds it: each new KSM page of
 * the content is made when all the others are full, and a search must
 * find it, however many came before and however few searches came between
 * (it goes next to the node a search meets first, not at the far end of
 * the ring, where the bounded walk of stable_with_room() would never reach
 * it).
 */
#define KSM_TEST_GROUP_INSERTS	(4 * KSM_GROUP_STEPS)
static void ksm_test_group_insert(struct kunit *test)
{
	struct ksm_test_tree *t;
	struct page *probe, *found;
	unsigned int i, missed = 0;
	unsigned long dups;

	t = ksm_test_tree_start(test, &probe, 5);
	dups = ksm_dup_nodes;
	for (i = 1; i <= KSM_TEST_GROUP_INSERTS; i++) {
		if (ksm_test_add_as(t, i, 5))
			break;
		/* Now and then a search, which moves what it finds. */
		if (i % 32 == 0) {
			found = stable_search(probe, 0, page_checksum(probe),
					      0, NULL);
			if (found != t->page[i])
				missed++;
			if (found)
				put_page(found);
		}
		if (i < KSM_TEST_GROUP_INSERTS)
			t->node[i]->nr_items = ksm_max_page_sharing;
	}
	if (i <= KSM_TEST_GROUP_INSERTS)
		KUNIT_FAIL(test, "out of memory");
	KUNIT_EXPECT_EQ(test, missed, 0);
	KUNIT_EXPECT_EQ(test, ksm_dup_nodes - dups, (unsigned long)i - 1);
	ksm_test_tree_undo(t);
}

/*
 * smart_scan's hint of new pages tells nothing across merge domains: a
 * page new in one domain is a hint for its checksum in that domain only,
 * and the next pass of that parity draws another key.  With keys of the
 * test's, the bits of the two domains differ (with the keys of the boot,
 * but for one chance in 65536).
 */
static void ksm_test_new_sums(struct kunit *test)
{
	static const siphash_key_t key = {{ 0x5eed, 0xfeed }};
	static const siphash_key_t other = {{ 0xbeef, 0xf00d }};
	struct ksm_new_sums *saved, *ns;
	u32 sum;

	saved = kunit_kmalloc(test, sizeof(ksm_new_sums_of), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, saved);
	mutex_lock(&ksm_lock);
	memcpy(saved, ksm_new_sums_of, sizeof(ksm_new_sums_of));
	ns = ksm_new_sums(ksm_cursor.pass);
	ksm_new_sums_reset(ksm_cursor.pass);
	ksm_new_sums_reset(ksm_cursor.pass - 1);
	ns->key = key;
	KUNIT_EXPECT_NE(test, ksm_new_sum_bit(ns, 1, 7),
			ksm_new_sum_bit(ns, 1, 8));
	for (sum = 1; sum < 1 << 20; sum += 4099) {
		ksm_note_new_page(sum, 7);
		KUNIT_EXPECT_TRUE(test, ksm_new_twin_may_exist(sum, 7));
		KUNIT_EXPECT_FALSE(test, ksm_new_twin_may_exist(sum, 8));
		__clear_bit(ksm_new_sum_bit(ns, sum, 7), ns->bits);
	}
	/* Another key, another bit: what one key gave away is worth nothing. */
	ns->key = other;
	ns->mixed = false;
	ksm_note_new_page(1, 7);
	ns->key = key;
	ns->mixed = false;
	KUNIT_EXPECT_FALSE(test, ksm_new_twin_may_exist(1, 7));
	memcpy(ksm_new_sums_of, saved, sizeof(ksm_new_sums_of));
	mutex_unlock(&ksm_lock);
}

/*
 * A linked item reaches its mapping through its anon_vma: the VMA's own,
 * or one on the VMA's chain (a fork's), at most KSM_AVC_STEPS looked at;
 * not one of a VMA that was there before (the page's offset differs, or
 * only the anon_vma does).
 */
static void ksm_test_item_reaches(struct kunit *test)
{
	unsigned long addr = 0x7f0000003000UL;
	struct anon_vma_chain *avc;
	struct vm_area_struct *vma;
	struct ksm_item item = {};
	struct anon_vma *av;
	unsigned int i, n = KSM_AVC_STEPS + 2;

	vma = kunit_kzalloc(test, sizeof(*vma), GFP_KERNEL);
	av = kunit_kcalloc(test, n, sizeof(*av), GFP_KERNEL);
	avc = kunit_kcalloc(test, n, sizeof(*avc), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, vma);
	KUNIT_ASSERT_NOT_NULL(test, av);
	KUNIT_ASSERT_NOT_NULL(test, avc);
	vma->vm_start = addr - PAGE_SIZE;
	vma->vm_end = addr + PAGE_SIZE;
	/* An anonymous VMA's offset is its address, unless it moved. */
	vma->vm_pgoff = vma->vm_start >> PAGE_SHIFT;
	vma->anon_vma = &av[0];
	INIT_LIST_HEAD(&vma->anon_vma_chain);
	for (i = 0; i < n; i++) {
		avc[i].vma = vma;
		avc[i].anon_vma = &av[i];
		list_add_tail(&avc[i].same_vma, &vma->anon_vma_chain);
	}

	/* Linked for this VMA: its offset, its anon_vma. */
	item.address = addr | ITEM_STABLE | ITEM_PGOFF;
	item.anon_vma = &av[0];
	KUNIT_EXPECT_TRUE(test, ksm_item_reaches(&item, vma, addr));
	/* Another offset (an area mremap moved here): another mapping. */
	vma->vm_pgoff += 5;
	KUNIT_EXPECT_FALSE(test, ksm_item_reaches(&item, vma, addr));
	/* No offset kept: the anon_vma decides.  An ancestor's reaches. */
	item.address &= ~ITEM_PGOFF;
	item.anon_vma = &av[1];
	KUNIT_EXPECT_TRUE(test, ksm_item_reaches(&item, vma, addr));
	/* The last one looked at does; one further along does not. */
	item.anon_vma = &av[KSM_AVC_STEPS - 1];
	KUNIT_EXPECT_TRUE(test, ksm_item_reaches(&item, vma, addr));
	item.anon_vma = &av[KSM_AVC_STEPS];
	KUNIT_EXPECT_FALSE(test, ksm_item_reaches(&item, vma, addr));
	/* Nor one not on it. */
	item.anon_vma = &av[n - 1];
	list_del(&avc[n - 1].same_vma);
	KUNIT_EXPECT_FALSE(test, ksm_item_reaches(&item, vma, addr));
	/* The same offset, another VMA's anon_vma: no. */
	item.address |= ITEM_PGOFF;
	vma->vm_pgoff -= 5;
	KUNIT_EXPECT_FALSE(test, ksm_item_reaches(&item, vma, addr));
}

/*
 * A map's anon_vma is "below" the page's own (ksm_below_native()) if it is
 * that one or descends from it, at most KSM_AVC_STEPS parent links up; not
 * an ancestor, not one of another family, not where the page has none.
 */
static void ksm_test_below_native(struct kunit *test)
{
	unsigned int i, n = KSM_AVC_STEPS + 4;
	struct ksm_stable stable = {};
	struct anon_vma *av, other;

	av = kunit_kcalloc(test, n, sizeof(*av), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, av);
	/* A line of forks: av[0] the root, av[i] the child of av[i - 1]. */
	for (i = 0; i < n; i++) {
		av[i].root = &av[0];
		av[i].parent = i ? &av[i - 1] : &av[0];
	}
	other.root = &other;
	other.parent = &other;

	KUNIT_EXPECT_FALSE(test, ksm_below_native(&stable, &av[1]));
	stable.native = &av[1];
	KUNIT_EXPECT_TRUE(test, ksm_below_native(&stable, &av[1]));
	KUNIT_EXPECT_FALSE(test, ksm_below_native(&stable, &av[0]));
	KUNIT_EXPECT_TRUE(test, ksm_below_native(&stable, &av[2]));
	KUNIT_EXPECT_TRUE(test,
			  ksm_below_native(&stable, &av[1 + KSM_AVC_STEPS]));
	KUNIT_EXPECT_FALSE(test,
			   ksm_below_native(&stable, &av[2 + KSM_AVC_STEPS]));
	KUNIT_EXPECT_FALSE(test, ksm_below_native(&stable, &other));
	/* The root itself, and the root's own line. */
	stable.native = &av[0];
	KUNIT_EXPECT_TRUE(test, ksm_below_native(&stable, &av[0]));
	KUNIT_EXPECT_TRUE(test, ksm_below_native(&stable, &av[KSM_AVC_STEPS]));
}

/*
 * A node's chunks as chunk_class() and chunk_fill() lay them out, walked
 * as ksm_rmap_rounds() walks them: the newest part full, every one before
 * it full, all of them holding the node's maps exactly; and one map more
 * takes a new chunk exactly when the newest is full (stable_link()).
 */
static void ksm_test_chunks(struct kunit *test)
{
	unsigned int n;

	for (n = 1; n <= 300; n++) {
		unsigned int left, fill, cap, seen = 0, chunks = 0;

		for (left = n; left; left -= fill) {
			fill = chunk_fill(left);
			cap = chunk_cap[chunk_class(left)];
			KUNIT_ASSERT_GE(test, fill, 1U);
			KUNIT_ASSERT_LE(test, fill, cap);
			if (chunks++)
				KUNIT_ASSERT_EQ(test, fill, cap);
			seen += fill;
		}
		KUNIT_EXPECT_EQ(test, seen, n);
		KUNIT_EXPECT_EQ(test, chunk_fill(n + 1) == 1,
				chunk_fill(n) == chunk_cap[chunk_class(n)]);
	}
}

/* Start a walk of the test's tree by ksm_tidy_stable(). */
static void ksm_test_tidy_start(struct ksm_test_tree *t, bool idle)
{
	ksm_tidy.nid = 0;
	ksm_tidy.next = rb_first(&t->root);
	ksm_tidy.idle = idle;
}

/*
 * The end of a pass walks the stable trees in steps that give way to
 * whoever waits for ksm_lock.  Nodes leave the tree between steps, the
 * one the walk would go on with among them; at the end, every node whose
 * page is gone was dropped and every other one is still there.  A walk
 * that frees idle nodes frees the rest: no item, page not mapped.
 */
static void ksm_test_tidy(struct kunit *test)
{
	unsigned int i, steps = 0, gone = 0, left = 0;
	typeof(ksm_tidy) tidy;
	struct ksm_test_tree *t;
	struct rb_node *rb;
	struct page *probe;
	unsigned long nodes;
	bool done = false;

	t = ksm_test_tree_start(test, &probe, 0);
	/* ksmd's walk, if one is under way, waits for ksm_lock, held now. */
	tidy = ksm_tidy;
	for (i = 1; i <= KSM_TEST_NODES; i++) {
		if (ksm_test_add(t, i)) {
			KUNIT_FAIL(test, "out of memory");
			goto out;
		}
	}
	nodes = ksm_stable_nodes;
	/* Every third page freed since: its node is stale. */
	for (i = 3; i <= KSM_TEST_NODES; i += 3) {
		WRITE_ONCE(t->page[i]->mapping, NULL);
		gone++;
	}
	ksm_test_tidy_start(t, false);
	atomic_inc(&ksm_lock_waiters);
	while (!done && steps <= KSM_TEST_NODES) {
		done = ksm_tidy_stable();
		steps++;
		if (done || !ksm_tidy.next)
			continue;
		/* The node next in line leaves the tree (a live one). */
		for (i = 1; i <= KSM_TEST_NODES; i++) {
			if (t->node[i] && &t->node[i]->rb == ksm_tidy.next &&
			    i % 3) {
				stable_free(t->node[i]);
				t->node[i] = NULL;
				left++;
				break;
			}
		}
	}
	atomic_dec(&ksm_lock_waiters);
	if (!done) {
		/* Which nodes are left is unknown: they leak. */
		KUNIT_FAIL(test, "the walk did not end");
		memset(t->node, 0, sizeof(t->node));
		goto out;
	}
	/* In steps of 64 nodes, while someone waits. */
	KUNIT_EXPECT_GE(test, steps, (KSM_TEST_NODES - left) / 64);
	KUNIT_EXPECT_GT(test, left, 0);
	KUNIT_EXPECT_EQ(test, ksm_stable_nodes, nodes - gone - left);
	for (i = 1; i <= KSM_TEST_NODES; i++) {
		if (i % 3 == 0) {
			/* Dropped: the page is the test's to free. */
			t->node[i] = NULL;
		} else if (t->node[i]) {
			KUNIT_EXPECT_FALSE(test, RB_EMPTY_NODE(&t->node[i]->rb));
		}
	}

	/* Idle nodes go in a walk that frees them: all of the rest. */
	ksm_test_tidy_start(t, true);
	for (steps = 0; !ksm_tidy_stable() && steps <= KSM_TEST_NODES; steps++)
		;
	memset(t->node, 0, sizeof(t->node));
	KUNIT_EXPECT_NULL(test, rb_first(&t->root));
	while ((rb = rb_first(&t->root)))
		stable_free(rb_entry(rb, struct ksm_stable, rb));
	KUNIT_EXPECT_EQ(test, ksm_stable_nodes, nodes - KSM_TEST_NODES);
out:
	ksm_tidy = tidy;
	ksm_test_tree_undo(t);
}

#define KSM_TEST_MAPS	300

/* The slab a node's chunks take for @n maps (see "Maps"). */
static unsigned long ksm_test_chunk_bytes(unsigned int n)
{
	unsigned long bytes = 0;

	for (; n; n -= chunk_fill(n))
		bytes += chunk_bytes(chunk_class(n));
	return bytes;
}

/*
 * A dead node's maps go as ksmd meets their slots (rec_live()), in any
 * order: every slot left still points to its own page's map (each move
 * rewrote the moved map's slot), the chunks shrink with the maps, so a
 * slot met late keeps its own map's share and not the other maps'
 * chunks, and the last one frees the node.  The slots of a test mm of
 * its own, under ksm_lock; its maps hold no anon_vma, so the node dies
 * as stable_drop_stale() leaves one, without the walk that lets go of
 * those.
 */
static void ksm_test_dead_maps_locked(struct kunit *test, struct ksm_mm *kmm)
{
	unsigned long bytes0 = ksm_chunk_bytes, i, idx, left;
	struct ksm_stable *stable;
	void *entry;

	stable = stable_alloc(0x5eed, 1, 0, NULL);
	if (!stable) {
		KUNIT_FAIL(test, "out of memory");
		return;
	}
	for (i = 1; i <= KSM_TEST_MAPS; i++) {
		/* A node half made leaks: the test failed anyway. */
		if (stable_make_room(stable, NULL) ||
		    xa_err(xa_store(&kmm->items, i,
				    map_add(stable, kmm, i << PAGE_SHIFT),
				    GFP_KERNEL))) {
			KUNIT_FAIL(test, "out of memory");
			return;
		}
	}
	KUNIT_EXPECT_EQ(test, ksm_chunk_bytes - bytes0,
			ksm_test_chunk_bytes(KSM_TEST_MAPS));
	stable_release(stable);
	WRITE_ONCE(stable->pfn, KSM_PFN_DEAD);

	/* Every 7th slot, round and round: 7 and 300 are coprime. */
	for (left = KSM_TEST_MAPS; left; left--) {
		idx = ((KSM_TEST_MAPS - left) * 7) % KSM_TEST_MAPS + 1;
		entry = xa_load(&kmm->items, idx);
		if (!entry || xa_is_value(entry)) {
			KUNIT_FAIL(test, "slot %lu met twice", idx);
			return;
		}
		entry = rec_live(kmm, idx << PAGE_SHIFT, entry);
		KUNIT_EXPECT_TRUE(test, xa_is_value(entry));
		KUNIT_EXPECT_EQ(test, xa_to_value(entry),
				(0x5eedUL & REC_SUM_MASK) << REC_SUM_SHIFT);
		KUNIT_EXPECT_EQ(test, ksm_chunk_bytes - bytes0,
				ksm_test_chunk_bytes(left - 1));
		for (i = 1; i <= KSM_TEST_MAPS && left > 1; i++) {
			entry = xa_load(&kmm->items, i);
			if (xa_is_value(entry))
				continue;
			if (!entry_is_map(entry) ||
			    map_address(entry) != i << PAGE_SHIFT) {
				KUNIT_FAIL(test, "slot %lu lost its map", i);
				return;
			}
		}
	}
	KUNIT_EXPECT_EQ(test, ksm_chunk_bytes, bytes0);
}

static void ksm_test_dead_maps(struct kunit *test)
{
	struct ksm_mm *kmm = kunit_kzalloc(test, sizeof(*kmm), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, kmm);
	xa_init(&kmm->items);
	ksm_mutex_lock();
	ksm_test_dead_maps_locked(test, kmm);
	mutex_unlock(&ksm_lock);
	xa_destroy(&kmm->items);
}

static struct kunit_case ksm_test_cases[] = {
	KUNIT_CASE(ksm_test_checksum),
	KUNIT_CASE(ksm_test_pages_cmp),
	KUNIT_CASE(ksm_test_simd),
	KUNIT_CASE(ksm_test_stable_collisions),
	KUNIT_CASE(ksm_test_trusted),
	KUNIT_CASE(ksm_test_group),
	KUNIT_CASE(ksm_test_group_insert),
	KUNIT_CASE(ksm_test_domains),
	KUNIT_CASE(ksm_test_smart_scan_skips),
	KUNIT_CASE(ksm_test_tidy),
	KUNIT_CASE(ksm_test_new_sums),
	KUNIT_CASE(ksm_test_item_reaches),
	KUNIT_CASE(ksm_test_below_native),
	KUNIT_CASE(ksm_test_chunks),
	KUNIT_CASE(ksm_test_dead_maps),
	{}
};

static struct kunit_suite ksm_test_suite = {
	.name = "ksm",
	.test_cases = ksm_test_cases,
};

kunit_test_suite(ksm_test_suite);

#endif /* _MM_KSM_KUNIT_H */
