// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kernel Samepage Merging
 *
 * ksmd finds anonymous pages of identical content in the areas that
 * processes registered with madvise(MADV_MERGEABLE) or
 * prctl(PR_SET_MEMORY_MERGE), and maps one write-protected copy in place
 * of them all.
 */

/**
 * DOC: Overview
 *
 * ksmd walks, a few pages at a time, every address of every mergeable area
 * of every registered mm, and keeps a *record* for each anonymous page it
 * has met, in an xarray of the mm indexed by address: what the page looked
 * like last time, in 9 bytes or so.  A page in the unstable tree below
 * has a full *item* (struct ksm_item) instead, and a page mapping a KSM
 * page a *map* (struct ksm_map, 24 bytes, in its KSM page's chunks), which
 * the slot points to (see "Records" and "Maps").  It asks two questions
 * of each page.
 *
 * Is there already a KSM page with this content?  The *stable tree* holds
 * one node (struct ksm_stable) for each KSM page.  A KSM page is mapped
 * read-only wherever it is mapped, and anyone who writes to it gets a copy
 * through the ordinary copy-on-write fault, so its content never changes:
 * the stable tree is exact, and a hit is merged at once.
 *
 * Else, has another page had this content since this pass began?  The
 * *unstable tree* holds the items of pages met for the first time, and
 * of pages whose checksum held since the last pass, a sign that they are
 * not being written (a page whose checksum moved is left out).  Nothing
 * stops their owners from writing them later, so the tree is only a
 * hint: a candidate is compared byte for byte under the page lock before
 * it is merged, and the whole tree is thrown away at the end of every
 * pass.  A page that matches becomes a new KSM page, and both mappings
 * move to the stable tree.
 *
 * Both trees are ordered by a 32-bit checksum of the content (lanes of
 * xor-multiply, folded), then by the content itself.  A search reads
 * pages only where checksums are equal: usually the match alone.  The
 * checksum is no defence against a tenant who writes pages to collide (it
 * is unkeyed and easy to invert), so the order inside a run of equal
 * checksums is what bounds a search: O(log n) page comparisons, whatever
 * the pages hold.
 * See "Content is input" in Documentation/mm/ksm.rst.  Pages beneath the
 * unstable tree may change and make its order wrong; that loses merges
 * for a pass, but the tree stays a red-black tree, as deep as ever.
 *
 * Merging write-protects the page first (clearing the PTE and flushing the
 * TLB, so that no CPU and no GUP-fast can write it behind our back, and
 * refusing pages with extra references such as DMA pins), then compares,
 * then replaces the PTE.  A write that comes later faults, and do_wp_page()
 * never reuses a KSM page: it copies.
 *
 * Reclaim, migration and memory failure find the mappings of a KSM page
 * with rmap_walk_ksm(): those that ksmd made or met through its node's
 * maps, and, for a page that became a KSM page in place, those that fork
 * left of it, mergeable areas or not, through the page's own anon_vma and
 * offset, as for any anonymous page (ksm_rmap_native(); "Reverse mapping"
 * in Documentation/mm/ksm.rst).
 *
 * Every full pass starts a new unstable tree.  The old one is folded back
 * into records first, an item at a time, giving way to whoever wants
 * ksm_lock (ksm_drain_unstable()).
 *
 * merge_domain confines merging to a process or a memory cgroup: the
 * domain, a number, is the first key of both trees, so a search finds
 * only its own domain's pages, at the cost of one integer comparison per
 * level however many domains there are.  See "Merge domains" in
 * Documentation/mm/ksm.rst.
 */

/**
 * DOC: Locking
 *
 * ksm_lock (mutex)
 *	The trees, the records and items, the stable nodes, the counters
 *	and the scan cursor.  ksmd holds it for one batch of pages_to_scan
 *	pages (dropped in between to make the copies it owes, see
 *	ksm_owe_copy(), or when an mm is busy, see ksm_mm_busy); sysfs
 *	writes that change the trees and "run" take it too.  Never taken
 *	under an mmap_lock: madvise() and prctl() run with mmap_lock held
 *	and so do their KSM work without it.
 *
 * mmap_lock (for read)
 *	Taken by ksmd to look at or change an mm's page tables.  Fork holds
 *	two mmap_locks at once (dup_mmap(): the parent's and the child's),
 *	so ksmd never waits for one while it holds another: the scanner
 *	keeps the cursor's mm's while it merges a page of it (ksm_scan_vma),
 *	and only tries a partner's.  Under it ksmd may wait for a KSM page's
 *	lock (to unlink an item whose page changed, item_forget(), or
 *	ksm_unpair()), as a fault waits for a page's lock under it: the
 *	tenant's own mmap and munmap wait for that too.
 *	Under ksm_lock it is only tried at all: ksmd tries a busy one again
 *	later, with ksm_lock dropped meanwhile (see ksm_mm_busy).  Only
 *	run=2, which the administrator asks for, waits for it there,
 *	killably.
 *
 * folio lock
 *	Only tried, never waited for, by merging: on the page being
 *	write-protected and replaced and on the KSM page it is merged with.
 *	ksmd waits for a KSM page's lock only to unlink maps, to sweep,
 *	or to file the KSM page of a pair whose partner failed
 *	(ksm_unpair()).
 *	The lock of a KSM page also protects its stable node's maps (with
 *	ksm_lock, which every change of them holds too): rmap_walk_ksm(),
 *	folio_migrate_ksm() and collect_procs_ksm() run with it held.  Two
 *	bits of a map change without it, atomically: ITEM_PGOFF, which the
 *	scanner and the rmap walk may clear (never set), and clearing it
 *	only makes rmap walks look at more VMAs; and ITEM_RELINK, which only
 *	ksmd reads, set by the scanner under the page table lock.  A dead
 *	node (one whose page is gone, see "Dead nodes") has no page to lock:
 *	ksm_lock alone keeps its maps, which only ksmd reads.  A node's
 *	->native is set before the page points to the node, under the page
 *	lock, and put only once no page does (stable_release()), so an rmap
 *	walk, which holds the page lock, always finds it pinned.
 *
 * page table lock, anon_vma lock: as everywhere in mm.  The rmap walk
 *	takes the lock of ->native's family, drops it, then each map's in
 *	turn: never two at once.
 *
 * ksm_mm_lock (spinlock, innermost)
 *	The list and hash of registered mms, and ksm_heir.  __ksm_enter()
 *	and __ksm_exit() take only this, so fork, exec and exit never wait
 *	for ksmd.  map_find_heir() looks an mm up under an anon_vma lock.
 *
 * xa_lock of an mm's records (struct ksm_mm.items)
 *	Taken around each store (rec_store(), item_slot_set(),
 *	rec_store_new()) or inside
 *	the xarray calls, all made under ksm_lock, and never with a page
 *	table lock held; a map's slot is rewritten under its KSM page's
 *	lock (a dead node's, under ksm_lock alone).  It only serializes
 *	the xarray's own RCU readers: nothing reads a slot without
 *	ksm_lock.  __ksm_exit() reads xa_empty() with none of our locks:
 *	records are added only to the cursor's mm and to ksm_heir (a map
 *	passing to a child, map_pass_on()), which it checks under
 *	ksm_mm_lock, so "empty" stays true; a stale "not empty" only sends
 *	the mm to ksm_exited, whose reaping copes.
 *
 * No lock keeps a page that ksmd reads from changing, but a KSM page:
 * the checksum and ksm_pages_cmp() read each word once and stay in the
 * page whatever it holds meanwhile; a merge compares again under
 * write-protection.  Their AVX2 sections (kernel_fpu_begin_mask()) run
 * with preemption disabled, a page each.
 *
 * Order: ksm_lock -> mmap_lock (-> another mm's, tried only) -> folio
 * lock (page, then KSM page) -> anon_vma lock / PTL; ksm_mm_lock and
 * xa_lock nest inside ksm_lock and mmap_lock, never inside each other,
 * and ksm_mm_lock inside the anon_vma lock too.
 *
 * ksmd holds only mm_count (mmgrab) on a registered mm, and mm_users only
 * around a copy it owes (ksm_pay_copies(), mmget_not_zero()): after
 * taking mmap_lock it checks that mm_users is not zero, and __ksm_exit()
 * takes and drops the mmap_lock for write, so that once it returns no
 * ksmd that saw a live mm is still inside that mm.
 */

#define pr_fmt(fmt) "ksm: " fmt

#include <linux/errno.h>
#include <linux/mm.h>
#include <linux/mm_inline.h>
#include <linux/fs.h>
#include <linux/mman.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/sched/coredump.h>
#include <linux/sched/cputime.h>
#include <linux/rwsem.h>
#include <linux/pagemap.h>
#include <linux/rmap.h>
#include <linux/spinlock.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/wait.h>
#include <linux/slab.h>
#include <linux/rbtree.h>
#include <linux/memory.h>
#include <linux/mmu_notifier.h>
#include <linux/swap.h>
#include <linux/pagevec.h>
#include <linux/ksm.h>
#include <linux/hashtable.h>
#include <linux/freezer.h>
#include <linux/oom.h>
#include <linux/numa.h>
#include <linux/pagewalk.h>
#include <linux/random.h>
#include <linux/siphash.h>
#include <linux/sysfs.h>
#include <linux/kobject.h>
#include <linux/memcontrol.h>
#include <linux/cgroup.h>

#include <asm/tlbflush.h>
#if defined(CONFIG_X86_64) && !defined(CONFIG_UML)
#include <linux/instrumented.h>
#include <asm/fpu/api.h>
#include <asm/simd.h>
#endif
#include "internal.h"
#include "mm_slot.h"

#define CREATE_TRACE_POINTS
#include <trace/events/ksm.h>

/*
 * Item state, kept in the low bits of the (page aligned) address of an
 * item or of a map (struct ksm_map): ITEM_STABLE, ITEM_PGOFF and
 * ITEM_RELINK are a map's, ksmd's working copy of it has them too.
 */
#define ITEM_UNSTABLE	BIT(0)	/* linked in an unstable tree */
#define ITEM_STABLE	BIT(1)	/* a map, or ksmd's working copy of one */
#define ITEM_STATE	(ITEM_UNSTABLE | ITEM_STABLE)
#define ITEM_SEEN	BIT(2)	/* @checksum holds a page seen before */
#define ITEM_PGOFF_BIT	3	/* stable: the mapping's page offset is ... */
#define ITEM_PGOFF	BIT(ITEM_PGOFF_BIT)	/* ... the address's page number */
#define ITEM_RELINK_BIT	5
#define ITEM_RELINK	BIT(ITEM_RELINK_BIT) /* stable: another VMA's now */
#define MAP_SLOT_SHIFT	6	/* a map's index in its chunk: 4 bits */
#define MAP_SLOT_MASK	(15UL << MAP_SLOT_SHIFT)

/*
 * Merge domains (merge_domain): a page merges only with pages of its own
 * domain, a number.  0 is everyone's: every page's with "global" (the
 * default), and zero-filled pages' with merge_zero_across_domains.  With
 * "process" it is a serial that an mm gets when it registers (a forked
 * child is a process of its own: it keeps the KSM pages it inherited, and
 * merges anew only with itself); with "cgroup" the id of the mm's memory
 * cgroup (cgroup ids are not reused).  A stable node keeps 48 bits of it;
 * KSM_DOMAIN_NONE, a domain that merges with nothing, stands for anything
 * larger (2^48 cgroups or registrations: not in this machine's life).
 */
#define KSM_NID_BITS		15
#define KSM_DOMAIN_BITS		48
#define KSM_DOMAIN_NONE		(BIT_ULL(KSM_DOMAIN_BITS) - 1)

/**
 * struct ksm_item - what ksmd knows of a page that is in a tree
 * @address: the page's address, with the ITEM_* state in its low bits
 *	(first: a slot tells a map from an item by it, see "Maps")
 * @kmm: the registered mm the page belongs to
 * @checksum: checksum of the content when last seen (the key when
 *	unstable); when stable, unused until the map goes, and then the
 *	stable node's
 * @pass: when unstable, the pass that inserted the item (low bits)
 * @age: passes in a row that the page did not merge (saturating)
 * @skip: passes smart_scan still lets go by without looking at the page
 * @nid: when unstable, the node whose unstable tree holds the item
 * @rb: when unstable, the link in the unstable tree
 * @domain: when unstable, the merge domain the page was inserted for
 * @stable: when stable, the KSM page's node
 * @anon_vma: when stable, the anon_vma to search for the mapping
 * @map: when stable, the map it is a copy of (maps move only when one of
 *	their node's goes, and ksmd works on one page at a time)
 *
 * A page is tracked by a record in its mm's xarray (see "Records"
 * below); only a page in this pass's unstable tree needs the links of a
 * full item, which the record then points to, and a page mapping a KSM
 * page the smaller map of "Maps".  ksmd works on an item in every case:
 * filled from the record or the map, with ITEM_STABLE it is a working
 * copy of the map, whose fields it keeps until the map goes.  56 bytes on
 * 64-bit, checked at build time.
 */
struct ksm_item {
	unsigned long address;
	struct ksm_mm *kmm;
	u32 checksum;
	u32 pass:8;
	u32 age:5;
	u32 skip:4;
	u32 nid:15;
	union {
		struct {
			struct rb_node rb;
			u64 domain;
		};
		struct {
			struct ksm_stable *stable;
			struct anon_vma *anon_vma;
			struct ksm_map *map;
		};
	};
};

/* @age saturates here, beyond the last step of smart_scan_skips() */
#define ITEM_AGE_MAX	31

/**
 * struct ksm_stable - one KSM page
 * @rb: the link in the stable tree of @nid
 * @chunks: the maps of the mappings of this page, in chunks (see "Maps";
 *	under the KSM page's lock and ksm_lock)
 * @dup_next: the next of the KSM pages of the same content, when
 *	max_page_sharing made more than one (a ring; NULL when alone)
 * @dup_prev: the one before, so that a node leaves its group in O(1)
 * @native: the page's own anon_vma, pinned, when it became a KSM page in
 *	place: the mappings that fork made of it are found through it and
 *	the page's offset, ->index (ksm_rmap_native()); set before the page
 *	points to the node, put when none does (see "Locking")
 * @pfn: the page frame that holds the KSM page now (moves with migration)
 * @nr_items: how many maps @chunks holds
 * @checksum: checksum of the (unchanging) content: the key in the tree,
 *	after @domain
 * @nid: which stable tree holds this node
 * @domain: the merge domain of the pages that map it (0: everyone's)
 * @collided: a page of another content and the same checksum met it or
 *	its group (marked as a whole; a new member inherits it):
 *	stable_search() compares contents here, takes nothing on trust
 *
 * The KSM folio's ->mapping points here, tagged with PAGE_MAPPING_KSM.
 * 80 bytes on 64-bit, checked at build time.
 */
struct ksm_stable {
	struct rb_node rb;
	struct ksm_chunk *chunks;
	struct ksm_stable *dup_next;
	struct ksm_stable *dup_prev;
	struct anon_vma *native;
	unsigned long pfn;
	unsigned int nr_items;
	u32 checksum;
	u64 nid:KSM_NID_BITS;
	u64 domain:KSM_DOMAIN_BITS;
	u64 collided:1;
};

/*
 * Maps
 *
 * Each mapping of a KSM page is a map (struct ksm_map, 24 bytes): its
 * address, mm and anon_vma, all that rmap_walk_ksm() and unlinking need.
 * The maps of a KSM page sit in chunks hanging off its stable node, and
 * the page's slot in its mm's xarray points to its map.  A node's chunks
 * hold 2, 2, 4, 8, then 16 maps each (64, 64, 112, 208, then 400 bytes
 * with their header), newest first, and only the newest is ever part
 * full: a map joins it, and a map that goes takes the newest chunk's last
 * map into its place (rewriting that one's slot), so both are O(1)
 * however many mappings a page has (fork children join without limit).
 * Which chunk is which size, and how full the first one is, follows from
 * @nr_items alone (chunk_class(), chunk_fill()).  A mapping costs 32
 * bytes where a page has 2 or 4 mappings, 30 with 8, 28 with 16, 27 or
 * less with 32 and more, 50 at worst (the 17th in a new chunk), and 64 for
 * a page mapped once: never more than upstream's 64-byte rmap item (a full
 * item cost 56).
 *
 * A map knows its chunk by its index there, in the MAP_SLOT bits of its
 * address; a slot tells a map (ITEM_STABLE set in its first word) from
 * an item (never linked: its map holds the mapping) by that word.  Maps
 * move only under ksm_lock and the KSM page's lock (a dead node's, which
 * no walk reaches, under ksm_lock alone); the rmap walk, under
 * the page lock, and the scanner, under ksm_lock and the page table lock,
 * each clear or set their bits of @address atomically.
 *
 * The scanner works on a copy in an item (item_from_map()), as it does on
 * a record: stable_link() makes the map and points the slot to it,
 * stable_unlink() removes it, and item_settle() stores what the page's
 * slot is to hold once ksmd is done with it (see item_unlinked()).
 */
#define KSM_CHUNK_CLASSES	4

/**
 * struct ksm_map - a mapping of a KSM page
 * @address: the address, with ITEM_STABLE, maybe ITEM_PGOFF and
 *	ITEM_RELINK, and its index in the chunk (MAP_SLOT_MASK)
 * @kmm: the registered mm that maps it
 * @anon_vma: the anon_vma to search for the mapping (pinned)
 */
struct ksm_map {
	unsigned long address;
	struct ksm_mm *kmm;
	struct anon_vma *anon_vma;
};

/**
 * struct ksm_chunk - some of the maps of a KSM page
 * @stable: the KSM page's node
 * @next: the chunk made before this one: full
 * @map: the maps
 */
struct ksm_chunk {
	struct ksm_stable *stable;
	struct ksm_chunk *next;
	struct ksm_map map[];
};

/**
 * struct ksm_mm - a registered mm
 * @slot: the mm, its link in the hash and in the list of registered mms
 * @items: a record for each page of the mm that ksmd tracks, indexed by
 *	page number (address >> PAGE_SHIFT): a value entry, or a full item
 *	(see "Records"); changed only under ksm_lock
 * @serial: its merge domain in the "process" mode: a new one at each
 *	registration and at each fork (under ksm_mm_lock, and the mm's
 *	mmap_lock for write at fork)
 * @end: no record at this page number or beyond (an upper bound, under
 *	ksm_lock): the scanner need not look for one where the mm's memory
 *	is new
 * @resume: where the next pass starts in it: ksm_cursor.checked when its
 *	busy mmap_lock made the last one pass it over, else 0 (under
 *	ksm_lock)
 * @busy_shift: its own share of sleeps on its busy mmap_lock in a pass is
 *	KSM_MM_BUSY_MS >> @busy_shift: up 2 when it spends it all, down 1
 *	when a pass scans it to its end (see ksm_busy_try(); ksmd's, under
 *	ksm_lock; __ksm_fork() reads it)
 */
struct ksm_mm {
	struct mm_slot slot;
	struct xarray items;
	u64 serial;
	unsigned long end;
	unsigned long resume;
	unsigned int busy_shift;
};

/**
 * struct ksm_cursor - where ksmd's scan stands: there is only one
 * @kmm: the registered mm being scanned (&ksm_mm_head between passes)
 * @address: the next address to look at in @kmm
 * @checked: records of @kmm below this address are for pages met in this
 *	pass; those from here on are yet to be met, or for pages gone
 * @pass: number of the current pass; its low bits tag unstable items
 * @domain: the merge domain of @kmm's pages, when @domain_known
 * @domain_known: @domain was found in this batch (a process may move to
 *	another cgroup while ksmd sleeps)
 * @busy_us: time ksmd slept in this pass on @kmm's busy mmap_lock (see
 *	ksm_mm_busy)
 * @scanned: ksm_pages_scanned when the cursor came to @kmm
 */
struct ksm_cursor {
	struct ksm_mm *kmm;
	unsigned long address;
	unsigned long checked;
	unsigned long pass;
	u64 domain;
	bool domain_known;
	unsigned long busy_us;
	unsigned long scanned;
};

#define KSM_RUN_STOP	0
#define KSM_RUN_MERGE	1
#define KSM_RUN_UNMERGE	2

static DEFINE_MUTEX(ksm_lock);
static DEFINE_SPINLOCK(ksm_mm_lock);
static DEFINE_HASHTABLE(ksm_mm_hash, 10);

static struct ksm_mm ksm_mm_head = {
	.slot.mm_node = LIST_HEAD_INIT(ksm_mm_head.slot.mm_node),
};

static struct ksm_cursor ksm_cursor = {
	.kmm = &ksm_mm_head,
};

/*
 * ksmd never waits for an mmap_lock while it holds ksm_lock.  A tenant
 * can keep its mmap_lock for as long as it likes (a fork holds it for
 * write while it copies every VMA and page table; two threads forking in
 * turn hold it all the time), and everyone who wants ksm_lock would wait
 * with ksmd: sysfs writes, run=0, memory offlining, the freezer.  So
 * ksmd only tries it.  When the cursor's mm is busy, the batch pauses
 * (ksm_mm_busy): ksmd, with ksm_lock dropped, sleeps KSM_MM_BUSY_US to
 * 2 * KSM_MM_BUSY_US, then goes on with what is left of the batch (so the
 * pages ksmd scans still come no faster than sleep_millisecs has them).
 * In the merge paths, a page whose mm is busy is not merged in this pass
 * (item_lock_vma()).
 *
 * And so that the tenant cannot hold up every other tenant's pass
 * either, a fork for every page it has (upstream waits for the lock under
 * its mutex, page after page), the time ksmd sleeps on busy locks in a
 * pass is rationed (ksm_busy_try()).  An mm earns KSM_BUSY_NS_PER_PAGE of
 * it for each of its pages scanned in the pass, so that a large one that
 * is busy now and then (QEMU's) is still scanned to its end.  Beyond that
 * it may have its own share, KSM_MM_BUSY_MS (a quarter of that for each
 * pass in which it spent it all lately, twice as much back for each pass
 * that scanned it to its end; a forked child starts with its parent's),
 * but only while the pass has some left of the KSM_PASS_BUSY_MS that it
 * shares out among all mms.  An mm refused a sleep is passed over (a
 * page's work), and the next pass starts it where this one left it
 * (@resume), so that even one that is busy half the time is scanned
 * through, pass by pass.  So a tenant that keeps its locks busy costs the
 * others KSM_BUSY_NS_PER_PAGE of waiting per page of its own scanned, plus
 * KSM_PASS_BUSY_MS a pass at most (and an oversleep), however many mms
 * it registers, creates or forks.  The price of the shared part: once a
 * tenant has spent it, another mm found busy before it has earned a
 * sleep waits for the next pass, from where it stopped.  An exiting mm is
 * not tried again at all: its items go at ksmd's next batch, without its
 * mmap_lock (ksm_exited).
 */
#define KSM_MM_BUSY_US		1000
#define KSM_BUSY_NS_PER_PAGE	1000
#define KSM_MM_BUSY_MS		100
#define KSM_PASS_BUSY_MS	200
#define KSM_BUSY_SHIFT_MAX	7
/* ksmd's own, all of them: see above */
static bool ksm_mm_busy;	/* the batch paused at a busy mmap_lock */
static bool ksm_busy_charged;	/* ... and its sleep is the pass's share */
static s64 ksm_busy_left_us;	/* the pass's share left */
static unsigned long ksm_busy_slept_us;	/* to add to ksm_cursor.busy_us */

/*
 * Registered mms that exited while the cursor was elsewhere, out of the
 * scan: ksmd frees their items at its next batch (ksm_reap_exited()).
 */
static LIST_HEAD(ksm_exited);

static struct rb_root ksm_one_stable_tree = RB_ROOT;
static struct rb_root ksm_one_unstable_tree = RB_ROOT;
static struct rb_root *ksm_stable_trees = &ksm_one_stable_tree;
static struct rb_root *ksm_unstable_trees = &ksm_one_unstable_tree;
#if defined(CONFIG_NUMA) && defined(CONFIG_SYSFS)
static struct rb_root *ksm_node_stable_trees;	/* merge_across_nodes = 0 */
static struct rb_root *ksm_node_unstable_trees;
#endif

static struct kmem_cache *ksm_item_cache;	/* unstable tree, the spare */
static struct kmem_cache *ksm_stable_cache;
static struct kmem_cache *ksm_mm_cache;
static struct kmem_cache *ksm_chunk_cache[KSM_CHUNK_CLASSES];
/* A chunk of each class for stable_link(), made ready before a merge. */
static struct ksm_chunk *ksm_chunk_spare[KSM_CHUNK_CLASSES];

static struct task_struct *ksmd;
static DECLARE_WAIT_QUEUE_HEAD(ksmd_wait);
static DECLARE_WAIT_QUEUE_HEAD(ksmd_sleep_wait);

/* Tunables (sysfs) */
static unsigned int ksm_run = KSM_RUN_STOP;
#define KSM_PAGES_TO_SCAN_DEFAULT	100
static unsigned int ksm_pages_to_scan = KSM_PAGES_TO_SCAN_DEFAULT;
static unsigned int ksm_sleep_millisecs = 20;
static bool ksm_use_zero_pages __read_mostly;
static bool ksm_merge_across_nodes = true;
static int ksm_max_page_sharing = 256;
static unsigned int ksm_prune_millisecs = 2000;
static bool ksm_smart_scan = true;
static unsigned long ksm_max_kernel_pages;	/* 0: no limit */

enum ksm_domain_mode {
	KSM_DOMAIN_GLOBAL,
	KSM_DOMAIN_PROCESS,
	KSM_DOMAIN_CGROUP,
};

static enum ksm_domain_mode ksm_domain_mode;	/* under ksm_lock */
static bool ksm_zero_across_domains;
static u64 ksm_last_serial;			/* under ksm_mm_lock */

/* The scan-time advisor (advisor_mode), see ksm_advise(). */
enum ksm_advisor_mode {
	KSM_ADVISOR_NONE,
	KSM_ADVISOR_SCAN_TIME,
};

static enum ksm_advisor_mode ksm_advisor;
static unsigned int ksm_advisor_max_cpu = 70;		/* percent */
static unsigned long ksm_advisor_min_pages = 500;
static unsigned long ksm_advisor_max_pages = 30000;
static unsigned int ksm_advisor_target_secs = 200;
static ktime_t ksm_pass_started;
static unsigned long ksm_last_sweep;	/* jiffies */
static u64 ksm_pass_cpu_ns;

/*
 * The end of a pass walks the stable trees (ksm_tidy_stable()), a piece
 * at a time: it keeps its place as the node it goes on with, in tree
 * @ksm_tidy.nid, and a node that leaves its tree hands that place on to
 * its successor (stable_tree_erase()).  All under ksm_lock.
 */
static struct {
	struct rb_node *next;
	int nid;		/* -1: no walk under way */
	bool idle;		/* this walk also frees idle nodes */
	bool pending;		/* the pass is over but for the walk */
} ksm_tidy = { .nid = -1 };

/*
 * Tasks waiting for ksm_lock.  ksmd ends its batch as soon as there is
 * one (ksm_scan()), so that a sysfs write, a memory block going offline
 * or the freezer waits for about one page of ksmd's work, never for a
 * whole batch of pages_to_scan pages.
 */
static atomic_t ksm_lock_waiters = ATOMIC_INIT(0);

static void ksm_mutex_lock(void)
{
	atomic_inc(&ksm_lock_waiters);
	mutex_lock(&ksm_lock);
	atomic_dec(&ksm_lock_waiters);
}

/* Should ksmd let go of ksm_lock (or its mmap_lock) now? */
static bool ksm_lock_wanted(void)
{
	return atomic_read(&ksm_lock_waiters) || freezing(current) ||
	       kthread_should_stop();
}

#ifdef CONFIG_MEMORY_HOTREMOVE
/*
 * While a memory block goes offline, ksmd and the knobs that walk the
 * stable trees wait: the pages of the block are on their way elsewhere,
 * and once it is gone its memory map may not be read.
 */
static bool ksm_offlining;		/* under ksm_lock */
static DECLARE_WAIT_QUEUE_HEAD(ksm_online_wait);

static void ksm_lock_online(void)
{
	ksm_mutex_lock();
	while (ksm_offlining) {
		mutex_unlock(&ksm_lock);
		wait_event(ksm_online_wait, !READ_ONCE(ksm_offlining));
		ksm_mutex_lock();
	}
}
#else
static inline void ksm_lock_online(void)
{
	ksm_mutex_lock();
}
#endif

/* Counters (sysfs), under ksm_lock */
static unsigned long ksm_pages_shared;		/* stable nodes in use */
static unsigned long ksm_pages_sharing;		/* further mappings of them */
static unsigned long ksm_pages_unshared;	/* put in a tree, not met since */
static unsigned long ksm_items;			/* all records: tracked pages */
static unsigned long ksm_full_items;		/* records that are full items */
static unsigned long ksm_chunk_bytes;		/* slab of the maps' chunks */
static unsigned long ksm_stable_nodes;		/* all stable nodes */
static unsigned long ksm_dup_groups;		/* contents with several */
static unsigned long ksm_dup_nodes;		/* the nodes in those */
static unsigned long ksm_pages_scanned;
static unsigned long ksm_pages_skipped;
static unsigned long ksm_full_scans;

/* KSM-placed zero pages, over all mms (see ksm_map_zero_page()). */
atomic_long_t ksm_zero_pages = ATOMIC_LONG_INIT(0);

/* Checksum of a page of zeroes, for use_zero_pages. */
static u32 ksm_zero_checksum __read_mostly;

/* ---------------------------------------------------------------------- */
/* Items, stable nodes and registered mms: allocation and small helpers   */
/* ---------------------------------------------------------------------- */

static inline unsigned long item_address(const struct ksm_item *item)
{
	return item->address & PAGE_MASK;
}

static inline bool ksm_test_exit(struct mm_struct *mm)
{
	return atomic_read(&mm->mm_users) == 0;
}

static inline struct mm_struct *item_mm(const struct ksm_item *item)
{
	return item->kmm->slot.mm;
}

/*
 * Records
 *
 * A page that ksmd tracks is in no tree most of the time: met before, not
 * merged, not in this pass's unstable tree.  The next look at it needs
 * only the checksum it had, its smart_scan age and skip, and two flags,
 * and that fits in an xarray value entry: such a page costs its mm's
 * xarray one slot, 8 bytes, plus a 64th of a 576-byte xa_node where the
 * mm's mergeable memory is dense; about 9 bytes in all (KSM_REC_BYTES).
 * A full item (56 bytes) exists only while the page is in the unstable
 * tree, a map (see "Maps") while it maps a KSM page, and its slot then
 * points to that.  The scanner fills a record or a map into a spare item
 * (cursor_item()), works on that, and then either keeps it, if it joined
 * the unstable tree, or drops it if it is linked to a KSM page (its map
 * is made), or folds it back into the record (item_settle()).  At the end
 * of a pass its unstable tree is folded back into records, a few at a
 * time (ksm_drain_unstable()): a tree lives one pass, so its items do.
 *
 * A value entry, from bit 0: REC_SEEN, REC_UNSHARED, the age (5 bits),
 * the skip (4 bits), then the checksum: 32 bits on 64-bit, its low 20 bits
 * on 32-bit, where a value holds 31 bits.  A truncated checksum makes a
 * page that changed look unchanged once in a million times: the page
 * goes into the unstable tree once more, where everything is compared byte
 * for byte anyway.  Its low KSM_NEW_SUM_BITS, which smart_scan's hint
 * reads, are always kept.
 *
 * So a page costs 9 bytes between passes.  Within a pass, each page put
 * in the unstable tree has its full item until the pass ends: at the end
 * of a pass in which every page was a candidate (smart_scan off, or its
 * hint defeated) that is 65 bytes a page, about upstream's 64.
 *
 * Pages spread thinly cost more: a page pays a node for each level of the
 * xarray that it shares with no other page, one 576-byte node for a page
 * alone in 64, about three for pages 4 GiB apart.  The nodes are charged
 * to the mm's memory cgroup (rec_new()), so a tenant pays for the layout
 * it chose; general_profit and ksm_process_profit assume dense memory.
 */
#define REC_SEEN	BIT(0)	/* ITEM_SEEN */
#define REC_UNSHARED	BIT(1)	/* ITEM_UNSTABLE, of a tree that is gone */
#define REC_AGE_SHIFT	2
#define REC_SKIP_SHIFT	7
#define REC_SUM_SHIFT	11
#define REC_SUM_BITS	(BITS_PER_LONG == 64 ? 32 : BITS_PER_LONG - 1 - \
			 REC_SUM_SHIFT)
#define REC_SUM_MASK	((u32)GENMASK(REC_SUM_BITS - 1, 0))

/* What a record costs, in a dense xarray: its slot and its node's share. */
#define KSM_REC_BYTES	(sizeof(struct xa_node) / XA_CHUNK_SIZE)

/* An item for cursor_item() to fill, within one batch (ksm_scan()). */
static struct ksm_item *ksm_spare;
/* A new page's slot points to ksm_spare already (cursor_item()). */
static bool ksm_spare_in_slot;

/*
 * The cursor's walk of its mm's records: an xa_state left on the slot of
 * the page ksmd met last (rec_find(), rec_new()), so that the next page's
 * record, usually in the next slot, is found with xas_next() and stored
 * to without a descent from the root (rec_set_at()).  Valid (@ksm_walk_ok)
 * until a record is erased, which may free the node it holds
 * (rec_drop()), and only within a batch: ksm_scan() starts each one
 * afresh.  Stores of entries elsewhere leave its node be.  ksmd's alone,
 * under ksm_lock.
 */
static struct xa_state ksm_walk;
static bool ksm_walk_ok;

static inline unsigned long rec_index(unsigned long addr)
{
	return addr >> PAGE_SHIFT;
}

static inline u8 ksm_pass_tag(void);

/* The record of @item, to keep in its slot while it is in no tree. */
static void *item_record(const struct ksm_item *item)
{
	unsigned long v;

	v = (unsigned long)(item->checksum & REC_SUM_MASK) << REC_SUM_SHIFT |
	    (unsigned long)item->skip << REC_SKIP_SHIFT |
	    (unsigned long)item->age << REC_AGE_SHIFT;
	if (item->address & ITEM_SEEN)
		v |= REC_SEEN;
	if (item->address & ITEM_UNSTABLE)
		v |= REC_UNSHARED;
	return xa_mk_value(v);
}

/* Fill @item from @entry, the record of the page at @addr of @kmm. */
static void item_from_record(struct ksm_item *item, struct ksm_mm *kmm,
			     unsigned long addr, void *entry)
{
	unsigned long v = xa_to_value(entry);

	memset(item, 0, sizeof(*item));
	item->kmm = kmm;
	item->address = addr;
	item->checksum = (v >> REC_SUM_SHIFT) & REC_SUM_MASK;
	item->age = (v >> REC_AGE_SHIFT) & ITEM_AGE_MAX;
	item->skip = (v >> REC_SKIP_SHIFT) & 15;
	if (v & REC_SEEN)
		item->address |= ITEM_SEEN;
	if (v & REC_UNSHARED) {
		/* Counted in pages_unshared still, in an earlier pass's tree */
		item->address |= ITEM_UNSTABLE;
		item->pass = (u8)(ksm_pass_tag() - 1);
	}
}

static void rec_store(struct xa_state *xas, void *entry)
{
	xas_lock(xas);
	xas_store(xas, entry);
	xas_unlock(xas);
}

/*
 * Put @entry in the slot of the page at @addr of @kmm.  The slot exists:
 * replacing an entry allocates nothing, so this cannot fail, and may be
 * done under a spinlock.
 */
static void rec_set(struct ksm_mm *kmm, unsigned long addr, void *entry)
{
	XA_STATE(xas, &kmm->items, rec_index(addr));

	rec_store(&xas, entry);
}

/*
 * What KSM keeps for a tenant's pages (their records, the stable node of a
 * page that becomes a KSM page, the chunks of maps of its mappings) is
 * charged to the memory cgroup of the mm it is made for: a tenant pays for
 * what it makes KSM keep, however it lays its memory out, even where its
 * pages are gone (the maps of an mm whose mmap_lock ksmd cannot take stay
 * until it can).  Upstream charges its rmap items and nodes to no one.
 * (Not the unstable tree's items, which live a pass at most.)  None of
 * these reclaims, under ksm_lock: a tenant at its limit would make
 * everyone who waits for ksmd wait for its reclaim, and global pressure
 * makes a node wait for a later pass rather than reclaim for it.  A new
 * page's record that cannot be had without reclaim waits for a later
 * pass.  A node, a chunk, or the slot of a map passing to a child is
 * charged over the limit (__GFP_HIGH, as upstream allocates its nodes;
 * the tenant's own next allocation reclaims).  Under global pressure that
 * flag also lets it take from part of the page allocator's min reserve,
 * as upstream's nodes may; __GFP_NOMEMALLOC keeps it from the rest (no
 * ALLOC_NO_WATERMARKS).  It is worth that: each holds a mapping the tenant
 * has (a merge also frees a page), bounded by its page tables, and a
 * mapping that no map holds is one that rmap walks may miss (a child's,
 * see "Heirs"); and a tenant at its limit, as a busy guest often is,
 * would merge nothing, and free nothing.
 */
static struct mem_cgroup *ksm_charge_begin(struct ksm_mm *kmm,
					   struct mem_cgroup **old)
{
	struct mem_cgroup *memcg = get_mem_cgroup_from_mm(kmm->slot.mm);

	*old = set_active_memcg(memcg);
	return memcg;
}

static void ksm_charge_end(struct mem_cgroup *memcg, struct mem_cgroup *old)
{
	set_active_memcg(old);
	mem_cgroup_put(memcg);
}

/*
 * An object of @cache for @kmm, charged to it, over its limit if need be;
 * @gfp may add __GFP_ZERO.  A NULL @kmm is KUnit's: charged to no one.
 */
static void *ksm_alloc_for(struct kmem_cache *cache, struct ksm_mm *kmm,
			   gfp_t gfp)
{
	struct mem_cgroup *memcg, *old;
	void *obj;

	if (!kmm)
		return kmem_cache_alloc(cache, gfp | GFP_KERNEL);
	gfp |= GFP_NOWAIT | __GFP_HIGH | __GFP_NOMEMALLOC | __GFP_NOWARN;
	memcg = ksm_charge_begin(kmm, &old);
	obj = kmem_cache_alloc(cache, gfp | __GFP_ACCOUNT);
	ksm_charge_end(memcg, old);
	return obj;
}

/*
 * Store @entry, through @xas, in the slot of the page at @addr of @kmm,
 * which must be empty (else -EEXIST), allocating what the xarray needs,
 * charged to @kmm (the xarray adds __GFP_ACCOUNT), over its limit if @gfp
 * has __GFP_HIGH: -ENOMEM if that takes reclaim.  @xas is left on the
 * slot.
 */
static int rec_store_new(struct xa_state *xas, struct ksm_mm *kmm,
			 unsigned long addr, void *entry, gfp_t gfp)
{
	struct mem_cgroup *memcg, *old;
	int err;

	memcg = ksm_charge_begin(kmm, &old);
	*xas = (struct xa_state)__XA_STATE(&kmm->items, rec_index(addr), 0, 0);
	do {
		xas_lock(xas);
		if (xas_load(xas))
			xas_set_err(xas, -EEXIST);
		else
			xas_store(xas, entry);
		xas_unlock(xas);
	} while (xas_nomem(xas, gfp | GFP_NOWAIT | __GFP_NOMEMALLOC |
			   __GFP_NOWARN));
	err = xas_error(xas);
	ksm_charge_end(memcg, old);
	return err;
}

/* A slot was added for the page at @addr of @kmm: count it. */
static void rec_added(struct ksm_mm *kmm, unsigned long addr)
{
	kmm->end = max(kmm->end, rec_index(addr) + 1);
	ksm_items++;
	kmm->slot.mm->ksm_rmap_items++;
}

/*
 * Is the cursor's walk on the slot of the page at @addr of @kmm, in a
 * leaf of the tree (where a store allocates nothing)?
 */
static inline bool ksm_walk_at(struct ksm_mm *kmm, unsigned long addr)
{
	return ksm_walk_ok && ksm_walk.xa == &kmm->items &&
	       ksm_walk.xa_index == rec_index(addr) && xas_valid(&ksm_walk) &&
	       ksm_walk.xa_node && !ksm_walk.xa_node->shift;
}

/* rec_set(), through the cursor's walk if it is there already. */
static void rec_set_at(struct ksm_mm *kmm, unsigned long addr, void *entry)
{
	if (ksm_walk_at(kmm, addr))
		rec_store(&ksm_walk, entry);
	else
		rec_set(kmm, addr, entry);
}

/* Put @entry in the slot of @item's page. */
static void item_slot_set(struct ksm_item *item, void *entry)
{
	if (item == ksm_spare && ksm_spare_in_slot) {
		VM_WARN_ON_ONCE(xa_load(&item->kmm->items,
					rec_index(item_address(item))) != item);
		ksm_spare_in_slot = false;
	}
	rec_set_at(item->kmm, item_address(item), entry);
}

static void item_free(struct ksm_item *item)
{
	ksm_full_items--;
	kmem_cache_free(ksm_item_cache, item);
}

/* Maps a chunk of each class holds (see "Maps"). */
static const u8 chunk_cap[KSM_CHUNK_CLASSES] = { 2, 4, 8, 16 };

/* The slab a chunk of class @c takes. */
static inline unsigned int chunk_bytes(unsigned int c)
{
	return struct_size_t(struct ksm_chunk, map, chunk_cap[c]);
}

/*
 * The class of the newest chunk of a node with @n >= 1 maps: its chunks
 * hold 2, 2, 4, 8, then 16 maps each, so that the first 2^k maps fill
 * chunks of 2^k in all.
 */
static __always_inline unsigned int chunk_class(unsigned int n)
{
	if (n <= 4)
		return 0;
	if (n <= 8)
		return 1;
	return n <= 16 ? 2 : 3;
}

/* How many maps the newest chunk of a node with @n >= 1 maps holds. */
static __always_inline unsigned int chunk_fill(unsigned int n)
{
	if (n <= 2)
		return n;
	if (n <= 16)
		return n - (1U << (fls(n - 1) - 1));
	return (n - 17) % 16 + 1;
}

static inline struct ksm_chunk *map_chunk(struct ksm_map *map)
{
	unsigned long slot = (map->address & MAP_SLOT_MASK) >> MAP_SLOT_SHIFT;

	return container_of(map - slot, struct ksm_chunk, map[0]);
}

static inline unsigned long map_address(const struct ksm_map *map)
{
	return map->address & PAGE_MASK;
}

/* Is @entry, a slot's pointer, a map (else an item)? */
static inline bool entry_is_map(void *entry)
{
	return READ_ONCE(*(unsigned long *)entry) & ITEM_STABLE;
}

/* The ->pfn of a node whose page is gone (see "Dead nodes"). */
#define KSM_PFN_DEAD	ULONG_MAX

static inline bool stable_dead(const struct ksm_stable *stable)
{
	return READ_ONCE(stable->pfn) == KSM_PFN_DEAD;
}

/* Fill @item, ksmd's working copy, from @map. */
static void item_from_map(struct ksm_item *item, struct ksm_map *map)
{
	struct ksm_stable *stable = map_chunk(map)->stable;

	VM_WARN_ON_ONCE(stable_dead(stable));
	memset(item, 0, sizeof(*item));
	item->address = READ_ONCE(map->address) & ~MAP_SLOT_MASK;
	item->kmm = map->kmm;
	item->stable = stable;
	item->anon_vma = map->anon_vma;
	item->map = map;
}

static inline struct ksm_stable *folio_stable(struct folio *folio)
{
	unsigned long mapping = (unsigned long)READ_ONCE(folio->mapping);

	if ((mapping & PAGE_MAPPING_FLAGS) != PAGE_MAPPING_KSM)
		return NULL;
	return (struct ksm_stable *)(mapping & ~PAGE_MAPPING_FLAGS);
}

static inline void *stable_mapping(struct ksm_stable *stable)
{
	return (void *)((unsigned long)stable | PAGE_MAPPING_KSM);
}

/*
 * Make @folio a KSM page of @stable, or with @stable NULL, a KSM page with
 * no node: its content still never changes, but no rmap walk can find its
 * mappings, so it must be unmapped.  Called with the folio locked.
 */
static void folio_set_stable(struct folio *folio, struct ksm_stable *stable)
{
	VM_WARN_ON_FOLIO(!folio_test_locked(folio), folio);
	WRITE_ONCE(folio->mapping, stable_mapping(stable));
}

static struct ksm_mm *ksm_mm_lookup(struct mm_struct *mm)
{
	struct mm_slot *slot = mm_slot_lookup(ksm_mm_hash, mm);

	return slot ? container_of(slot, struct ksm_mm, slot) : NULL;
}

static inline struct ksm_mm *ksm_mm_next(struct ksm_mm *kmm)
{
	return list_next_entry(kmm, slot.mm_node);
}

/* The tree an item or page belongs in. */
static inline int ksm_tree_nid(struct page *page)
{
	return ksm_merge_across_nodes ? 0 : page_to_nid(page);
}

/* ---------------------------------------------------------------------- */
/* Content: checksum, comparison                                         */
/* ---------------------------------------------------------------------- */

/*
 * The checksum is the key of both trees and tells a page being written
 * from one at rest, so it must see every byte; it need not resist an
 * attacker, since equal checksums only lead to a byte comparison.
 *
 * It and the comparison below are most of ksmd's instructions per page,
 * so on x86-64 with AVX2 both read 32 bytes per instruction (between
 * kernel_fpu_begin_mask() and kernel_fpu_end(): ksmd is a kernel thread,
 * whose entry saves no user state); elsewhere they read 64-bit words.
 * Which checksum a kernel uses is set at boot, once, before any is taken
 * (ksm_simd): a page's checksum must not change with the context that
 * takes it, so where SIMD is not usable (!may_use_simd()) the AVX2
 * function is computed word by word, to the same value.
 *
 * The word function: four independent lanes of xor-multiply over 64-bit
 * words, mixed at the end: about two thirds of the instructions of xxh64.
 */
#define KSM_HASH_K0	0x9e3779b97f4a7c15ULL
#define KSM_HASH_K1	0xc2b2ae3d27d4eb4fULL
#define KSM_HASH_K2	0x165667b19e3779f9ULL
#define KSM_HASH_K3	0x27d4eb2f165667c5ULL

/* The last steps of both functions: every bit of @a in the 32 kept. */
static u32 ksm_hash_fold(u64 a)
{
	a ^= a >> 33;
	a *= KSM_HASH_K1;
	a ^= a >> 29;
	return (u32)a ^ (u32)(a >> 32);
}

static u32 ksm_words_sum(const u64 *word)
{
	u64 a = KSM_HASH_K0, b = KSM_HASH_K1, c = KSM_HASH_K2, d = KSM_HASH_K3;
	unsigned int i;

	for (i = 0; i < PAGE_SIZE / sizeof(u64); i += 4) {
		a = (a ^ word[i]) * KSM_HASH_K1;
		b = (b ^ word[i + 1]) * KSM_HASH_K2;
		c = (c ^ word[i + 2]) * KSM_HASH_K3;
		d = (d ^ word[i + 3]) * KSM_HASH_K0;
	}
	return ksm_hash_fold(rol64(a, 1) + rol64(b, 7) + rol64(c, 12) +
			     rol64(d, 18));
}

/*
 * The lane function, for SIMD: 16 lanes of 64 bits, word i of the page
 * going to lane i % 16, each step x = lane ^ word, then lane = the halves
 * of x ^ lo32(x) * K swapped (one multiply of 32 by 32 bits per 64-bit
 * lane, as AVX2's vpmuludq does; the swap brings the high half down to be
 * multiplied next step).  K is even, which makes a step a bijection (bit
 * i of lo32(x) * K depends on lower bits of x only): no state is lost.
 * Then the lanes are chained into one word and folded.
 */
#define KSM_LANES	16
#define KSM_LANE_K	0x3c6ef362U

static const u64 ksm_lane_seed[KSM_LANES] = {
	KSM_HASH_K0 * 1, KSM_HASH_K0 * 2, KSM_HASH_K0 * 3, KSM_HASH_K0 * 4,
	KSM_HASH_K0 * 5, KSM_HASH_K0 * 6, KSM_HASH_K0 * 7, KSM_HASH_K0 * 8,
	KSM_HASH_K0 * 9, KSM_HASH_K0 * 10, KSM_HASH_K0 * 11, KSM_HASH_K0 * 12,
	KSM_HASH_K0 * 13, KSM_HASH_K0 * 14, KSM_HASH_K0 * 15, KSM_HASH_K0 * 16,
};

static u32 ksm_lanes_fold(const u64 *lane)
{
	u64 a = 0;
	unsigned int i;

	for (i = 0; i < KSM_LANES; i++)
		a = (rol64(a, 17) ^ lane[i]) * KSM_HASH_K2;
	return ksm_hash_fold(a);
}

/* The lane function, word by word. */
static u32 ksm_lanes_sum_words(const u64 *word)
{
	u64 lane[KSM_LANES];
	unsigned int i;

	memcpy(lane, ksm_lane_seed, sizeof(lane));
	for (i = 0; i < PAGE_SIZE / sizeof(u64); i++) {
		u64 x = lane[i % KSM_LANES] ^ word[i];

		lane[i % KSM_LANES] = ror64(x ^ (x & U32_MAX) * KSM_LANE_K, 32);
	}
	return ksm_lanes_fold(lane);
}

/* Not UML's x86-64, which has no kernel_fpu_begin_mask() */
#if defined(CONFIG_X86_64) && !defined(CONFIG_UML)
/* AVX2 usable: the lane function is the checksum.  Set once, at boot. */
static DEFINE_STATIC_KEY_FALSE(ksm_simd);

static void __init ksm_simd_init(void)
{
	if (boot_cpu_has(X86_FEATURE_AVX2) &&
	    cpu_has_xfeatures(XFEATURE_MASK_SSE | XFEATURE_MASK_YMM, NULL))
		static_branch_enable(&ksm_simd);
}

/* Is the lane function this kernel's checksum? */
static inline bool ksm_simd_on(void)
{
	return static_branch_likely(&ksm_simd);
}

static bool ksm_simd_usable(void)
{
	return ksm_simd_on() && may_use_simd();
}

/*
 * The lane function with AVX2: four ymm registers of four lanes, 128
 * bytes a step (19 instructions).  Integer instructions only: no MXCSR
 * or x87 state to set up.
 */
static u32 ksm_lanes_sum_avx2(const u64 *word)
{
	u64 lane[KSM_LANES];
	unsigned long off = 0;
	u64 k = KSM_LANE_K;

	/* KASAN and KCSAN do not see into the asm */
	instrument_read(word, PAGE_SIZE);
	kernel_fpu_begin_mask(0);
	asm volatile("vmovdqu     (%[seed]), %%ymm0\n\t"
		     "vmovdqu   32(%[seed]), %%ymm1\n\t"
		     "vmovdqu   64(%[seed]), %%ymm2\n\t"
		     "vmovdqu   96(%[seed]), %%ymm3\n\t"
		     "vpbroadcastq %[k], %%ymm7\n"
		     "1:\tvpxor    (%[p],%[off]), %%ymm0, %%ymm0\n\t"
		     "vpxor   32(%[p],%[off]), %%ymm1, %%ymm1\n\t"
		     "vpxor   64(%[p],%[off]), %%ymm2, %%ymm2\n\t"
		     "vpxor   96(%[p],%[off]), %%ymm3, %%ymm3\n\t"
		     "vpmuludq %%ymm7, %%ymm0, %%ymm4\n\t"
		     "vpmuludq %%ymm7, %%ymm1, %%ymm5\n\t"
		     "vpxor   %%ymm4, %%ymm0, %%ymm0\n\t"
		     "vpxor   %%ymm5, %%ymm1, %%ymm1\n\t"
		     "vpshufd $0xb1, %%ymm0, %%ymm0\n\t"
		     "vpshufd $0xb1, %%ymm1, %%ymm1\n\t"
		     "vpmuludq %%ymm7, %%ymm2, %%ymm4\n\t"
		     "vpmuludq %%ymm7, %%ymm3, %%ymm5\n\t"
		     "vpxor   %%ymm4, %%ymm2, %%ymm2\n\t"
		     "vpxor   %%ymm5, %%ymm3, %%ymm3\n\t"
		     "vpshufd $0xb1, %%ymm2, %%ymm2\n\t"
		     "vpshufd $0xb1, %%ymm3, %%ymm3\n\t"
		     "add     $128, %[off]\n\t"
		     "cmp     %[end], %[off]\n\t"
		     "jb      1b\n\t"
		     "vmovdqu %%ymm0,   (%[lane])\n\t"
		     "vmovdqu %%ymm1, 32(%[lane])\n\t"
		     "vmovdqu %%ymm2, 64(%[lane])\n\t"
		     "vmovdqu %%ymm3, 96(%[lane])\n\t"
		     "vzeroupper"
		     : [off] "+r" (off), "=m" (lane)
		     : [p] "r" (word), [seed] "r" (ksm_lane_seed),
		       [lane] "r" (lane), [k] "m" (k), [end] "i" (PAGE_SIZE),
		       "m" (*(const u64 (*)[PAGE_SIZE / sizeof(u64)])word),
		       "m" (ksm_lane_seed)
		     : "cc");
	kernel_fpu_end();
	return ksm_lanes_fold(lane);
}

/*
 * The offset of the first 128 bytes that differ between @x and @y, or
 * PAGE_SIZE: 16 instructions a step.
 */
static unsigned long ksm_diff_avx2(const u64 *x, const u64 *y)
{
	unsigned long off = 0;

	instrument_read(x, PAGE_SIZE);
	instrument_read(y, PAGE_SIZE);
	kernel_fpu_begin_mask(0);
	asm volatile("1:\tvmovdqu   (%[x],%[off]), %%ymm0\n\t"
		     "vmovdqu 32(%[x],%[off]), %%ymm1\n\t"
		     "vmovdqu 64(%[x],%[off]), %%ymm2\n\t"
		     "vmovdqu 96(%[x],%[off]), %%ymm3\n\t"
		     "vpxor     (%[y],%[off]), %%ymm0, %%ymm0\n\t"
		     "vpxor   32(%[y],%[off]), %%ymm1, %%ymm1\n\t"
		     "vpxor   64(%[y],%[off]), %%ymm2, %%ymm2\n\t"
		     "vpxor   96(%[y],%[off]), %%ymm3, %%ymm3\n\t"
		     "vpor    %%ymm1, %%ymm0, %%ymm0\n\t"
		     "vpor    %%ymm3, %%ymm2, %%ymm2\n\t"
		     "vpor    %%ymm2, %%ymm0, %%ymm0\n\t"
		     "vptest  %%ymm0, %%ymm0\n\t"
		     "jnz     2f\n\t"
		     "add     $128, %[off]\n\t"
		     "cmp     %[end], %[off]\n\t"
		     "jb      1b\n"
		     "2:\tvzeroupper"
		     : [off] "+r" (off)
		     : [x] "r" (x), [y] "r" (y), [end] "i" (PAGE_SIZE),
		       "m" (*(const u64 (*)[PAGE_SIZE / sizeof(u64)])x),
		       "m" (*(const u64 (*)[PAGE_SIZE / sizeof(u64)])y)
		     : "cc");
	kernel_fpu_end();
	return off;
}
#else
static inline void ksm_simd_init(void)
{
}

static inline bool ksm_simd_on(void)
{
	return false;
}

static inline bool ksm_simd_usable(void)
{
	return false;
}

/* Never called (no SIMD here): for the compiler, and KUnit's twin test. */
static inline u32 ksm_lanes_sum_avx2(const u64 *word)
{
	return ksm_lanes_sum_words(word);
}

static inline unsigned long ksm_diff_avx2(const u64 *x, const u64 *y)
{
	return 0;
}
#endif

static u32 page_checksum(struct page *page)
{
	const u64 *word = kmap_local_page(page);
	u32 sum;

	if (!ksm_simd_on())
		sum = ksm_words_sum(word);
	else if (ksm_simd_usable())
		sum = ksm_lanes_sum_avx2(word);
	else
		sum = ksm_lanes_sum_words(word);
	kunmap_local(word);
	return sum;
}

/* Comparisons of pages made, counted for the KUnit tests only */
#ifdef CONFIG_KSM_KUNIT_TEST
static unsigned long ksm_test_cmps;
#define ksm_count_cmp()	(ksm_test_cmps++)
#else
#define ksm_count_cmp()	do { } while (0)
#endif

/*
 * ksm_pages_cmp - order two pages by content
 *
 * Returns 0 if @a and @b hold the same bytes, else a negative or positive
 * number, consistently: an order on contents for the trees to sort pages
 * of equal checksum by (see "Content is input" in the overview).  Any
 * total order will do, so it compares 64-bit words as numbers, the first
 * pair that differs deciding, and reads 64 bytes per step until then (128
 * with AVX2, 32 bytes per instruction).
 * arm64 with MTE hooks memcmp_pages() to keep tagged pages apart, so it
 * goes through the hook there.
 */
static int ksm_pages_cmp(struct page *a, struct page *b)
{
	const u64 *x, *y;
	unsigned int i, j;
	int ret = 0;

	ksm_count_cmp();
	if (IS_ENABLED(CONFIG_ARM64_MTE))
		return memcmp_pages(a, b);

	x = kmap_local_page(a);
	y = kmap_local_page(b);
	i = 0;
	if (ksm_simd_usable()) {
		/* Only the words of the first block that differs */
		i = ksm_diff_avx2(x, y) / sizeof(u64);
	}
	for (; i < PAGE_SIZE / sizeof(u64); i += 8) {
		u64 diff = (x[i] ^ y[i]) | (x[i + 1] ^ y[i + 1]) |
			   (x[i + 2] ^ y[i + 2]) | (x[i + 3] ^ y[i + 3]) |
			   (x[i + 4] ^ y[i + 4]) | (x[i + 5] ^ y[i + 5]) |
			   (x[i + 6] ^ y[i + 6]) | (x[i + 7] ^ y[i + 7]);

		if (!diff)
			continue;
		/*
		 * The pair that differs.  A page may be written meanwhile (an
		 * unstable tree's page, the scanned one): each word is read
		 * once, and the search stays in these eight, which may all
		 * be equal by now.
		 */
		for (j = i; j < i + 8; j++) {
			u64 p = READ_ONCE(x[j]), q = READ_ONCE(y[j]);

			if (p != q) {
				ret = p < q ? -1 : 1;
				goto out;
			}
		}
	}
out:
	kunmap_local(y);
	kunmap_local(x);
	return ret;
}

static inline bool ksm_pages_equal(struct page *a, struct page *b)
{
	return !ksm_pages_cmp(a, b);
}

/* ---------------------------------------------------------------------- */
/* Merge domains                                                          */
/* ---------------------------------------------------------------------- */

#ifdef CONFIG_MEMCG
/*
 * The id of the memory cgroup of @mm's owner, as a merge domain.  An mm
 * whose owner is gone (it exits, held by /proc or ptrace a while longer)
 * merges with nothing: not in the root cgroup's domain, which
 * get_mem_cgroup_from_mm() would give.
 */
static u64 ksm_cgroup_domain(struct mm_struct *mm)
{
	struct mem_cgroup *memcg = NULL;
	struct task_struct *owner;
	u64 id;

	rcu_read_lock();
	owner = rcu_dereference(mm->owner);
	if (owner)
		memcg = mem_cgroup_from_task(owner);
	if (memcg && !css_tryget(&memcg->css))
		memcg = NULL;
	rcu_read_unlock();
	if (!memcg)
		return KSM_DOMAIN_NONE;
	id = cgroup_id(memcg->css.cgroup);
	css_put(&memcg->css);
	return id && id < KSM_DOMAIN_NONE ? id : KSM_DOMAIN_NONE;
}
#else
static inline u64 ksm_cgroup_domain(struct mm_struct *mm)
{
	return KSM_DOMAIN_NONE;
}
#endif

/*
 * The merge domain of @kmm's pages now.  The scanner asks once per batch
 * and mm, with ksm_lock and the mm's mmap_lock held; a process moved to
 * another cgroup is seen in its new domain from its next batch on.  In
 * the "process" mode it asks each time it takes the mmap_lock, as a fork
 * (which takes it for write) changes the domain.
 */
static u64 ksm_mm_domain(struct ksm_mm *kmm)
{
	switch (ksm_domain_mode) {
	case KSM_DOMAIN_PROCESS:
		return kmm->serial;
	case KSM_DOMAIN_CGROUP:
		return ksm_cgroup_domain(kmm->slot.mm);
	default:
		return 0;
	}
}

/*
 * May a page of merge domain @domain keep mapping the KSM page of @stable?
 * Its own domain's, yes; everyone's, with merge_zero_across_domains.  In
 * the "process" mode the only way to a KSM page of another domain is fork
 * (the child's inherited pages, and the parent's, whose domain changed),
 * which shared the page anyway: it stays.  In the "cgroup" mode the
 * process moved, and it gets a copy of its own.
 */
static inline bool ksm_domain_fits(const struct ksm_stable *stable,
				   u64 domain)
{
	if (stable->domain == domain)
		return true;
	if (!stable->domain)
		return READ_ONCE(ksm_zero_across_domains);
	return ksm_domain_mode == KSM_DOMAIN_PROCESS;
}

/* A new "process" mode domain: at registration, and for a parent at fork. */
static u64 ksm_new_serial(void)
{
	lockdep_assert_held(&ksm_mm_lock);
	if (ksm_last_serial < KSM_DOMAIN_NONE)
		ksm_last_serial++;
	return ksm_last_serial;
}

/*
 * In the "process" mode, has @mm, being scanned, forked since the page
 * was read?  A fork moves the parent to a new domain (__ksm_fork()), and
 * leaves the KSM pages it mapped in the old one, which nobody merges
 * into any more: the child may map them too, and the parent, having let
 * go of one, would learn by merging into it again that the child still
 * holds the content.  A merge in the old domain would do just that, so
 * none happens.  Asked right before a merge, under @mm's mmap_lock, which
 * fork takes for write.
 */
static bool ksm_domain_stale(struct mm_struct *mm)
{
	return ksm_domain_mode == KSM_DOMAIN_PROCESS &&
	       mm == ksm_cursor.kmm->slot.mm &&
	       READ_ONCE(ksm_cursor.kmm->serial) != ksm_cursor.domain;
}

/*
 * May a page of zeroes in the mm being scanned merge across domains
 * (merge_zero_across_domains)?  Then it
 * looks for a KSM page of everyone's domain (0) in the stable tree.  It
 * still pairs in the unstable tree inside its own domain only: its
 * content may change as soon as it was read, and the unstable tree
 * compares with other pages as they are now.  A KSM page made of such a
 * pair goes to domain 0 once it holds zeroes write-protected (ksm_pair()),
 * so domain 0 holds nothing but zeroes, and merging into it compares with
 * zeroes.
 */
static bool ksm_zero_for_all(void)
{
	return ksm_cursor.domain && READ_ONCE(ksm_zero_across_domains);
}

/* ---------------------------------------------------------------------- */
/* Finding a KSM page from its stable node                               */
/* ---------------------------------------------------------------------- */

/*
 * The folio at @pfn, or NULL if the memory map there is gone: a node
 * outlives its page, and the page's memory may have been hot-removed
 * since (offlining drops the nodes of a block, ksm_drop_nodes_in(), but
 * device memory has no such notifier).
 */
static struct folio *ksm_pfn_folio(unsigned long pfn)
{
	return pfn_valid(pfn) ? pfn_folio(pfn) : NULL;
}

/*
 * stable_folio_get - the KSM page of @stable, referenced and maybe locked
 *
 * A stable node does not pin its page: the page goes away when its last
 * mapping does (the free clears ->mapping), and migration moves it to
 * another frame (folio_migrate_ksm() updates ->pfn, then clears the old
 * page's ->mapping).  So take a speculative reference on whatever is at
 * ->pfn and check that it still points back here; if not, look at ->pfn
 * again in case migration moved it.
 *
 * Returns the folio, or NULL if the node is stale (its page is gone).
 */
static struct folio *stable_folio_get(struct ksm_stable *stable, bool lock)
{
	void *want = stable_mapping(stable);
	unsigned long pfn;
	struct folio *folio;

	if (stable_dead(stable))
		return NULL;
again:
	pfn = READ_ONCE(stable->pfn);
	folio = ksm_pfn_folio(pfn);
	if (!folio || READ_ONCE(folio->mapping) != want)
		goto gone;

	if (!folio_try_get(folio)) {
		/*
		 * A zero count means freed, or frozen while migration or
		 * reclaim moves a swap cache page: wait for that to end.
		 */
		if (folio_test_swapcache(folio)) {
			cond_resched();
			goto again;
		}
		goto gone;
	}
	if (READ_ONCE(folio->mapping) != want)
		goto gone_put;

	if (lock) {
		folio_lock(folio);
		if (READ_ONCE(folio->mapping) != want) {
			folio_unlock(folio);
			goto gone_put;
		}
	}
	return folio;

gone_put:
	folio_put(folio);
gone:
	/* Pairs with smp_wmb() in folio_migrate_ksm(). */
	smp_rmb();
	if (READ_ONCE(stable->pfn) != pfn)
		goto again;
	return NULL;
}

/* ---------------------------------------------------------------------- */
/* Stable nodes and the maps of their mappings                           */
/* ---------------------------------------------------------------------- */

/*
 * Make sure that stable_link() has a chunk for one more map of @stable,
 * if it needs a new one, charged to @kmm, whose mapping it is for (a
 * spare left unused goes to the next mapping that needs one), over its
 * limit if need be (see ksm_charge_begin()): ksmd calls
 * this before it changes the page table, so that linking cannot fail
 * afterwards.  Returns -ENOMEM if none could be had without reclaim (the
 * page waits a pass).  ksmd's alone, under ksm_lock, and a node gains
 * maps only there.
 */
static int stable_make_room(struct ksm_stable *stable, struct ksm_mm *kmm)
{
	unsigned int n = stable->nr_items, c;

	if (n && chunk_fill(n) < chunk_cap[chunk_class(n)])
		return 0;
	c = chunk_class(n + 1);
	if (!ksm_chunk_spare[c])
		ksm_chunk_spare[c] = ksm_alloc_for(ksm_chunk_cache[c], kmm, 0);
	return ksm_chunk_spare[c] ? 0 : -ENOMEM;
}

/* The chunks ksmd made ready and did not use: at run=2. */
static void ksm_free_spare_chunks(void)
{
	unsigned int c;

	for (c = 0; c < KSM_CHUNK_CLASSES; c++) {
		if (ksm_chunk_spare[c])
			kmem_cache_free(ksm_chunk_cache[c], ksm_chunk_spare[c]);
		ksm_chunk_spare[c] = NULL;
	}
}

/*
 * A new map of @kmm's page at @addr on @stable, in the room that
 * stable_make_room() made, its anon_vma for the caller to fill.
 */
static struct ksm_map *map_add(struct ksm_stable *stable, struct ksm_mm *kmm,
			       unsigned long addr)
{
	unsigned int n = stable->nr_items, slot;
	struct ksm_chunk *chunk = stable->chunks;
	struct ksm_map *map;

	if (!n || chunk_fill(n) == chunk_cap[chunk_class(n)]) {
		unsigned int c = chunk_class(n + 1);

		chunk = ksm_chunk_spare[c];
		ksm_chunk_spare[c] = NULL;
		chunk->stable = stable;
		chunk->next = stable->chunks;
		stable->chunks = chunk;
		ksm_chunk_bytes += chunk_bytes(c);
	}
	slot = chunk_fill(n + 1) - 1;
	map = &chunk->map[slot];
	map->kmm = kmm;
	map->anon_vma = NULL;
	map->address = addr | ITEM_STABLE |
		       (unsigned long)slot << MAP_SLOT_SHIFT;
	stable->nr_items++;
	return map;
}

/*
 * Link @item's mapping to @stable: the KSM page is locked, or is being
 * made one, and stable_make_room() made room.  The mapping's map is
 * found again through @anon_vma, and its slot points to it now; @item
 * stays ksmd's working copy of it.
 */
static void stable_link(struct ksm_stable *stable, struct ksm_item *item,
			struct vm_area_struct *vma, struct anon_vma *anon_vma)
{
	unsigned long addr = item_address(item);
	struct ksm_map *map = map_add(stable, item->kmm, addr);

	get_anon_vma(anon_vma);
	map->anon_vma = anon_vma;
	/*
	 * The offset of a page's mapping does not change while it stays
	 * mapped there: VMA splits and merges keep it, and mremap unmerges
	 * KSM pages before it moves them.  An anonymous area's offset is its
	 * address's page number, unless mremap moved it.
	 */
	if (linear_page_index(vma, addr) == addr >> PAGE_SHIFT)
		map->address |= ITEM_PGOFF;
	if (stable->nr_items > 1)
		ksm_pages_sharing++;
	else
		ksm_pages_shared++;
	item_mm(item)->ksm_merging_pages++;

	item->address |= map->address & (ITEM_STABLE | ITEM_PGOFF);
	item->stable = stable;
	item->anon_vma = anon_vma;
	item->map = map;
	item_slot_set(item, map);
}

/*
 * @map, of @stable, no longer maps its KSM page: it lets go of its
 * anon_vma and of its mm's ksm_merging_pages.
 */
static void map_release(struct ksm_stable *stable, struct ksm_map *map)
{
	struct mm_struct *mm = map->kmm->slot.mm;

	trace_ksm_remove_rmap_item(stable->pfn, map, mm);
	put_anon_vma(map->anon_vma);
	mm->ksm_merging_pages--;
}

/*
 * Take @map out of its node's chunks: the newest chunk's last map takes
 * its place, and that map's slot follows it; a chunk left empty goes.
 * The slot of @map's own page is the caller's to rewrite.  Under ksm_lock,
 * and the KSM page's lock if the node lives: no rmap walk or scanner
 * meanwhile.  Returns how many maps the node has left.
 */
static unsigned int map_remove(struct ksm_map *map)
{
	struct ksm_stable *stable = map_chunk(map)->stable;
	struct ksm_chunk *head = stable->chunks;
	unsigned int n = stable->nr_items, fill = chunk_fill(n);
	struct ksm_map *last = &head->map[fill - 1];

	if (last != map) {
		map->kmm = last->kmm;
		map->anon_vma = last->anon_vma;
		map->address = (last->address & ~MAP_SLOT_MASK) |
			       (map->address & MAP_SLOT_MASK);
		rec_set(map->kmm, map_address(map), map);
	}
	if (fill == 1) {
		unsigned int c = chunk_class(n);

		stable->chunks = head->next;
		kmem_cache_free(ksm_chunk_cache[c], head);
		ksm_chunk_bytes -= chunk_bytes(c);
	}
	return --stable->nr_items;
}

/* Take @map off its node, whose KSM page is locked. */
static void map_unlink(struct ksm_map *map)
{
	map_release(map_chunk(map)->stable, map);
	if (map_remove(map))
		ksm_pages_sharing--;
	else
		ksm_pages_shared--;
}

/*
 * Heirs
 *
 * A map goes when its page no longer maps the KSM page: written to,
 * unmapped, or its mm gone.  Children that its mm forked since may still
 * map the KSM page at that address, in areas linked to the map's
 * anon_vma: the second round of the map's walk (ksm_rmap_rounds()) is what
 * reaches them, until ksmd scans them and links maps of their own, up to
 * a pass later (or later still, while a child keeps its mmap_lock busy).
 * Were the map to go first, nothing would reach those mappings meanwhile:
 * the KSM page could neither migrate nor be reclaimed, nor could memory
 * failure unmap it, and every tenant whose pages merged into it would
 * have a page pinned where it sits (compaction, CMA, memory offline).
 *
 * So the map passes, whole, to such a child (map_pass_on()), or to any
 * other mm with an area in that anon_vma's tree that maps the page there
 * (a brother; the page's own mm, when the map's anon_vma is ->native),
 * which the walk reaches just as well: it becomes the child's map of the
 * page at that address, with its slot, its counters, and the anon_vma it
 * had, whose pin it keeps, and whose tree holds the child's area and its
 * brothers'.  It is the map that ksmd
 * would have linked there, but for its anon_vma, an ancestor's: the
 * scanner takes it as it is (ksm_item_reaches()).  A child that has a
 * slot there already (a map of its own, which reaches only its own
 * children) is passed over.  The map goes when no child found maps the
 * page there.
 *
 * The search is bounded: KSM_HEIR_TRIES areas of the anon_vma's tree at
 * most, each a range check and at most one page table lookup, under the
 * locks an rmap walk takes, the anon_vma lock only tried (a tenant's fork
 * or munmap holds it for write).  A tenant's forks lengthen only the
 * searches its own maps' departures cost: one a map, when ksmd meets its
 * page changed, or drops the records of an area or an mm that went, some
 * at a time (cursor_drop_to(), ksm_reap_exited()).  A tenant that fills
 * the first places with children that do not map the page, or keeps its
 * anon_vma lock busy, gets only what every mapping gets upstream: its
 * children are unreached until ksmd scans them.
 */
#define KSM_HEIR_TRIES	32

/* The heir being given a map: __ksm_exit() leaves it to ksmd. */
static struct ksm_mm *ksm_heir;

/*
 * A registered mm, not @map's, that maps @folio (the KSM page, locked) at
 * @map's address in an area of @map's anon_vma, and has no slot there
 * yet; it is left as ksm_heir, with *@pgoff_ok telling whether its area's
 * offset there is the address's page number (ITEM_PGOFF).  The anon_vma
 * lock, only tried (see "Locking"), keeps the area, so its mm too, while
 * ksm_mm_lock looks the mm up: a registered mm, not a new one at the same
 * address.  Slots change only under ksm_lock, which ksmd holds.
 */
static struct ksm_mm *map_find_heir(struct ksm_map *map, struct folio *folio,
				    bool *pgoff_ok)
{
	unsigned long address = READ_ONCE(map->address);
	unsigned long addr = address & PAGE_MASK;
	struct mm_struct *mm = map->kmm->slot.mm;
	struct anon_vma *anon_vma = map->anon_vma;
	pgoff_t first = 0, last = ULONG_MAX;
	struct anon_vma_chain *avc;
	struct ksm_mm *heir = NULL;
	unsigned int tries = 0;

	/* A fork copies an area with its offsets. */
	if (address & ITEM_PGOFF) {
		first = addr >> PAGE_SHIFT;
		last = first;
	}
	if (!anon_vma_trylock_read(anon_vma))
		return NULL;
	anon_vma_interval_tree_foreach(avc, &anon_vma->rb_root, first, last) {
		struct vm_area_struct *vma = avc->vma;
		DEFINE_FOLIO_VMA_WALK(pvmw, folio, vma, addr, 0);

		if (++tries > KSM_HEIR_TRIES)
			break;
		/* Only mergeable areas: see ksm_rmap_rounds(). */
		if (vma->vm_mm == mm || !(vma->vm_flags & VM_MERGEABLE) ||
		    addr < vma->vm_start || addr >= vma->vm_end)
			continue;
		/*
		 * Not one that exits, as far as can be seen: __ksm_exit()
		 * clears the flag after it drops ksm_mm_lock, so this is a
		 * hint.  What holds is ksm_heir, checked by __ksm_exit()
		 * under that lock; an mm that exits all the same has its
		 * slot reaped with its other records, and the map departs
		 * again.
		 */
		if (!test_bit(MMF_VM_MERGEABLE, &vma->vm_mm->flags))
			continue;
		if (!page_vma_mapped_walk(&pvmw))
			continue;
		page_vma_mapped_walk_done(&pvmw);
		spin_lock(&ksm_mm_lock);
		heir = ksm_mm_lookup(vma->vm_mm);
		/* One with a map of its own reaches its own children only. */
		if (heir && xa_load(&heir->items, rec_index(addr)))
			heir = NULL;
		if (heir)
			ksm_heir = heir;
		spin_unlock(&ksm_mm_lock);
		if (heir) {
			*pgoff_ok = linear_page_index(vma, addr) ==
				    addr >> PAGE_SHIFT;
			break;
		}
	}
	anon_vma_unlock_read(anon_vma);
	return heir;
}

/*
 * Pass @map, whose mapping went, to a child that maps @folio, its KSM
 * page (locked), at the same address (see "Heirs"), so that the map stays
 * on its node.  Returns false if there is none, or if its slot there
 * could not be made: then the map goes.  The slot @map had is the
 * caller's to rewrite or drop.  Under ksm_lock.
 */
static bool map_pass_on(struct ksm_map *map, struct folio *folio)
{
	unsigned long addr = map_address(map);
	bool passed = false, pgoff_ok;
	struct ksm_mm *heir;
	struct xa_state xas;

	lockdep_assert_held(&ksm_lock);
	/* A retired node (a poisoned page) takes no new map: ksm_join(). */
	if (RB_EMPTY_NODE(&map_chunk(map)->stable->rb))
		return false;
	heir = map_find_heir(map, folio, &pgoff_ok);
	if (!heir)
		return false;
	/*
	 * Over the heir's limit if need be (see ksm_charge_begin()): the map
	 * holds a mapping it has.  The heir may unmap the address once the
	 * anon_vma lock is dropped: its scan then drops the slot as stale,
	 * and the map departs again.
	 */
	if (!rec_store_new(&xas, heir, addr, map, __GFP_HIGH)) {
		rec_added(heir, addr);
		map->kmm->slot.mm->ksm_merging_pages--;
		heir->slot.mm->ksm_merging_pages++;
		map->kmm = heir;
		clear_bit(ITEM_RELINK_BIT, &map->address);
		if (!pgoff_ok)
			clear_bit(ITEM_PGOFF_BIT, &map->address);
		/* Its node may be the one the cursor's walk holds. */
		if (heir == ksm_cursor.kmm)
			ksm_walk_ok = false;
		passed = true;
	}
	/* From now on an exit finds the slot, and leaves the mm to ksmd. */
	spin_lock(&ksm_mm_lock);
	ksm_heir = NULL;
	spin_unlock(&ksm_mm_lock);
	return passed;
}

/* @map's mapping of @folio, locked, went: the map passes on, or goes. */
static void map_depart(struct ksm_map *map, struct folio *folio)
{
	if (!map_pass_on(map, folio))
		map_unlink(map);
}

/*
 * @item, ksmd's working copy of a map, outlived it: it is an item in no
 * tree again, of checksum @sum (the KSM page's).  Its slot points to the
 * map's old place still.  The spare's (a copy of a map is always the
 * spare, or a stack copy that is never unlinked) is left for
 * item_settle() (or stable_link()), which stores in it anyway when ksmd
 * is done with the page; a full item's would be pointed to it now.
 * Nothing reads the slot of the page ksmd works on meanwhile: only its
 * page's work is under way, and slots are read only at the cursor and
 * where maps move or go, which this page's slot no longer knows of.
 */
static void item_unlinked(struct ksm_item *item, u32 sum)
{
	item->address &= ~(ITEM_STABLE | ITEM_PGOFF | ITEM_RELINK);
	item->checksum = sum;
	if (item == ksm_spare)
		ksm_spare_in_slot = false;
	else
		rec_set(item->kmm, item_address(item), item);
}

/*
 * Undo stable_link(): @item's page no longer maps @folio, the KSM page,
 * which is locked; its map goes, or passes to a child (map_pass_on()).
 */
static void stable_unlink(struct ksm_item *item, struct folio *folio)
{
	struct ksm_map *map = item->map;
	struct ksm_stable *stable = item->stable;

	VM_WARN_ON_ONCE(map_chunk(map)->stable != stable ||
			map_address(map) != item_address(item) ||
			map->kmm != item->kmm);
	map_depart(map, folio);
	item_unlinked(item, stable->checksum);
}

/* A node for the page of @kmm that is to become a KSM page, charged to it */
static struct ksm_stable *stable_alloc(u32 checksum, u64 domain, int nid,
				       struct ksm_mm *kmm)
{
	struct ksm_stable *stable;

	stable = ksm_alloc_for(ksm_stable_cache, kmm, __GFP_ZERO);
	if (!stable)
		return NULL;
	RB_CLEAR_NODE(&stable->rb);
	stable->checksum = checksum;
	stable->domain = domain;
	stable->nid = nid;
	ksm_stable_nodes++;
	return stable;
}

/* Unlink @stable from its ring, which has at least one other node. */
static void stable_ring_del(struct ksm_stable *stable)
{
	stable->dup_prev->dup_next = stable->dup_next;
	stable->dup_next->dup_prev = stable->dup_prev;
}

/* Link @stable into the ring of @same, after it. */
static void stable_ring_add(struct ksm_stable *stable, struct ksm_stable *same)
{
	stable->dup_next = same->dup_next;
	stable->dup_prev = same;
	same->dup_next->dup_prev = stable;
	same->dup_next = stable;
}

/*
 * Take @stable out of its group of KSM pages of equal content: O(1),
 * however many max_page_sharing made (a tenant's 64 GiB of one content
 * makes 65536, and freeing them all must not cost the square of that).
 */
static void stable_ungroup(struct ksm_stable *stable)
{
	struct ksm_stable *other = stable->dup_next;

	if (!other)
		return;
	/* A group of two that loses one is no group any more. */
	if (other->dup_next == stable) {
		other->dup_next = NULL;
		other->dup_prev = NULL;
		ksm_dup_groups--;
		ksm_dup_nodes -= 2;
	} else {
		stable_ring_del(stable);
		ksm_dup_nodes--;
	}
	stable->dup_next = NULL;
	stable->dup_prev = NULL;
}

/* Any walk under way starts again from the first node, when next due. */
static void ksm_tidy_restart(void)
{
	ksm_tidy.next = NULL;
	ksm_tidy.nid = -1;
}

/* Take @stable out of its stable tree, keeping ksm_tidy's place. */
static void stable_tree_erase(struct ksm_stable *stable)
{
	if (ksm_tidy.next == &stable->rb)
		ksm_tidy.next = rb_next(&stable->rb);
	rb_erase(&stable->rb, &ksm_stable_trees[stable->nid]);
	RB_CLEAR_NODE(&stable->rb);
}

/*
 * @stable leaves its tree, its group and the count of KSM pages, and lets
 * go of its page's own anon_vma: no rmap walk reaches it any more.
 */
static void stable_release(struct ksm_stable *stable)
{
	stable_ungroup(stable);
	if (!RB_EMPTY_NODE(&stable->rb))
		stable_tree_erase(stable);
	if (stable->native) {
		put_anon_vma(stable->native);
		stable->native = NULL;
	}
	trace_ksm_remove_ksm_page(stable->pfn);
	ksm_stable_nodes--;
}

static void stable_free(struct ksm_stable *stable)
{
	VM_WARN_ON_ONCE(stable->chunks);
	stable_release(stable);
	kmem_cache_free(ksm_stable_cache, stable);
}

/*
 * Dead nodes
 *
 * The KSM page of a node may go at any time: freed when its last mapping
 * is written to or unmapped.  ksmd finds that out when it looks for the
 * page (stable_folio_get()), at the latest when a pass ends and
 * ksm_tidy_stable() looks at every node, and the node dies then
 * (stable_drop_stale()): it leaves its tree, its group and the counters,
 * each of its maps lets go of its anon_vma and its mm's
 * ksm_merging_pages, and its ->pfn becomes KSM_PFN_DEAD.  Its maps stay
 * in their chunks, though, and their slots point to them still, until
 * ksmd meets each slot: the scanner at its cursor (rec_live()), or
 * rec_drop() when the page's address or its mm goes.  Each such meeting
 * turns the slot into a record of the page as it was (the node's
 * checksum, not "seen": a candidate at once, as a page unlinked from a
 * live node is), and the map goes as from a live node, the newest map
 * taking its place (map_remove()); the last one frees the node
 * (map_dead_put()).
 *
 * Rewriting every slot at once would cost an xarray descent and a store
 * per mapping, under ksm_lock, at the end of each pass in which a
 * process unmerged or rewrote its merged memory (madvise(MADV_UNMERGEABLE)
 * of 100 MiB: 25600 of them, while the madvise waits for the CPU).  This
 * way the stores are made one at a time, where ksmd meets each slot
 * anyway.
 *
 * Nothing else can reach a dead node: no page points to it, and it is in
 * no tree or group, so rmap walks, searches and the end-of-pass walk never
 * meet it.  As its maps go, so do their chunks: a mapping that ksmd does
 * not meet (its mm's mmap_lock always taken, ksmd stopped) keeps its own
 * map's share of a chunk, as a live node's would, not the chunks of every
 * other mm's; the last such map keeps a whole chunk (64 bytes) and the
 * node (80), charged to the mms they were made for (ksm_alloc_for()),
 * where a record (9) would do.  Counted
 * in general_profit (ksm_chunk_bytes) until then, not in its mm's
 * ksm_process_profit.  A working copy of one of its maps (ksmd's spare)
 * is mended with item_outlived().
 */

/* What the slot of a map of the dead @stable is to hold. */
static inline void *stable_dead_record(const struct ksm_stable *stable)
{
	return xa_mk_value((unsigned long)(stable->checksum & REC_SUM_MASK) <<
			   REC_SUM_SHIFT);
}

/*
 * A slot pointed to @map, of a dead node, and does no longer: the map
 * goes as from a live node (map_remove()), and the last one frees it.
 */
static void map_dead_put(struct ksm_map *map)
{
	struct ksm_stable *stable = map_chunk(map)->stable;

	VM_WARN_ON_ONCE(!stable_dead(stable) || !stable->nr_items);
	if (!map_remove(map))
		kmem_cache_free(ksm_stable_cache, stable);
}

/*
 * The KSM page of @stable is gone: the node dies (see "Dead nodes"), or
 * goes at once if nothing maps it.  O(maps), with no store: a walk of the
 * chunks.  The caller's working copy of one of the maps is the caller's
 * to mend (item_outlived()).  Nothing to do for a node dead already.
 */
static void stable_drop_stale(struct ksm_stable *stable)
{
	unsigned int n = stable->nr_items, left, fill, i;
	struct ksm_chunk *chunk = stable->chunks;

	if (stable_dead(stable))
		return;
	if (!n) {
		stable_free(stable);
		return;
	}
	for (left = n; left; left -= fill, chunk = chunk->next) {
		fill = chunk_fill(left);
		for (i = 0; i < fill; i++)
			map_release(stable, &chunk->map[i]);
		/* As many as there are mms: fork children join freely. */
		cond_resched();
	}
	ksm_pages_shared--;
	ksm_pages_sharing -= n - 1;
	stable_release(stable);
	WRITE_ONCE(stable->pfn, KSM_PFN_DEAD);
}

/*
 * The slot of the page at @addr of @kmm holds @entry: a map of a dead node
 * leaves it for a record (see "Dead nodes").  Returns what it holds now.
 */
static void *rec_live(struct ksm_mm *kmm, unsigned long addr, void *entry)
{
	struct ksm_stable *stable;
	void *rec;

	if (!entry || xa_is_value(entry) || !entry_is_map(entry))
		return entry;
	stable = map_chunk(entry)->stable;
	if (!stable_dead(stable))
		return entry;
	rec = stable_dead_record(stable);
	rec_set_at(kmm, addr, rec);
	map_dead_put(entry);
	return rec;
}

/*
 * @item, ksmd's working copy of a map, outlived its node, which
 * stable_drop_stale() just killed: the copy's map goes, as its slot will
 * be rewritten (item_unlinked()).
 */
static void item_outlived(struct ksm_item *item)
{
	u32 sum = item->stable->checksum;

	VM_WARN_ON_ONCE(!stable_dead(item->stable));
	map_dead_put(item->map);
	item_unlinked(item, sum);
}

/*
 * Free @stable once nothing maps its page any longer: the locked @folio
 * keeps its content but loses its node, and is freed with its last
 * reference.  A page still mapped by some process that has no map for
 * it (a child forked after the merge, or one that fork left sharing the
 * page when it became a KSM page in place) keeps its node, for the rmap
 * walks that must find that mapping.  So does a page in the swap cache,
 * unless everything is being unmerged: the swap entries that ksmd passed
 * (and forgot the items of) still refer to it, and each swap-in maps it
 * again only while it has a node (ksm_might_need_to_copy()); without one,
 * every swap-in would make a private copy.  The node goes once the page
 * is freed (ksm_tidy_stable()).  Only a node in the stable tree is
 * kept so: one that never got there (a pair that failed) or left it (a
 * poisoned page's, stable_retire()) would be found by nothing.
 */
static void stable_put_unused(struct ksm_stable *stable, struct folio *folio)
{
	if (stable->nr_items ||
	    (folio_mapped(folio) && !RB_EMPTY_NODE(&stable->rb)))
		return;
	if (folio_test_swapcache(folio) && ksm_run != KSM_RUN_UNMERGE &&
	    !RB_EMPTY_NODE(&stable->rb))
		return;
	folio_set_stable(folio, NULL);
	stable_free(stable);
}

/* Make @stable one of the group of KSM pages of @same's content. */
static void stable_group(struct ksm_stable *stable, struct ksm_stable *same)
{
	if (!same->dup_next) {
		same->dup_next = same;
		same->dup_prev = same;
		ksm_dup_groups++;
		ksm_dup_nodes += 2;
	} else {
		ksm_dup_nodes++;
	}
	stable_ring_add(stable, same);
	/*
	 * A group is trusted or not as a whole (stable_mark_collided()): a
	 * new member of a marked group is marked, in O(1) (a tenant may grow
	 * a marked group to 65536); a marked node (one re-filed after
	 * migration) marks an unmarked group, once.
	 */
	if (same->collided) {
		stable->collided = 1;
	} else if (stable->collided) {
		struct ksm_stable *s = same;

		do {
			s->collided = 1;
			s = s->dup_next;
		} while (s != same);
	}
}

/*
 * No new page may meet @stable, whose KSM page @folio stays poisoned: out
 * of the tree, nothing finds it, and ksm_join() links no item to it;
 * stable_put_unused() frees it with its last map.  Without maps it goes
 * at once, if @folio is locked (NULL if not).  A process that fork left
 * sharing the page when it became a KSM page in place may still map it
 * (ksm_rmap_native()): no rmap walk finds that mapping any more, so
 * memory_failure() neither signals that process nor unmaps the page from
 * it, and the page neither migrates nor is reclaimed while it lasts, as
 * with upstream's KSM when that process is the parent (upstream reaches a
 * child's).  Keeping the node for it would keep it for good, with the
 * poisoned page, and ksm_stable_nodes would then refuse the node knobs
 * (EBUSY) for good too.  See ksm_memory_failure().
 */
static void stable_retire(struct ksm_stable *stable, struct folio *folio)
{
	stable_ungroup(stable);
	if (!RB_EMPTY_NODE(&stable->rb))
		stable_tree_erase(stable);
	if (folio && !stable->nr_items) {
		folio_set_stable(folio, NULL);
		stable_free(stable);
	}
}

/*
 * Order the KSM page @kpage, of merge domain @domain and checksum @sum,
 * against the node @other of a stable tree: by domain, checksum, then
 * content.  Returns <0 or >0, or 0 for the same content in the same
 * domain; -EAGAIN (not an order) if @other's page is gone and @other was
 * dropped, so the caller must start its descent again.  An order it can
 * rely on: a KSM page never changes.
 */
static int stable_cmp(struct page *kpage, u64 domain, u32 sum,
		      struct ksm_stable *other)
{
	struct folio *folio;
	int cmp;

	if (domain != other->domain)
		return domain < other->domain ? -1 : 1;
	if (sum != other->checksum)
		return sum < other->checksum ? -1 : 1;
	folio = stable_folio_get(other, false);
	if (!folio) {
		stable_drop_stale(other);
		return -EAGAIN;
	}
	/*
	 * Poisoned, and memory_failure() has not retired it yet: a read
	 * would be a machine check.  Out of the tree with it.
	 */
	if (unlikely(PageHWPoison(folio_page(folio, 0)))) {
		if (folio_trylock(folio)) {
			stable_retire(other, folio_stable(folio) == other ?
					     folio : NULL);
			folio_unlock(folio);
		} else if (other->nr_items) {
			/* Its last item frees it (stable_put_unused()). */
			stable_retire(other, NULL);
		}
		/* Else the page lock is needed to free it: try again. */
		folio_put(folio);
		cond_resched();
		return -EAGAIN;
	}
	cmp = ksm_pages_cmp(kpage, folio_page(folio, 0));
	folio_put(folio);
	return cmp < 0 ? -1 : cmp;
}

/*
 * Insert @stable, whose KSM page is @kpage, in its tree, ordered by
 * checksum and then by content.  If a node of the same content is there
 * already (max_page_sharing made a second KSM page), @stable joins its
 * group and goes right after it, so that equal contents stay together.
 */
static void stable_insert(struct ksm_stable *stable, struct page *kpage)
{
	struct rb_root *root = &ksm_stable_trees[stable->nid];
	struct rb_node **link, *parent;
	struct ksm_stable *same;

	/*
	 * A page poisoned meanwhile is never read: its node stays out, as
	 * stable_retire() would put it (ksm_memory_failure() is on its way).
	 */
	if (PageHWPoison(kpage))
		return;
again:
	cond_resched();
	link = &root->rb_node;
	parent = NULL;
	same = NULL;
	while (*link) {
		struct ksm_stable *other;
		int cmp;

		parent = *link;
		other = rb_entry(parent, struct ksm_stable, rb);
		cmp = stable_cmp(kpage, stable->domain, stable->checksum,
				 other);
		if (cmp == -EAGAIN)
			goto again;
		if (!cmp) {
			/*
			 * The first of the content met, the one a search
			 * meets first too: it finds the new node next to it
			 * in the ring, within KSM_GROUP_STEPS.
			 */
			if (!same)
				same = other;
			cmp = 1;
		}
		link = cmp < 0 ? &parent->rb_left : &parent->rb_right;
	}
	if (same)
		stable_group(stable, same);
	rb_link_node(&stable->rb, parent, link);
	rb_insert_color(&stable->rb, root);
}

/* ---------------------------------------------------------------------- */
/* The unstable tree                                                      */
/* ---------------------------------------------------------------------- */

static inline u8 ksm_pass_tag(void)
{
	return (u8)ksm_cursor.pass;
}

static void unstable_erase(struct ksm_item *item)
{
	/* An item from an earlier pass sits in a tree nobody uses any more. */
	if (item->pass == ksm_pass_tag())
		rb_erase(&item->rb, &ksm_unstable_trees[item->nid]);
	item->address &= ~ITEM_UNSTABLE;
	ksm_pages_unshared--;
}

/* Drop whatever tree @item is in, so that it can be reused or freed. */
static void item_forget(struct ksm_item *item)
{
	if (item->address & ITEM_STABLE) {
		struct ksm_stable *stable = item->stable;
		struct folio *folio = stable_folio_get(stable, true);

		if (!folio) {
			stable_drop_stale(stable);
			item_outlived(item);
			return;
		}
		stable_unlink(item, folio);
		stable_put_unused(stable, folio);
		folio_unlock(folio);
		folio_put(folio);
	} else if (item->address & ITEM_UNSTABLE) {
		unstable_erase(item);
	}
}

static bool item_in_tree(const struct ksm_item *item)
{
	return (item->address & ITEM_STABLE) ||
	       ((item->address & ITEM_UNSTABLE) && item->pass == ksm_pass_tag());
}

/*
 * Items live in one cache, ksm_item_cache, and die young: those of the
 * unstable tree when the pass ends, the spare at the end of each batch.
 * (A mapping of a KSM page, which may live as long as the page, has a map
 * in chunks of their own: see "Maps".)  A page that goes into the
 * unstable tree keeps the spare, and the next page takes a new one.
 */

/*
 * item_settle - keep what ksmd knows of @item's page in its cheapest form
 * @item: an item that ksmd worked on: its mm's full item for the page, or
 *	ksm_spare filled from the page's record or map
 *
 * An item in the unstable tree stays, and its slot points to it; one
 * linked to a KSM page goes, its map and slot made already
 * (stable_link()); one in neither is folded back into the slot's record,
 * and goes.
 */
static void item_settle(struct ksm_item *item)
{
	/* Linked: its map holds the mapping, and its slot points there. */
	if (item->address & ITEM_STABLE) {
		if (item != ksm_spare)
			item_free(item);
		return;
	}
	if (!item_in_tree(item)) {
		item_slot_set(item, item_record(item));
		if (item != ksm_spare)
			item_free(item);
		return;
	}
	if (item == ksm_spare) {
		/* In the tree: a full item more, and no spare. */
		if (!ksm_spare_in_slot)
			item_slot_set(item, item);
		ksm_spare_in_slot = false;
		ksm_full_items++;
		ksm_spare = NULL;
	}
}

/*
 * Forget @map, whose slot goes (rec_drop()).  Waits for the KSM page's
 * lock, under ksm_lock: nothing else moves @map meanwhile.
 */
static void map_forget(struct ksm_map *map)
{
	struct ksm_stable *stable = map_chunk(map)->stable;
	struct folio *folio = NULL;

	if (!stable_dead(stable))
		folio = stable_folio_get(stable, true);
	if (!folio) {
		stable_drop_stale(stable);
		map_dead_put(map);
		return;
	}
	map_depart(map, folio);
	stable_put_unused(stable, folio);
	folio_unlock(folio);
	folio_put(folio);
}

/*
 * Drop the record @entry, at @index of @kmm, and its item or map if it
 * has one: the map first, whose unlinking may rewrite slots.
 */
static void rec_drop(struct ksm_mm *kmm, unsigned long index, void *entry)
{
	if (xa_is_value(entry)) {
		if (xa_to_value(entry) & REC_UNSHARED)
			ksm_pages_unshared--;
	} else if (entry_is_map(entry)) {
		map_forget(entry);
	} else {
		item_forget(entry);
		item_free(entry);
	}
	/* The node the cursor's walk holds may go. */
	ksm_walk_ok = false;
	xa_erase(&kmm->items, index);
	ksm_items--;
	kmm->slot.mm->ksm_rmap_items--;
}

/*
 * ksm_drain_unstable - fold the unstable trees' items back into records
 * @all: all of them; else stop as soon as ksm_lock is wanted elsewhere
 *
 * Called when a pass is over, and before anything that throws the trees
 * away: their items would be of no more use, and take 56 bytes a page
 * for the 9 of a record.  The pages stay counted in pages_unshared until
 * the scanner meets them again, as upstream's do.  Each item is taken out
 * of its tree properly, so that whoever takes ksm_lock between two calls
 * finds a sound tree.  Returns false if it stopped early.
 */
static bool ksm_drain_unstable(bool all)
{
	unsigned int done = 0;
	int nid;

	for (nid = 0; nid < (ksm_merge_across_nodes ? 1 : nr_node_ids); nid++) {
		struct rb_root *root = &ksm_unstable_trees[nid];
		struct rb_node *node = rb_first(root), *next;

		/*
		 * From the left: the leftmost node has no left child, so
		 * erasing it moves no other node, and the next one is at
		 * hand.  Nobody else changes the tree while we hold ksm_lock.
		 */
		for (; node; node = next) {
			struct ksm_item *item;

			if (++done > 64 && !all && ksm_lock_wanted())
				return false;
			if (!(done % 256))
				cond_resched();
			next = rb_next(node);
			item = rb_entry(node, struct ksm_item, rb);
			rb_erase(node, root);
			rec_set(item->kmm, item_address(item),
				item_record(item));
			item_free(item);
		}
	}
	return true;
}

/* ---------------------------------------------------------------------- */
/* Page table primitives: write-protect, replace, unshare                 */
/* ---------------------------------------------------------------------- */

static struct vm_area_struct *ksm_vma_at(struct mm_struct *mm,
					 unsigned long addr)
{
	struct vm_area_struct *vma = NULL;

	if (!ksm_test_exit(mm))
		vma = vma_lookup(mm, addr);
	if (vma && (vma->vm_flags & VM_MERGEABLE) && vma->anon_vma)
		return vma;
	return NULL;
}

/*
 * The VMA of the page the scanner works on, or NULL: ksm_scan_walk() holds
 * its mm's mmap_lock for read while it merges the page, and the merge
 * paths find that mm locked already (item_lock_vma()).  ksmd's alone,
 * under ksm_lock.
 */
static struct vm_area_struct *ksm_scan_vma;

/* Does the scanner hold @item's mm's mmap_lock? */
static inline bool item_mm_held(const struct ksm_item *item)
{
	return ksm_scan_vma && ksm_scan_vma->vm_mm == item_mm(item);
}

/*
 * Find @item's VMA again, with its mm's mmap_lock held for read; or NULL,
 * with the lock dropped (kept, if it is the scanner's), if the area is
 * gone or no longer mergeable, or the lock is busy: then the page waits
 * for the next pass (see ksm_mm_busy).  Callers take NULL as "not now",
 * never as "gone", and let go with item_unlock_vma().  In the scanner's
 * mm, the lock is the scanner's: nothing is taken, and the page's own VMA
 * needs no lookup.
 */
static struct vm_area_struct *item_lock_vma(struct ksm_item *item)
{
	unsigned long addr = item_address(item);
	struct vm_area_struct *vma;

	if (item_mm_held(item)) {
		vma = ksm_scan_vma;
		if (addr >= vma->vm_start && addr < vma->vm_end &&
		    !ksm_test_exit(vma->vm_mm))
			return vma;
		return ksm_vma_at(item_mm(item), addr);
	}
	if (!mmap_read_trylock(item_mm(item)))
		return NULL;
	vma = ksm_vma_at(item_mm(item), addr);
	if (!vma)
		mmap_read_unlock(item_mm(item));
	return vma;
}

/* Let go of what item_lock_vma() took for @item. */
static void item_unlock_vma(struct ksm_item *item)
{
	if (!item_mm_held(item))
		mmap_read_unlock(item_mm(item));
}

/*
 * The large folio whose pages the scanner merges without splitting it
 * first (ksm_large_keep()): @folio, referenced only while the scanner
 * holds @mm's mmap_lock; its range [@start, @end) in @mm and its @pfn stay
 * while the scanner is inside that range, across batches, so that the
 * folio is split, if some of it is still mapped, once the scanner is past
 * it (ksm_large_finish()).  @mm is only compared, never followed.  ksmd's
 * alone, under ksm_lock.
 */
static struct {
	struct folio *folio;
	struct mm_struct *mm;
	unsigned long start, end, pfn;
} ksm_large;

/*
 * The large folio that both pages ksm_pair() works on are of, or NULL: it
 * holds a reference on each, so the folio has one more than either fold
 * expects.  ksmd's alone, under ksm_lock.
 */
static struct folio *ksm_pair_folio;

/*
 * Has @folio references beyond its mappings, the swap cache's (one a
 * page), ksmd's own (the caller's, ksm_large's, ksm_pair_folio's)?  Then
 * someone (O_DIRECT, vmsplice, RDMA, a device) may write to it through
 * them, and it is not merged.
 */
static bool ksm_folio_pinned(struct folio *folio)
{
	long refs = folio_mapcount(folio) + 1 + (folio == ksm_large.folio) +
		    (folio == ksm_pair_folio);

	if (folio_test_swapcache(folio))
		refs += folio_nr_pages(folio);
	return folio_ref_count(folio) != refs;
}

/**
 * struct ksm_pte - a PTE that KSM holds cleared while it decides
 * @range: the mmu notifier range around the change
 * @ptl: the page table lock, held
 * @ptep: the PTE, mapped
 * @orig: what the PTE held
 */
struct ksm_pte {
	struct mmu_notifier_range range;
	spinlock_t *ptl;	/* of the page table holding @ptep */
	pte_t *ptep;
	pte_t orig;
};

/*
 * ksm_pte_take - clear the PTE that maps @folio at @addr, for a decision
 *
 * The PTE is cleared and the TLB flushed before the reference count is
 * checked, so that neither another CPU nor GUP-fast can start a write
 * after the check.  A reference beyond the mappings, the swap cache and
 * our own means someone (O_DIRECT, RDMA, a device) may still write to the
 * page through a pin: such a page is left alone.  On success the page
 * table lock stays held, and the entry must be given back with
 * ksm_pte_restore() or replaced with ksm_pte_replace(): a fault on the
 * cleared entry waits for the lock meanwhile.
 *
 * Called with the folio locked and mmap_lock held.  A large folio (see
 * ksm_large_keep()) is mapped by PTEs, each holding a reference; the swap
 * cache holds one a page, ksm_large one more, and ksm_pair() one more
 * when both its pages are of this folio (ksm_pair_folio).
 */
static int ksm_pte_take(struct vm_area_struct *vma, unsigned long addr,
			struct page *page, struct ksm_pte *kp)
{
	struct folio *folio = page_folio(page);
	struct mm_struct *mm = vma->vm_mm;
	bool exclusive;
	pmd_t *pmd;
	pte_t pte;

	pmd = mm_find_pmd(mm, addr);
	if (!pmd)
		return -EAGAIN;

	mmu_notifier_range_init(&kp->range, MMU_NOTIFY_CLEAR, 0, mm, addr,
				addr + PAGE_SIZE);
	mmu_notifier_invalidate_range_start(&kp->range);

	kp->ptep = pte_offset_map_lock(mm, pmd, addr, &kp->ptl);
	if (!kp->ptep)
		goto out;
	pte = ptep_get(kp->ptep);
	if (!pte_present(pte) || pte_pfn(pte) != page_to_pfn(page))
		goto unlock;

	exclusive = PageAnonExclusive(page);
	flush_cache_page(vma, addr, pte_pfn(pte));
	kp->orig = ptep_clear_flush(vma, addr, kp->ptep);
	if (ksm_folio_pinned(folio) ||
	    (exclusive && folio_try_share_anon_rmap_pte(folio, page))) {
		set_pte_at(mm, addr, kp->ptep, kp->orig);
		goto unlock;
	}
	if (pte_dirty(kp->orig))
		folio_mark_dirty(folio);
	return 0;

unlock:
	pte_unmap_unlock(kp->ptep, kp->ptl);
out:
	mmu_notifier_invalidate_range_end(&kp->range);
	return -EAGAIN;
}

/* Put the entry back, read-only and clean, and let go of the PTE. */
static void ksm_pte_restore(struct vm_area_struct *vma, unsigned long addr,
			    struct ksm_pte *kp)
{
	set_pte_at(vma->vm_mm, addr, kp->ptep,
		   pte_wrprotect(pte_mkclean(kp->orig)));
	pte_unmap_unlock(kp->ptep, kp->ptl);
	mmu_notifier_invalidate_range_end(&kp->range);
}

/*
 * Map @kpage at @addr in place of @page, whose PTE ksm_pte_take() holds;
 * with @kpage NULL, map the zero page, marked as KSM's by a dirty PTE.
 */
static void ksm_pte_replace(struct vm_area_struct *vma, unsigned long addr,
			    struct page *page, struct page *kpage,
			    struct ksm_pte *kp)
{
	struct folio *folio = page_folio(page);
	struct mm_struct *mm = vma->vm_mm;
	pte_t entry;

	if (kpage) {
		struct folio *kfolio = page_folio(kpage);

		VM_WARN_ON_ONCE_PAGE(PageAnonExclusive(kpage), kpage);
		folio_get(kfolio);
		folio_add_anon_rmap_pte(kfolio, kpage, vma, addr, RMAP_NONE);
		entry = pte_wrprotect(mk_pte(kpage, vma->vm_page_prot));
	} else {
		entry = pte_mkdirty(pte_mkspecial(pfn_pte(my_zero_pfn(addr),
							  vma->vm_page_prot)));
		ksm_map_zero_page(mm);
		dec_mm_counter(mm, MM_ANONPAGES);
	}
	/* userfaultfd-wp and soft-dirty tracking must not see a change. */
	if (pte_uffd_wp(kp->orig))
		entry = pte_mkuffd_wp(entry);
	if (pte_soft_dirty(kp->orig))
		entry = pte_mksoft_dirty(entry);
	set_pte_at(mm, addr, kp->ptep, entry);

	folio_remove_rmap_pte(folio, page, vma);
	if (!folio_mapped(folio))
		folio_free_swap(folio);
	folio_put(folio);
	pte_unmap_unlock(kp->ptep, kp->ptl);
	mmu_notifier_invalidate_range_end(&kp->range);
}

/*
 * Replace @page at @addr by @kpage (NULL: the zero page) if their contents
 * are equal.  The comparison runs with the PTE cleared under its lock, so
 * one TLB flush covers both the check and the change.
 */
static int ksm_pte_merge(struct vm_area_struct *vma, unsigned long addr,
			 struct page *page, struct page *kpage)
{
	struct ksm_pte kp;
	int err;

	err = ksm_pte_take(vma, addr, page, &kp);
	if (err)
		return err;
	if (!ksm_pages_equal(page, kpage ?: ZERO_PAGE(0))) {
		ksm_pte_restore(vma, addr, &kp);
		return -EAGAIN;
	}
	ksm_pte_replace(vma, addr, page, kpage, &kp);
	return 0;
}

/*
 * Return the first address in [@addr, @end) whose page table entry is not
 * empty (or that a huge page middle directory entry covers), or @end: no
 * page can live where no entry is.  Empty upper levels are skipped whole,
 * and a page table is read without its lock, as a hint: the caller looks
 * again under the lock.  This makes a scan of a huge sparse area cost
 * what its pages cost, not what its span does.  Called with mmap_lock
 * held, which keeps the upper levels of the page tables from being freed.
 *
 * Page tables that a tenant filled and emptied (MADV_DONTNEED leaves them)
 * cost a read an entry, so the entries read are added to *@reads, and the
 * walk stops after about KSM_TABLE_READS of them (8 page tables, some
 * microseconds), returning where it stopped: the caller counts them as
 * work, and yields.
 */
#define KSM_TABLE_READS		4096
static unsigned long ksm_next_table(struct mm_struct *mm, unsigned long addr,
				    unsigned long end, unsigned int *reads)
{
	unsigned int limit = *reads + KSM_TABLE_READS;

	while (addr < end) {
		pgd_t *pgd = pgd_offset(mm, addr);
		unsigned long next;
		p4d_t *p4d;
		pud_t *pud;
		pmd_t *pmd;
		pte_t *start, *pte;
		pmd_t pmdval;

		if (pgd_none(READ_ONCE(*pgd))) {
			addr = pgd_addr_end(addr, end);
			continue;
		}
		p4d = p4d_offset(pgd, addr);
		if (p4d_none(READ_ONCE(*p4d))) {
			addr = p4d_addr_end(addr, end);
			continue;
		}
		pud = pud_offset(p4d, addr);
		if (pud_none(READ_ONCE(*pud))) {
			addr = pud_addr_end(addr, end);
			continue;
		}
		if (*reads >= limit)
			return addr;
		pmd = pmd_offset(pud, addr);
		next = pmd_addr_end(addr, end);
		pmdval = pmdp_get_lockless(pmd);
		(*reads)++;
		if (pmd_none(pmdval)) {
			addr = next;
			continue;
		}
		/* A huge or changing entry: let the caller look. */
		if (!pmd_present(pmdval) || pmd_leaf(pmdval))
			return addr;
		/* A page table: its first entry that is not empty. */
		start = pte_offset_map(pmd, addr);
		if (!start)
			return addr;
		for (pte = start; addr < next; pte++, addr += PAGE_SIZE) {
			(*reads)++;
			if (!pte_none(ptep_get_lockless(pte)))
				break;
		}
		pte_unmap(start);
		if (addr < next)
			return addr;
	}
	return end;
}

/* Is @page mapped at @addr of @vma? */
static bool ksm_maps_page(struct vm_area_struct *vma, unsigned long addr,
			  struct page *page)
{
	struct folio_walk fw;
	bool ret = false;

	if (folio_walk_start(&fw, vma, addr, 0)) {
		ret = fw.page == page;
		folio_walk_end(&fw, vma);
	}
	return ret;
}

/*
 * Is a KSM page, or a KSM-placed zero page, mapped at @addr?  A KSM page
 * under migration counts: its migration entry must not be left behind
 * (mremap would carry it where the rmap walk that ends the migration
 * never looks), and the unshare fault waits for the migration to end.
 */
static bool ksm_mapped_at(struct vm_area_struct *vma, unsigned long addr)
{
	struct folio_walk fw;
	struct folio *folio;
	bool ret = false;

	folio = folio_walk_start(&fw, vma, addr, FW_ZEROPAGE | FW_MIGRATION);
	if (folio) {
		if (fw.level == FW_LEVEL_PTE && pte_present(fw.pte) &&
		    is_ksm_zero_pte(fw.pte))
			ret = true;
		else if (folio_test_ksm(folio))
			ret = true;
		folio_walk_end(&fw, vma);
	}
	return ret;
}

/*
 * ksm_unshare - give @vma a private copy wherever it maps a KSM page
 * between @start and @end
 *
 * An "unshare" fault copies a KSM page (or KSM's zero page) without
 * making the PTE writable, so it works in read-only, PROT_NONE and
 * userfaultfd write-protected areas alike.  Called with mmap_lock held,
 * for read or write.
 *
 * Return: 0, -ENOMEM if a copy could not be allocated, -ERESTARTSYS if a
 * signal is pending (the pages copied so far stay copied, so a restarted
 * call goes on where this one stopped).  A page whose fault fails for
 * another reason (a hardware memory error) is left as it is.
 */
static int ksm_unshare(struct vm_area_struct *vma, unsigned long start,
		       unsigned long end)
{
	struct mm_struct *mm = vma->vm_mm;
	unsigned long addr = start;

	while (addr < end) {
		unsigned int reads = 0;
		vm_fault_t ret;

		if (ksm_test_exit(mm))
			break;
		/* The call is restarted, or fails with EINTR: see the guide. */
		if (signal_pending(current))
			return -ERESTARTSYS;
		cond_resched();

		addr = ksm_next_table(mm, addr, end, &reads);
		if (addr >= end)
			break;
		if (!ksm_mapped_at(vma, addr)) {
			addr += PAGE_SIZE;
			continue;
		}
		ret = handle_mm_fault(vma, addr, FAULT_FLAG_UNSHARE |
				      FAULT_FLAG_REMOTE, NULL);
		if (ret & VM_FAULT_OOM)
			return -ENOMEM;
		/*
		 * A page that cannot be copied (a hardware memory error) stays
		 * as it is, as upstream leaves it: reading it would fail the
		 * same either way.
		 */
		if (ret & VM_FAULT_ERROR) {
			addr += PAGE_SIZE;
			continue;
		}
		/* Not advancing: check that the copy really took its place. */
	}
	return 0;
}

/*
 * Copies ksmd owes: a mapping of a KSM page of a foreign domain (the
 * process moved to another cgroup, merge_zero_across_domains was turned
 * off) must get a private copy.  A copy is a page allocated and charged
 * to the tenant's memory cgroup, with reclaim, even its OOM killer, if
 * the tenant is at its limit: not work to do under ksm_lock, where
 * everyone waiting for the lock would wait for the tenant's reclaim.  So
 * ksmd notes them here and makes them once it has let go of ksm_lock
 * (ksm_pay_copies()), right after the batch, which pauses when the list
 * is full and goes on once they are made.  ksmd's own: only ksmd's scan
 * notes copies, and ksmd pays them before it next sleeps.
 */
#define KSM_OWED_MAX	16
static struct {
	struct mm_struct *mm;
	unsigned long addr;
} ksm_owed[KSM_OWED_MAX];
static unsigned int ksm_nr_owed;

static void ksm_owe_copy(struct mm_struct *mm, unsigned long addr)
{
	if (ksm_nr_owed == KSM_OWED_MAX)
		return;
	mmgrab(mm);
	ksm_owed[ksm_nr_owed].mm = mm;
	ksm_owed[ksm_nr_owed].addr = addr;
	ksm_nr_owed++;
}

/*
 * Without ksm_lock: the copies ksm_owe_copy() noted, as far as can be.
 * Those of a busy mm, or left when the freezer or a waiter for ksm_lock
 * wants ksmd, are noted again when the scan meets them next.
 */
static void ksm_pay_copies(void)
{
	unsigned int i;

	for (i = 0; i < ksm_nr_owed; i++) {
		struct mm_struct *mm = ksm_owed[i].mm;
		unsigned long addr = ksm_owed[i].addr;
		struct vm_area_struct *vma;

		/* A user, so that exit_mmap() cannot run meanwhile. */
		if (!ksm_lock_wanted() && mmget_not_zero(mm)) {
			if (mmap_read_trylock(mm)) {
				vma = ksm_vma_at(mm, addr);
				if (vma)
					ksm_unshare(vma, addr,
						    addr + PAGE_SIZE);
				mmap_read_unlock(mm);
			}
			mmput_async(mm);
		}
		mmdrop(mm);
	}
	ksm_nr_owed = 0;
}

/* ---------------------------------------------------------------------- */
/* Merging                                                                */
/* ---------------------------------------------------------------------- */

/*
 * A KSM page is kept dirty, under its lock, whenever it gains a mapping.
 * MADV_FREE by a process that maps it alone makes it clean and lazily
 * freeable, and reclaim then drops a clean lazyfree page with all its
 * mappings: it must not drop those that other processes gained since.
 * MADV_FREE leaves a dirty page mapped more than once alone.
 */
static void folio_ksm_dirty(struct folio *folio)
{
	if (!folio_test_dirty(folio))
		folio_mark_dirty(folio);
}

/*
 * Outside the "global" mode, may @folio be mapped by other processes too?
 * Mapped more than once, or in the swap cache: a process that shared it
 * through fork may have it swapped out, and its swap-in would map the KSM
 * page (ksm_might_need_to_copy()).  With the folio locked (ksm_fold()),
 * a swap slot nobody else refers to is freed instead.
 */
static bool ksm_fork_shared(struct folio *folio, bool locked)
{
	if (ksm_domain_mode == KSM_DOMAIN_GLOBAL)
		return false;
	if (folio_mapcount(folio) > 1)
		return true;
	if (!folio_test_swapcache(folio))
		return false;
	return !locked || !folio_free_swap(folio);
}

/*
 * Outside the "global" mode, may @folio, large, be mapped by other
 * processes too?  Then it is not split for merging: the others would see
 * their huge page split (AnonHugePages in smaps), and learn what this
 * process holds.
 */
static inline bool ksm_large_fork_shared(struct folio *folio)
{
	return ksm_domain_mode != KSM_DOMAIN_GLOBAL &&
	       folio_likely_mapped_shared(folio);
}

/* Let go of ksm_large's reference, keeping its range. */
static void ksm_large_unpin(void)
{
	if (ksm_large.folio) {
		folio_put(ksm_large.folio);
		ksm_large.folio = NULL;
	}
}

/* @folio is about to be split by its merge: forget it. */
static void ksm_large_release(struct folio *folio)
{
	if (ksm_large.folio == folio) {
		ksm_large_unpin();
		ksm_large.mm = NULL;
	}
}

/*
 * ksm_fork_shared() of @page of a folio kept large (ksm_large_keep(),
 * mapped by PTEs only): a child may keep part of the folio and the parent
 * another, and folio_likely_mapped_shared() only guesses from the first
 * page, so the page's own mapcount tells.
 */
static inline bool ksm_kept_page_shared(struct page *page)
{
	return ksm_domain_mode != KSM_DOMAIN_GLOBAL &&
	       atomic_read(&page->_mapcount) > 0;
}

/*
 * A small page for a copy of @page, on its node (merge_across_nodes=0
 * keeps each node's KSM pages there), charged to @vma's mm; without
 * reclaim, under ksm_lock: NULL if that is what it would take.
 */
static struct folio *ksm_copy_alloc(struct vm_area_struct *vma,
				    struct page *page)
{
	gfp_t gfp = (GFP_HIGHUSER_MOVABLE & ~__GFP_DIRECT_RECLAIM) |
		    __GFP_THISNODE | __GFP_NOWARN;
	struct folio *folio = __folio_alloc_node(gfp, 0, page_to_nid(page));

	if (folio && mem_cgroup_charge(folio, vma->vm_mm, GFP_NOWAIT)) {
		folio_put(folio);
		folio = NULL;
	}
	return folio;
}

/*
 * ksm_large_keep - merge a page of @folio, large, without splitting it
 * @item: the item of the page, in the scanner's mm (item_mm_held())
 * @vma: its VMA
 * @folio: the page's folio, locked, referenced by the scanner
 * @page: the page
 * @kpage: the KSM page to merge it into, or NULL to make a new one
 * @copy: with @kpage NULL, set to a new page for ksm_fold_copy()
 *
 * Splitting a large folio remaps each of its pages through a migration
 * entry and an rmap walk, and then frees the merged ones one by one.
 * Merging into a KSM page needs neither: the folio is mapped by PTEs
 * (its PMD split, if it is one), and the one PTE replaced; a new KSM page
 * is a copy of the page (ksm_fold_copy()), as a page of a large folio
 * cannot be one in place.  A folio whose every page merges so is freed
 * whole with its last mapping, never split; one that keeps some is split
 * once the scanner is past it (ksm_large_finish()), so that the pages
 * that merged are freed then, as if it had been split first.  A folio
 * that others may map, one met while another is pending, and one whose
 * copy cannot be had without reclaim are split first as before.
 *
 * Returns true if @folio stays large for this merge.
 */
static bool ksm_large_keep(struct ksm_item *item, struct vm_area_struct *vma,
			   struct folio *folio, struct page *page,
			   struct page *kpage, struct folio **copy)
{
	unsigned long addr = item_address(item);
	pmd_t *pmd;

	/*
	 * Not one that others may map, or may map again from swap; nor one
	 * with a reference beyond them (vmsplice, a pin): none of its pages
	 * would merge, and its PMD would be split for nothing.
	 */
	if (!item_mm_held(item) || !folio_test_anon(folio) ||
	    folio_test_swapcache(folio) || folio_likely_mapped_shared(folio) ||
	    ksm_folio_pinned(folio))
		return false;
	/*
	 * One at a time, and, where a range is remembered, the folio found
	 * there before, not one faulted in since.
	 */
	if (ksm_large.folio != folio &&
	    (ksm_large.folio ||
	     (ksm_large.mm && (ksm_large.mm != vma->vm_mm ||
			       addr < ksm_large.start ||
			       addr >= ksm_large.end ||
			       folio_pfn(folio) != ksm_large.pfn))))
		return false;
	/* No copy for a page ksm_fold() then refuses (it tells again). */
	if (!kpage && !ksm_kept_page_shared(page)) {
		*copy = ksm_copy_alloc(vma, page);
		if (!*copy)
			return false;
	}
	if (ksm_large.folio != folio) {
		folio_get(folio);
		ksm_large.folio = folio;
		if (!ksm_large.mm) {
			ksm_large.mm = vma->vm_mm;
			ksm_large.start = addr -
					  folio_page_idx(folio, page) * PAGE_SIZE;
			ksm_large.end = ksm_large.start + folio_size(folio);
			ksm_large.pfn = folio_pfn(folio);
		}
	}
	/* A PMD of this folio: mapped by PTEs from now on. */
	pmd = folio_test_pmd_mappable(folio) ? mm_find_pmd(vma->vm_mm, addr) :
					       NULL;
	if (pmd && pmd_trans_huge(pmdp_get_lockless(pmd)))
		__split_huge_pmd(vma, pmd, addr, false, folio);
	return true;
}

/*
 * The folio at ksm_large.pfn, referenced, if it is still a large anonymous
 * one: the scanner held no reference while it let go of the mmap_lock, so
 * it may be gone, or another.  Another one is split only if part of it is
 * unmapped too (ksm_large_finish()), as the kernel's deferred split would.
 */
static struct folio *ksm_large_find(void)
{
	struct page *page = pfn_to_online_page(ksm_large.pfn);
	struct folio *folio;

	if (!page)
		return NULL;
	folio = page_folio(page);
	if (!folio_test_large(folio) || !folio_try_get(folio))
		return NULL;
	if (page_folio(page) != folio || !folio_test_anon(folio) ||
	    folio_test_hugetlb(folio) || folio_is_zone_device(folio)) {
		folio_put(folio);
		return NULL;
	}
	return folio;
}

/*
 * The scanner is past ksm_large's range, holding its mm's mmap_lock: split
 * the folio if some of its pages are still mapped (by PTEs: a PMD maps it
 * all, and adds one to its mapcount) and some not.  If it cannot be
 * split now (its lock taken, a pin), its merged pages wait for the
 * deferred split that partly unmapped large folios get anyway.
 */
static void ksm_large_finish(void)
{
	struct folio *folio = ksm_large.folio ?: ksm_large_find();

	ksm_large.folio = NULL;
	ksm_large.mm = NULL;
	if (!folio)
		return;
	if (folio_trylock(folio)) {
		/* Our reference and the lock stay with its first page. */
		if (folio_test_large(folio) && folio_mapped(folio) &&
		    !folio_entire_mapcount(folio) &&
		    folio_mapcount(folio) < folio_nr_pages(folio) &&
		    !folio_likely_mapped_shared(folio))
			split_folio(folio);
		folio_unlock(folio);
	}
	folio_put(folio);
}

/*
 * The same, told early and without the lock, of a small page (a large one
 * is split first): mapped more than once.  A page in the swap cache may
 * still have its slot freed (ksm_fold()).
 */
static inline bool ksm_page_fork_shared(struct page *page)
{
	struct folio *folio = page_folio(page);

	return ksm_domain_mode != KSM_DOMAIN_GLOBAL &&
	       !folio_test_large(folio) && folio_mapcount(folio) > 1;
}

/*
 * ksm_fold_copy - make a new KSM page of @page by copying it
 * @item: the item of @page, a page of a large folio kept whole
 *	(ksm_large_keep()), locked
 * @vma: its VMA, its mm's mmap_lock held for read
 * @copy: the new page (ksm_copy_alloc()); its reference is consumed
 * @fresh: the new stable node
 *
 * The copy becomes the KSM page, and replaces @page at @item's address if
 * they are still equal once @page is write-protected (ksm_pte_merge()).
 * Nothing else can see it before: it is in no tree, on no LRU list and
 * mapped nowhere, so on failure it is let go as it came.
 */
static int ksm_fold_copy(struct ksm_item *item, struct vm_area_struct *vma,
			 struct page *page, struct folio *copy,
			 struct ksm_stable *fresh)
{
	unsigned long addr = item_address(item);
	struct page *kpage = folio_page(copy, 0);
	int err;

	/*
	 * A plain copy (copy_page()'s words, not copy_mc's bytes): ksmd read
	 * the page whole already, for its checksum and to compare it, so an
	 * error in it would have shown there; a page poisoned since is
	 * refused under the lock (ksm_fold()).
	 */
	copy_user_highpage(kpage, page, addr, vma);
	err = stable_make_room(fresh, item->kmm);
	if (err)
		goto out;
	__folio_mark_uptodate(copy);
	__folio_set_swapbacked(copy);
	__folio_set_locked(copy);
	folio_set_stable(copy, fresh);
	err = ksm_pte_merge(vma, addr, page, kpage);
	if (err) {
		WRITE_ONCE(copy->mapping, NULL);
	} else {
		fresh->checksum = page_checksum(kpage);
		fresh->pfn = folio_pfn(copy);
		folio_ksm_dirty(copy);
		folio_mark_accessed(copy);
		stable_link(fresh, item, vma, vma->anon_vma);
		/* Not folio_add_lru_vma(): the rmap mlocked it already. */
		folio_add_lru(copy);
	}
	folio_unlock(copy);
out:
	folio_put(copy);
	return err;
}

/*
 * ksm_fold - merge the page that @item tracks
 * @vma: @item's VMA, its mm's mmap_lock held for read
 * @page: the page mapped at @item's address, referenced by the caller
 * @kpage: the KSM page to map instead, or NULL to make @page a KSM page
 * @fresh: with @kpage NULL, the new stable node for @page
 *
 * Write-protects @page, then either replaces it by @kpage if their
 * contents are equal, or turns it into a KSM page in place.  On success
 * @item is linked to the stable node, all under the KSM page's lock.
 *
 * Both page locks are only tried: ksmd has better things to do than wait
 * for a page under I/O, and it will be back next pass.
 */
static int ksm_fold(struct ksm_item *item, struct vm_area_struct *vma,
		    struct page *page, struct page *kpage,
		    struct ksm_stable *fresh)
{
	unsigned long addr = item_address(item);
	struct folio *folio = page_folio(page);
	struct folio *kfolio = NULL, *copy = NULL;
	bool kept = false;
	int err = -EBUSY;

	if (ksm_domain_stale(item_mm(item)))
		return -EAGAIN;
	if (!folio_trylock(folio))
		return err;
	/*
	 * Nothing irreversible to a large folio (its PMD split, or it) before
	 * its content is known to match: a page that only collides with
	 * @kpage's checksum would cost its owner the huge page.  Once per
	 * folio and hold of the scanner's lock (ksm_large then holds it);
	 * ksm_pte_merge() compares again, write-protected.
	 */
	if (folio_test_large(folio) && kpage && ksm_large.folio != folio &&
	    !ksm_pages_equal(page, kpage)) {
		err = -EAGAIN;
		goto unlock;
	}
	if (folio_test_large(folio))
		kept = ksm_large_keep(item, vma, folio, page, kpage, &copy);
	if (folio_test_large(folio) && !kept) {
		ksm_large_release(folio);
		/* Our reference and the lock follow @page into its new folio. */
		if (ksm_large_fork_shared(folio) || split_huge_page(page))
			goto unlock;
		folio = page_folio(page);
	}
	/* A poisoned page is memory_failure()'s (ksm_memory_failure()). */
	if (!folio_test_anon(folio) || folio_test_ksm(folio) ||
	    PageHWPoison(page))
		goto unlock;
	/*
	 * With merge domains, a page that fork left shared does not merge:
	 * the other processes, of other domains maybe, would see it (in
	 * smaps, their page turned into a KSM page; in pagemap, their page
	 * turned exclusive when this mapping moved to another, and their
	 * next write reusing it rather than copying) and learn what this
	 * process holds.  Merging one mapping of a shared page frees nothing
	 * anyway.  Our mmap_lock keeps this mm from forking meanwhile.
	 */
	if (kept ? ksm_kept_page_shared(page) : ksm_fork_shared(folio, true))
		goto unlock;

	if (copy) {
		err = ksm_fold_copy(item, vma, page, copy, fresh);
		copy = NULL;
		goto unlock;
	}
	if (!kpage) {
		/*
		 * The page's own anon_vma finds it wherever fork left it
		 * mapped, mergeable or not, while its node lives
		 * (ksm_rmap_native()).  This mapping's map takes it too, so
		 * that the maps' walk sees it is the same (ksm_below_native()).
		 */
		struct anon_vma *native = folio_anon_vma(folio);
		struct ksm_pte kp;

		err = stable_make_room(fresh, item->kmm);
		if (err)
			goto unlock;
		err = ksm_pte_take(vma, addr, page, &kp);
		if (err)
			goto unlock;
		ksm_pte_restore(vma, addr, &kp);
		/* The content is frozen now: key the node by it. */
		fresh->checksum = page_checksum(page);
		fresh->pfn = folio_pfn(folio);
		if (native) {
			get_anon_vma(native);
			fresh->native = native;
		}
		folio_set_stable(folio, fresh);
		folio_ksm_dirty(folio);
		folio_mark_accessed(folio);
		stable_link(fresh, item, vma, native ?: vma->anon_vma);
		goto unlock;
	}

	kfolio = page_folio(kpage);
	err = -EBUSY;
	if (!folio_trylock(kfolio))
		goto unlock;
	err = -EAGAIN;
	if (!folio_stable(kfolio) || PageHWPoison(kpage))
		goto unlock_k;
	err = stable_make_room(folio_stable(kfolio), item->kmm);
	if (err)
		goto unlock_k;

	err = ksm_pte_merge(vma, addr, page, kpage);
	if (!err) {
		folio_ksm_dirty(kfolio);
		stable_link(folio_stable(kfolio), item, vma, vma->anon_vma);
	}
unlock_k:
	folio_unlock(kfolio);
unlock:
	folio_unlock(folio);
	/* Not used after all: never seen by anyone. */
	if (copy)
		folio_put(copy);
	return err;
}

/*
 * With use_zero_pages, a page of zeroes (as ksm_try_merge() found it,
 * unlocked) is replaced by the zero page rather than merged with other
 * pages of zeroes: the zero page needs no stable node and no item, and
 * costs no memory.
 */
static bool ksm_try_zero(struct ksm_item *item, struct page *page)
{
	struct vm_area_struct *vma;
	struct folio *folio;
	bool merged = false;

	if (!ksm_use_zero_pages)
		return false;
	vma = item_lock_vma(item);
	if (!vma)
		return false;
	folio = page_folio(page);
	if (folio_trylock(folio)) {
		ksm_large_release(folio);
		if (folio_test_large(folio) && !ksm_large_fork_shared(folio) &&
		    !split_huge_page(page))
			folio = page_folio(page);
		/* Not a page fork left shared: see ksm_fold(). */
		if (!folio_test_large(folio) && folio_test_anon(folio) &&
		    !folio_test_ksm(folio) && !ksm_fork_shared(folio, true)) {
			int err = ksm_pte_merge(vma, item_address(item), page,
						NULL);

			trace_ksm_merge_one_page(my_zero_pfn(item_address(item)),
						 item, item_mm(item), err);
			merged = !err;
		}
		folio_unlock(folio);
	}
	item_unlock_vma(item);
	return merged;
}

/* Is the KSM page of @stable poisoned?  A look at its flags. */
static bool stable_poisoned(struct ksm_stable *stable)
{
	struct folio *folio = ksm_pfn_folio(READ_ONCE(stable->pfn));

	return folio && PageHWPoison(folio_page(folio, 0));
}

static inline bool stable_has_room(struct ksm_stable *stable)
{
	return stable->nr_items < ksm_max_page_sharing &&
	       !stable_poisoned(stable);
}

/*
 * @stable, or one of its group after it, that can take a mapping.  One
 * found further on is moved next to @stable in the ring, so that the next
 * search, which starts from the same node while the tree does not change,
 * finds it at once.  The walk stops after KSM_GROUP_STEPS full nodes: a
 * tenant's content shared 2^24 times makes a group of 65536 (at the
 * default max_page_sharing), all full whenever one more is about to be
 * made, and a walk of it all per new node would cost the square.  A node
 * with room further on (one of its mappings left) is then not used; a new
 * KSM page is made, as if all were full: some memory, never work.
 */
#define KSM_GROUP_STEPS		64
static struct ksm_stable *stable_with_room(struct ksm_stable *stable)
{
	unsigned int steps = 0;
	struct ksm_stable *s;

	if (stable_has_room(stable))
		return stable;
	for (s = stable->dup_next; s && s != stable; s = s->dup_next) {
		if (stable_has_room(s)) {
			/* To the front, where the next search looks first. */
			if (s != stable->dup_next) {
				stable_ring_del(s);
				stable_ring_add(s, stable);
			}
			return s;
		}
		if (++steps == KSM_GROUP_STEPS)
			break;
	}
	return NULL;
}

/*
 * stable_search - a KSM page with the content of @page, that has room
 * @page: the page to merge; its content may still change under us
 * @domain: its merge domain
 * @sum: its checksum
 * @nid: the tree to search
 * @unverified: NULL for a search that compares contents; else it may
 *	return the first node of @page's domain and checksum without a
 *	comparison, and sets *@unverified then
 *
 * The descent compares contents only where the checksums are equal, so
 * it costs O(log n) comparisons of pages at most, whatever the pages
 * hold.  A node whose page is gone is dropped on the way, and one whose
 * page migrated to another node (merge_across_nodes off) is filed in that
 * node's tree; each happens once to a node, then the descent starts over.
 *
 * Equal checksums nearly always mean equal contents, and ksm_fold()
 * compares once @page is write-protected, a comparison that must be made
 * anyway: so the scanner takes the first node of its key on trust, and
 * saves a comparison of two pages per merge.  If that node turns out to
 * hold another content (a collision, crafted or not), the scanner marks
 * it @collided, never to be trusted again, and searches again comparing
 * (ksm_try_merge()): one failed write-protect per KSM page of a colliding
 * content, ever, beyond the bound above.  A node of the key without room
 * makes the descent start again comparing: the content's own node may
 * have room.  A poisoned KSM page is never returned unverified: the
 * comparing descent retires it without reading it.
 *
 * Returns the KSM page referenced, or NULL.
 */
static struct page *stable_search(struct page *page, u64 domain, u32 sum,
				  int nid, bool *unverified)
{
	struct rb_root *root = &ksm_stable_trees[nid];
	bool trust = unverified, trusted = false;
	struct ksm_stable *stable;
	struct rb_node *node;
	struct folio *kfolio;
	int cmp;

restart:
	cond_resched();
	trusted = false;
	node = root->rb_node;
	while (node) {
		stable = rb_entry(node, struct ksm_stable, rb);
		if (trust && stable->domain == domain &&
		    stable->checksum == sum && !stable->collided) {
			trusted = true;
			break;
		}
		cmp = stable_cmp(page, domain, sum, stable);
		if (cmp == -EAGAIN)
			goto restart;
		if (!cmp)
			break;
		node = cmp < 0 ? node->rb_left : node->rb_right;
	}
	if (!node)
		return NULL;

	stable = stable_with_room(stable);
	if (!stable) {
		/* Full, or a collision: the node of the content may have room. */
		if (trusted) {
			trust = false;
			goto restart;
		}
		return NULL;
	}
	kfolio = stable_folio_get(stable, false);
	if (!kfolio) {
		stable_drop_stale(stable);
		goto restart;
	}
	if (!ksm_merge_across_nodes && folio_nid(kfolio) != nid) {
		/* Migrated since: file it in its new node's tree. */
		stable_tree_erase(stable);
		stable_ungroup(stable);
		stable->nid = folio_nid(kfolio);
		stable_insert(stable, folio_page(kfolio, 0));
		folio_put(kfolio);
		goto restart;
	}
	if (trusted && PageHWPoison(folio_page(kfolio, 0))) {
		folio_put(kfolio);
		trust = false;
		goto restart;
	}
	if (unverified)
		*unverified = trusted;
	return folio_page(kfolio, 0);
}

/*
 * The page mapped at @item's address, referenced; NULL if there is no
 * anonymous page there any more, or if the owner's mmap_lock is taken
 * for write: a search of the unstable tree does not wait for another
 * process (see unstable_search_insert()).  @pinned tells whether the page
 * has references beyond its mappings (DMA, a pipe): ksm_fold() would
 * refuse it, so it is no partner to pair with.
 */
static struct page *item_peek_page(struct ksm_item *item, bool *pinned)
{
	struct vm_area_struct *vma;
	struct folio_walk fw;
	struct folio *folio;
	struct page *page = NULL;

	if (!item_mm_held(item) && !mmap_read_trylock(item_mm(item)))
		return NULL;
	vma = ksm_vma_at(item_mm(item), item_address(item));
	if (!vma)
		goto out;
	folio = folio_walk_start(&fw, vma, item_address(item), 0);
	if (folio) {
		if (folio_test_anon(folio) && !folio_is_zone_device(folio) &&
		    !folio_test_ksm(folio) && !PageHWPoison(fw.page)) {
			folio_get(folio);
			page = fw.page;
			/*
			 * As ksm_pte_take() counts (a pin adds 1024); of a
			 * large folio ksmd itself may hold another page (the
			 * one it scans), so only a real pin tells there.  Not
			 * folio_maybe_dma_pinned() for a small one: a page
			 * mapped 1024 times would pass for pinned.
			 */
			*pinned = folio_test_large(folio) ?
				  folio_maybe_dma_pinned(folio) :
				  folio_ref_count(folio) > folio_mapcount(folio) +
				  !!folio_test_swapcache(folio) + 1 ||
				  ksm_page_fork_shared(page);
		}
		folio_walk_end(&fw, vma);
	}
out:
	item_unlock_vma(item);
	return page;
}

/*
 * unstable_search_insert - pair @page with this pass's unstable tree
 * @item: @page's item, in no tree; its checksum is @page's, its domain
 *	the one @page merges in
 * @page: the page, referenced
 * @nid: the tree
 * @pair: false if no new KSM page may be made: only insert
 * @tpage: where the partner's page goes, referenced
 *
 * The tree is ordered by the merge domain and the checksum an item had
 * when it was inserted, then by the content its page has now.  Contents
 * of the unstable tree may change at any time, so among equal checksums
 * the order may be wrong by now: that can hide a partner, never make the
 * tree malformed, and the descent is as long as a red-black tree is deep,
 * whatever the pages hold.  A partner whose page cannot be read at once
 * (gone, or its mm's mmap_lock taken for write) counts as smaller.  A
 * partner of equal content whose page has extra references (pinned:
 * merging it would fail) is passed by to the right, so that a tenant's
 * pinned copies of a content cannot make every page of it fail to pair.
 *
 * Returns the item of a page with @page's content, its page in @tpage;
 * or NULL, with @item inserted in the tree.
 */
static struct ksm_item *unstable_search_insert(struct ksm_item *item,
					       struct page *page, int nid,
					       bool pair, struct page **tpage)
{
	struct rb_root *root = &ksm_unstable_trees[nid];
	struct rb_node **link = &root->rb_node, *parent = NULL;

	while (*link) {
		struct ksm_item *other;
		struct page *p;
		int cmp = 1;

		parent = *link;
		other = rb_entry(parent, struct ksm_item, rb);
		if (item->domain != other->domain) {
			cmp = item->domain < other->domain ? -1 : 1;
		} else if (item->checksum != other->checksum) {
			cmp = item->checksum < other->checksum ? -1 : 1;
		} else {
			bool pinned = false;

			cond_resched();
			p = item_peek_page(other, &pinned);
			if (p) {
				if (p != page)
					cmp = ksm_pages_cmp(page, p);
				if (!cmp && pair && !pinned &&
				    (ksm_merge_across_nodes ||
				     page_to_nid(p) == nid)) {
					*tpage = p;
					return other;
				}
				put_page(p);
				if (!cmp)
					cmp = 1;
			}
		}
		link = cmp < 0 ? &parent->rb_left : &parent->rb_right;
	}
	rb_link_node(&item->rb, parent, link);
	rb_insert_color(&item->rb, root);
	item->nid = nid;
	item->pass = ksm_pass_tag();
	item->address |= ITEM_UNSTABLE;
	ksm_pages_unshared++;
	return NULL;
}

/*
 * Undo half a pair: @item's page became a KSM page but its partner could
 * not be merged into it.  Put the node in the tree, where the KSM page
 * waits, mapped once, for other pages of its content; or dissolve it if
 * its page went away meanwhile.  (Upstream breaks COW at once, under its
 * mutex: a page allocated and charged to the tenant, with its reclaim,
 * to free nothing.)
 */
static void ksm_unpair(struct ksm_item *item, struct ksm_stable *stable)
{
	struct folio *kfolio;

	/*
	 * @item stays linked, and its page a KSM page mapped once, like one
	 * whose other mappings went away: pages of its content may merge
	 * with it, and a write copies it, in the owner's own fault.  Look
	 * the page up again: migration may have moved it meanwhile.
	 */
	kfolio = stable_folio_get(stable, true);
	if (!kfolio) {
		stable_drop_stale(stable);
		item_outlived(item);
		return;
	}
	if (stable->nr_items || folio_mapped(kfolio))
		stable_insert(stable, folio_page(kfolio, 0));
	else
		stable_put_unused(stable, kfolio);
	folio_unlock(kfolio);
	folio_put(kfolio);
}

/* The large folio that both @page and @tpage are of, or NULL. */
static struct folio *ksm_same_large(struct page *page, struct page *tpage)
{
	struct folio *folio = page_folio(page);

	return folio_test_large(folio) && folio == page_folio(tpage) ?
	       folio : NULL;
}

/*
 * Merge @page (tracked by @item) with @tpage (tracked by @titem, found in
 * the unstable tree) into a new KSM page, of everyone's domain if @zero
 * (ksm_zero_for_all()) and it holds zeroes once write-protected.
 */
static bool ksm_pair(struct ksm_item *item, struct page *page,
		     struct ksm_item *titem, struct page *tpage, int nid,
		     bool zero)
{
	struct vm_area_struct *vma;
	struct ksm_stable *stable;
	struct folio *kfolio;
	u64 domain = item->domain;
	int err = -EAGAIN;	/* the area gone, or its mm busy */

	/* Spare the work of a pair that ksm_fold() would undo. */
	if (ksm_page_fork_shared(page) || ksm_page_fork_shared(tpage))
		return false;

	stable = stable_alloc(item->checksum, domain, nid, item->kmm);
	if (!stable)
		return false;

	vma = item_lock_vma(item);
	if (vma) {
		ksm_pair_folio = ksm_same_large(page, tpage);
		err = ksm_fold(item, vma, page, NULL, stable);
		ksm_pair_folio = NULL;
		item_unlock_vma(item);
	}
	trace_ksm_merge_one_page(page_to_pfn(page), item, item_mm(item), err);
	if (err) {
		stable_free(stable);
		return false;
	}

	/*
	 * @page is a KSM page now, unlocked: by the time @titem's mm is
	 * locked, migration may have moved it, so find it through its node.
	 */
	unstable_erase(titem);
	kfolio = stable_folio_get(stable, false);
	if (!kfolio) {
		stable_drop_stale(stable);
		item_outlived(item);
		return false;
	}
	/* Not in the tree yet: its key may still change. */
	if (zero && !PageHWPoison(folio_page(kfolio, 0)) &&
	    ksm_pages_equal(folio_page(kfolio, 0), ZERO_PAGE(0)))
		stable->domain = 0;
	err = -EAGAIN;
	vma = item_lock_vma(titem);
	if (vma) {
		/* @page's folio, if ksm_fold() kept it whole (a copy). */
		ksm_pair_folio = ksm_same_large(page, tpage);
		err = ksm_fold(titem, vma, tpage, folio_page(kfolio, 0), NULL);
		ksm_pair_folio = NULL;
		item_unlock_vma(titem);
	}
	trace_ksm_merge_with_ksm_page(kfolio, folio_pfn(kfolio), titem,
				      item_mm(titem), err);
	if (!err)
		stable_insert(stable, folio_page(kfolio, 0));
	folio_put(kfolio);
	if (err) {
		ksm_unpair(item, stable);
		/*
		 * The partner could not be merged after all.  If the new KSM
		 * page went away meanwhile, @item's page waits in the tree
		 * for another partner.  (Not when @item's own page refused,
		 * above: a tenant's pinned pages would line up in front of
		 * the partner.)
		 */
		if (!(item->address & ITEM_STABLE)) {
			struct page *none;

			item->domain = domain;
			unstable_search_insert(item, page, nid, false, &none);
		}
	}
	return !err;
}

/*
 * @item's address maps @folio, already a KSM page, that @item does not
 * know about: inherited through fork, or met again after the item was
 * forgotten.  Link the item to it.  If the KSM page belongs to another
 * merge domain than the mm's now (the process moved to another cgroup,
 * merge_zero_across_domains was turned off), the mm gets a copy of its
 * own after the batch (ksm_owe_copy()), and the next pass merges it in
 * its new domain; the item stays linked until then, and does not count
 * as joined.
 */
static bool ksm_join(struct ksm_item *item, struct page *page)
{
	unsigned long addr = item_address(item);
	struct folio *folio = page_folio(page);
	struct vm_area_struct *vma;
	struct ksm_stable *stable;
	bool joined = false, foreign = false;

	vma = item_lock_vma(item);
	if (!vma)
		return false;
	if (folio_trylock(folio)) {
		stable = folio_stable(folio);
		foreign = stable && !ksm_domain_fits(stable, ksm_cursor.domain);
		/*
		 * A foreign mapping is linked too, until its copy is made
		 * (ksm_merge_page() unlinks it then): rmap walks must find it.
		 */
		if (stable && !RB_EMPTY_NODE(&stable->rb) &&
		    !stable_make_room(stable, item->kmm) &&
		    ksm_maps_page(vma, addr, page)) {
			stable_link(stable, item, vma, vma->anon_vma);
			joined = !foreign;
		}
		folio_unlock(folio);
	}
	if (foreign)
		ksm_owe_copy(item_mm(item), addr);
	item_unlock_vma(item);
	return joined;
}

/* max_kernel_pages: may ksmd make one more KSM page? */
static bool ksm_may_make_ksm_page(void)
{
	unsigned long limit = READ_ONCE(ksm_max_kernel_pages);

	return !limit || ksm_stable_nodes < limit;
}

/*
 * smart_scan's hint of new pages: a bit per checksum (its low bits) of
 * each page met for the first time, in this pass and the last.  A page
 * that smart_scan would let go by is looked at anyway if a new page of
 * its checksum came, so that a twin that appears late still merges within
 * a pass or two, not after up to 8 (upstream's ksm_tests -N waits 2).
 * Only new pages set bits, not every page scanned, so the bitmaps stay
 * sparse on a host whose memory is all touched; a tenant who sets many
 * only makes ksmd skip less, which costs no more than smart_scan off.
 *
 * The bit is that of the checksum in the page's merge domain: the
 * checksum mixed with a keyed hash of the domain (SipHash, a key drawn
 * for each pass).  Else, with merge domains, the bitmaps would tell across
 * them: a tenant whose aged page of a content is looked at in some pass
 * would learn that a page of its checksum had just appeared somewhere,
 * another tenant's maybe.  Without the key, which bit another domain's
 * content sets is unknown, and what one pass might give away of it is
 * worth nothing the next.
 */
#define KSM_NEW_SUM_BITS	16
struct ksm_new_sums {
	DECLARE_BITMAP(bits, 1 << KSM_NEW_SUM_BITS);
	siphash_key_t key;
	u64 domain;		/* @mix is @domain's, if @mixed */
	u32 mix;
	bool mixed;
};

static struct ksm_new_sums ksm_new_sums_of[2];	/* by pass, odd or even */

static inline struct ksm_new_sums *ksm_new_sums(unsigned long pass)
{
	return &ksm_new_sums_of[pass & 1];
}

/* A pass starts: its bitmap empty, with a key of its own. */
static void ksm_new_sums_reset(unsigned long pass)
{
	struct ksm_new_sums *ns = ksm_new_sums(pass);

	bitmap_zero(ns->bits, 1 << KSM_NEW_SUM_BITS);
	get_random_bytes(&ns->key, sizeof(ns->key));
	ns->mixed = false;
}

static unsigned int ksm_new_sum_bit(struct ksm_new_sums *ns, u32 sum,
				    u64 domain)
{
	/* The scanner stays in one domain for many pages: hash it once. */
	if (!ns->mixed || ns->domain != domain) {
		ns->mix = siphash_1u64(domain, &ns->key);
		ns->domain = domain;
		ns->mixed = true;
	}
	return (sum ^ ns->mix) & (BIT(KSM_NEW_SUM_BITS) - 1);
}

static void ksm_note_new_page(u32 sum, u64 domain)
{
	struct ksm_new_sums *ns = ksm_new_sums(ksm_cursor.pass);

	__set_bit(ksm_new_sum_bit(ns, sum, domain), ns->bits);
}

static bool ksm_new_twin_may_exist(u32 sum, u64 domain)
{
	struct ksm_new_sums *now = ksm_new_sums(ksm_cursor.pass);
	struct ksm_new_sums *last = ksm_new_sums(ksm_cursor.pass - 1);

	return test_bit(ksm_new_sum_bit(now, sum, domain), now->bits) ||
	       test_bit(ksm_new_sum_bit(last, sum, domain), last->bits);
}

/*
 * A page of another content and @stable's checksum failed to merge with
 * it: trust none of its group again (stable_search() trusts the node in
 * the tree, and stable_with_room() may have handed out another of the
 * group, all of one content).
 */
static void stable_mark_collided(struct ksm_stable *stable)
{
	struct ksm_stable *s = stable;

	/* Marked as a whole, once: new members inherit it (stable_group()). */
	if (!stable || stable->collided)
		return;
	do {
		s->collided = 1;
		s = s->dup_next;
	} while (s && s != stable);
}

/* Map the KSM page @kpage in place of @page, which @item tracks. */
static int ksm_fold_into(struct ksm_item *item, struct page *page,
			 struct page *kpage)
{
	struct vm_area_struct *vma = item_lock_vma(item);
	int err = -EAGAIN;

	if (vma) {
		err = ksm_fold(item, vma, page, kpage, NULL);
		item_unlock_vma(item);
	}
	trace_ksm_merge_with_ksm_page(page_folio(kpage), page_to_pfn(kpage),
				      item, item_mm(item), err);
	return err;
}

/*
 * Split the large folio of @page, referenced by ksmd once, if its lock is
 * free and fork did not leave it shared (see ksm_fold()): under @item's
 * mmap_lock, so that only an area still mergeable is split, and no fork
 * comes between the test and the split.
 */
static void ksm_split_alone(struct ksm_item *item, struct page *page)
{
	struct folio *folio = page_folio(page);

	if (!folio_test_large(folio) || !item_lock_vma(item))
		return;
	if (folio_trylock(folio)) {
		ksm_large_release(folio);
		/* Our reference and the lock follow @page into its new folio. */
		if (!ksm_large_fork_shared(folio))
			split_huge_page(page);
		folio_unlock(page_folio(page));
	}
	item_unlock_vma(item);
}

/*
 * ksm_try_merge - try to merge the page @item tracks
 * @item: the item for the page's address, in no tree
 * @page: the page mapped there, referenced
 *
 * Returns true if the page is merged now.
 */
static bool ksm_try_merge(struct ksm_item *item, struct page *page)
{
	bool merged, moved, zero, zeroes, one_folio, unverified = false;
	bool tried = false;
	struct ksm_item *titem;
	struct page *kpage, *tpage;
	u64 domain;
	int nid;
	u32 sum;

	if (folio_test_ksm(page_folio(page)))
		return ksm_join(item, page);

	sum = page_checksum(page);
	/*
	 * Zeroes?  A checksum proves nothing ("Content is input"): looked at
	 * once, unlocked, and only where it counts, before splitting and
	 * write-protecting a page that only collides with zeroes, which
	 * would cost it a fault every pass.  The page may change after: a
	 * merge compares again, write-protected.
	 */
	zeroes = sum == ksm_zero_checksum &&
		 (ksm_use_zero_pages || ksm_zero_for_all()) &&
		 ksm_pages_equal(page, ZERO_PAGE(0));
	if (zeroes && ksm_try_zero(item, page))
		return true;

	nid = ksm_tree_nid(page);
	zero = zeroes && ksm_zero_for_all();
	domain = zero ? 0 : ksm_cursor.domain;
	kpage = stable_search(page, domain, sum, nid, &unverified);
	if (kpage && unverified) {
		/* ksm_fold() compares a large folio's page before a split. */
		tried = true;
		if (!ksm_fold_into(item, page, kpage)) {
			put_page(kpage);
			return true;
		}
		/*
		 * Another content of the key: search comparing, then, and
		 * never trust that node again, so that a tenant who made it
		 * costs others one failed write-protect in all, not one a
		 * page a pass.
		 */
		if (!ksm_pages_equal(page, kpage)) {
			stable_mark_collided(folio_stable(page_folio(kpage)));
			put_page(kpage);
			kpage = stable_search(page, domain, sum, nid, NULL);
			tried = false;
		}
	}
	if (kpage) {
		int err = tried ? -EAGAIN : ksm_fold_into(item, page, kpage);

		put_page(kpage);
		if (!err)
			return true;
	}

	/* A record keeps only REC_SUM_BITS of it (on 32-bit). */
	moved = (item->address & ITEM_SEEN) &&
		((item->checksum ^ sum) & REC_SUM_MASK);
	if (!(item->address & ITEM_SEEN))
		ksm_note_new_page(sum, ksm_cursor.domain);
	item->checksum = sum;
	item->address |= ITEM_SEEN;
	/*
	 * A page whose content moved since the last pass is not a candidate:
	 * it is being written.  A page seen for the first time is one, so
	 * that memory that was just filled merges in one pass, not two.
	 *
	 * Nor is a page whose content has a KSM page with room, that it
	 * could not join just now (locked, pinned, or the page changed):
	 * pairing it would make a second KSM page of that content, which
	 * only a full one (max_page_sharing) may cause.  It tries again next
	 * pass.
	 */
	if (moved || kpage || ksm_cursor.domain == KSM_DOMAIN_NONE)
		return false;

	/*
	 * A partner's domain is the one its mm had when it was inserted,
	 * earlier in this pass: one whose process moved to another cgroup
	 * since is no partner any more, and leaves the tree (once: the loop
	 * ends).
	 */
	for (;;) {
		item->domain = ksm_cursor.domain;
		titem = unstable_search_insert(item, page, nid,
					       ksm_may_make_ksm_page(), &tpage);
		if (!titem)
			return false;
		if (ksm_domain_mode != KSM_DOMAIN_CGROUP ||
		    ksm_cgroup_domain(item_mm(titem)) == titem->domain)
			break;
		unstable_erase(titem);
		item_settle(titem);
		put_page(tpage);
	}
	merged = ksm_pair(item, page, titem, tpage, nid, zero);
	/* Out of the tree, and not merged: back to a record. */
	item_settle(titem);
	one_folio = !merged && page_folio(page) == page_folio(tpage);
	put_page(tpage);
	/*
	 * Two pages of one large folio (a huge page that mprotect() or
	 * munmap() left mapped by PTEs): ksm_fold() cannot split it while
	 * ksmd holds a reference to each, and would fail every pass.  With
	 * one let go, split it now, and they pair next pass.
	 */
	if (one_folio)
		ksm_split_alone(item, page);
	return merged;
}

/*
 * How many passes smart_scan skips a page that failed to merge @age
 * passes in a row: none for the first six, so that a page whose twin
 * appears a few passes later still meets it at once, then more and
 * more, up to 8.
 */
static u8 smart_scan_skips(u8 age)
{
	if (age < 7)
		return 0;
	if (age < 10)
		return 1;
	if (age < 13)
		return 2;
	return age < 16 ? 4 : 8;
}

/* @item is linked to the KSM page @folio is, and the walk reaches it */
static bool ksm_still_merged(struct ksm_item *item, struct folio *folio)
{
	return (item->address & ITEM_STABLE) &&
	       !(item->address & ITEM_RELINK) && folio_test_ksm(folio) &&
	       folio_stable(folio) == item->stable;
}

/*
 * ksm_page_settled - the cases of a page that need no work
 * @item: the item for the page's address
 * @folio: the folio mapped there, with its page table lock held (or
 *	referenced)
 *
 * A page still mapping its KSM page, or one that smart_scan lets go by
 * this pass, is dealt with here, without sleeping: the scanner calls this
 * under the page table lock and moves on without dropping mmap_lock.
 * Returns true if that was all there was to do.
 */
static bool ksm_page_settled(struct ksm_item *item, struct folio *folio)
{
	/*
	 * Still merged, in its domain: nothing to do or to read.  Else
	 * unlinking from a stable node takes its page lock.
	 */
	if (item->address & ITEM_STABLE)
		return ksm_still_merged(item, folio) &&
		       ksm_domain_fits(item->stable, ksm_cursor.domain);
	/*
	 * Not a KSM page, which needs its item linked now whatever its age:
	 * a swap-in may have mapped one at an address whose item is a
	 * record, and no rmap walk finds it until ksm_join() links it.
	 */
	if (item->skip && READ_ONCE(ksm_smart_scan) && !folio_test_ksm(folio) &&
	    !ksm_new_twin_may_exist(item->checksum, ksm_cursor.domain)) {
		/* Inserted in an earlier pass, whose tree is gone. */
		if (item->address & ITEM_UNSTABLE)
			unstable_erase(item);
		item->skip--;
		ksm_pages_skipped++;
		return true;
	}
	return false;
}

/*
 * ksm_merge_page - everything ksmd does with one page
 * @item: the item for the page's address
 * @page: the page mapped there, referenced
 */
static void ksm_merge_page(struct ksm_item *item, struct page *page)
{
	struct folio *folio = page_folio(page);

	if (ksm_page_settled(item, folio))
		return;
	/*
	 * Still on its KSM page, so of another domain than its mm's now: the
	 * page gets a private copy after the batch (ksm_owe_copy()), and the
	 * item stays linked until then, so that rmap walks find the mapping.
	 * The next pass unlinks it and merges the copy in its new domain.
	 */
	if (ksm_still_merged(item, folio)) {
		ksm_owe_copy(item_mm(item), item_address(item));
		return;
	}
	/* A stable item whose page changed, or one from an earlier pass. */
	item_forget(item);

	if (ksm_try_merge(item, page)) {
		item->age = 0;
		item->skip = 0;
	} else {
		if (item->age < ITEM_AGE_MAX)
			item->age++;
		item->skip = smart_scan_skips(item->age);
	}
}

/*
 * Remove the stable nodes whose page nothing maps any more, or is gone,
 * all at once (unmerging; a change of the trees' shape).  Returns -EBUSY
 * if some node had to stay.
 */
static int ksm_sweep_stable_nodes(void)
{
	int nid, busy = 0;

	for (nid = 0; nid < nr_node_ids; nid++) {
		struct rb_node *node;

		if (ksm_merge_across_nodes && nid)
			break;
		node = rb_first(&ksm_stable_trees[nid]);
		while (node) {
			struct ksm_stable *stable;
			struct folio *folio;

			cond_resched();
			stable = rb_entry(node, struct ksm_stable, rb);
			node = rb_next(node);
			folio = stable_folio_get(stable, true);
			if (!folio) {
				stable_drop_stale(stable);
				continue;
			}
			if (stable->nr_items || folio_mapped(folio))
				busy++;
			else
				stable_put_unused(stable, folio);
			folio_unlock(folio);
			folio_put(folio);
		}
	}
	return busy ? -EBUSY : 0;
}

/* ---------------------------------------------------------------------- */
/* The scanner                                                            */
/* ---------------------------------------------------------------------- */

/*
 * cursor_drop_to - drop the records the cursor passed without a page
 * @kmm: the cursor's mm
 * @end: drop those from ksm_cursor.checked up to this address (excluded)
 * @all: all of them; else stop as soon as ksm_lock is wanted elsewhere
 *
 * A tenant that unmaps its memory leaves as many records as it had pages:
 * they go in steps, each of at least 64, that give way to whoever waits.
 * Returns false if it stopped early, with ksm_cursor.checked moved past
 * what was dropped.
 */
static bool cursor_drop_to(struct ksm_mm *kmm, unsigned long end, bool all)
{
	unsigned int done = 0;
	unsigned long index;
	void *entry;

	if (end <= ksm_cursor.checked)
		return true;
	xa_for_each_range(&kmm->items, index, entry,
			  rec_index(ksm_cursor.checked), rec_index(end - 1)) {
		if (++done > 64 && !all && ksm_lock_wanted()) {
			ksm_cursor.checked = index << PAGE_SHIFT;
			return false;
		}
		rec_drop(kmm, index, entry);
		cond_resched();
	}
	return true;
}

/* Drop the records of @kmm from ksm_cursor.checked to the end. */
static bool cursor_drop_rest(struct ksm_mm *kmm, bool all)
{
	if (!cursor_drop_to(kmm, ULONG_MAX & PAGE_MASK, all))
		return false;
	kmm->end = min(kmm->end, rec_index(ksm_cursor.checked));
	return true;
}

/*
 * A new slot, holding @entry, for the page at @addr of @kmm.  Its
 * xarray's nodes are charged to the mm's memory cgroup (XA_FLAGS_ACCOUNT):
 * a tenant pays for what its pages cost KSM, however it lays them out.
 */
static int rec_new(struct ksm_mm *kmm, unsigned long addr, void *entry)
{
	struct xa_state *xas = &ksm_walk;
	int err;

	/*
	 * The walk's slot, or the one after it, in a leaf of the tree: the
	 * slot is there, nothing to allocate, no descent.
	 */
	if (ksm_walk_at(kmm, addr - PAGE_SIZE) || ksm_walk_at(kmm, addr)) {
		if (xas->xa_index + 1 == rec_index(addr) &&
		    xas->xa_offset < XA_CHUNK_MASK) {
			void *was;

			rcu_read_lock();
			was = xas_next(xas);
			rcu_read_unlock();
			/* Never: the page had no record (cursor_item()). */
			if (was) {
				VM_WARN_ON_ONCE(1);
				ksm_walk_ok = false;
				return -EEXIST;
			}
		}
		if (xas->xa_index == rec_index(addr)) {
			rec_store(xas, entry);
			goto stored;
		}
	}

	/* The page waits for the next pass if this fails. */
	err = rec_store_new(xas, kmm, addr, entry, 0);
	VM_WARN_ON_ONCE(err == -EEXIST);
	ksm_walk_ok = !err;
	if (err)
		return err;
stored:
	rec_added(kmm, addr);
	return 0;
}

/*
 * The first record of @kmm, the cursor's mm, from *@index to @max, or
 * NULL; *@index is its index.  Through the cursor's walk, which is left
 * there: from the slot of the page met last, a few slots on with
 * xas_next() (the pages of an area, one after the other), else
 * xas_find() from the root, which skips the empty parts of the tree.
 */
static void *rec_find(struct ksm_mm *kmm, unsigned long *index,
		      unsigned long max)
{
	struct xa_state *xas = &ksm_walk;
	void *entry = NULL;

	rcu_read_lock();
	if (ksm_walk_ok && xas->xa == &kmm->items && xas_valid(xas) &&
	    xas->xa_index + 1 == *index && max - *index < 16) {
		/*
		 * No record: left on the slot of @max for rec_new(), or on
		 * its parent if no leaf holds it (rec_new() descends then).
		 */
		do
			entry = xas_next(xas);
		while (!entry && xas->xa_index < max);
		ksm_walk_ok = xas_valid(xas);
	} else {
		*xas = (struct xa_state)__XA_STATE(&kmm->items, *index, 0, 0);
		entry = xas_find(xas, max);
		ksm_walk_ok = entry;
	}
	rcu_read_unlock();
	if (entry)
		*index = xas->xa_index;
	return entry;
}

/**
 * struct ksm_next - what ksm_page_at() found of the records at the cursor
 * @entry: the record of the page's address, or NULL
 * @stale: records for addresses between the last page met and this one
 */
struct ksm_next {
	void *entry;
	bool stale;
};

/*
 * The item for the page at @addr of @kmm, the cursor's mm, whose records
 * ksm_page_at() just looked at (@next): the page's full item, or
 * ksm_spare filled from its record, made if missing; NULL if memory is
 * short; ERR_PTR(-EAGAIN) if ksm_lock is wanted while the stale records
 * before @addr, for pages that went away since the last pass, are
 * dropped.
 */
static struct ksm_item *cursor_item(struct ksm_mm *kmm, unsigned long addr,
				    const struct ksm_next *next)
{
	void *entry = next->entry;

	if (next->stale) {
		if (!cursor_drop_to(kmm, addr, false))
			return ERR_PTR(-EAGAIN);
		/*
		 * The record of @addr lay behind the stale ones; dropping
		 * them may have killed its node, or moved its map.
		 */
		entry = rec_live(kmm, addr,
				 xa_load(&kmm->items, rec_index(addr)));
	}
	ksm_cursor.checked = addr + PAGE_SIZE;
	if (entry && !xa_is_value(entry) && !entry_is_map(entry))
		return entry;
	if (!ksm_spare) {
		ksm_spare = kmem_cache_alloc(ksm_item_cache, GFP_KERNEL |
					     __GFP_NORETRY | __GFP_NOWARN);
		if (!ksm_spare)
			return NULL;
	}
	ksm_spare_in_slot = false;
	if (entry && !xa_is_value(entry)) {
		/* A map: ksmd works on a copy (see "Maps"). */
		item_from_map(ksm_spare, entry);
		return ksm_spare;
	}
	item_from_record(ksm_spare, kmm, addr, entry ?: xa_mk_value(0));
	/*
	 * A new page's slot points to the spare from the start: a new page
	 * that is merged at once keeps the spare, and item_settle() has
	 * nothing to store; otherwise it stores through the cursor's walk,
	 * still on the slot, without a descent.  Nobody looks at the slot
	 * before it does: ksmd holds ksm_lock.
	 */
	if (!entry) {
		if (rec_new(kmm, addr, ksm_spare))
			return NULL;
		ksm_spare_in_slot = true;
	}
	return ksm_spare;
}

static void ksm_mm_free(struct ksm_mm *kmm)
{
	struct mm_struct *mm = kmm->slot.mm;

	VM_WARN_ON_ONCE(mm->ksm_rmap_items);
	/*
	 * A store that failed for memory may have left empty nodes.  The
	 * cursor's walk is never left on a freed mm's records: it is used
	 * only within a batch, which starts it afresh (ksm_scan()), on the
	 * cursor's mm, which is not freed under it; __ksm_exit() frees
	 * without ksm_lock, and does not touch the walk.
	 */
	xa_destroy(&kmm->items);
	kmem_cache_free(ksm_mm_cache, kmm);
	clear_bit(MMF_VM_MERGE_ANY, &mm->flags);
	clear_bit(MMF_VM_MERGEABLE, &mm->flags);
	mmdrop(mm);
}

/*
 * ksm_reap_exited - free the items of the mms on ksm_exited, then them
 * @all: all of them; else stop as soon as ksm_lock is wanted elsewhere
 *
 * Their pages are unmapped, or about to be: only the trees and the stable
 * nodes still know their items.  Runs at every batch and before anything
 * that walks every item or starts a pass, so that no item of an exited mm
 * outlives the unstable tree it was put in.  Returns false if it stopped
 * early.
 */
static bool ksm_reap_exited(bool all)
{
	unsigned int done = 0;
	struct ksm_mm *kmm;
	unsigned long index;
	void *entry;

	for (;;) {
		spin_lock(&ksm_mm_lock);
		kmm = list_first_entry_or_null(&ksm_exited, struct ksm_mm,
					       slot.mm_node);
		spin_unlock(&ksm_mm_lock);
		if (!kmm)
			return true;
		xa_for_each(&kmm->items, index, entry) {
			/* Some progress each time, whoever waits. */
			if (!all && ++done > 64 && ksm_lock_wanted())
				return false;
			cond_resched();
			rec_drop(kmm, index, entry);
		}
		spin_lock(&ksm_mm_lock);
		list_del(&kmm->slot.mm_node);
		spin_unlock(&ksm_mm_lock);
		ksm_mm_free(kmm);
	}
}

/* What cursor_next_mm() does with the mm it leaves */
enum ksm_leave {
	KSM_LEAVE_KEEP,		/* still registered */
	KSM_LEAVE_FREE,		/* gone, its items all dropped: free it */
	KSM_LEAVE_REAP,		/* exiting, items left: ksm_reap_exited() */
};

/*
 * Put the cursor on @kmm, where the last pass left it (struct
 * ksm_mm.resume), under ksm_mm_lock.
 */
static void cursor_set(struct ksm_mm *kmm)
{
	/* A range left behind in another mm, which may be freed now. */
	ksm_large.mm = NULL;
	ksm_cursor.kmm = kmm;
	ksm_cursor.address = kmm->resume;
	ksm_cursor.checked = kmm->resume;
	kmm->resume = 0;
	ksm_cursor.domain_known = false;
	ksm_cursor.busy_us = 0;
	ksm_cursor.scanned = ksm_pages_scanned;
}

/*
 * Move the cursor past @kmm, and keep, free or queue it for reaping as
 * @how says.  Returns true when the pass is complete.
 */
static bool cursor_next_mm(struct ksm_mm *kmm, enum ksm_leave how)
{
	struct ksm_mm *next;

	ksm_walk_ok = false;
	spin_lock(&ksm_mm_lock);
	next = ksm_mm_next(kmm);
	cursor_set(next);
	if (how != KSM_LEAVE_KEEP) {
		/* __ksm_exit() finds it no more, if it has not run yet. */
		hash_del(&kmm->slot.hash);
		if (how == KSM_LEAVE_FREE)
			list_del(&kmm->slot.mm_node);
		else
			list_move_tail(&kmm->slot.mm_node, &ksm_exited);
	}
	spin_unlock(&ksm_mm_lock);

	if (how == KSM_LEAVE_FREE)
		ksm_mm_free(kmm);
	return next == &ksm_mm_head;
}

/*
 * One node of ksm_tidy_stable()'s walk: drop it if its KSM page is gone,
 * and, in a walk that frees idle nodes, free it if no item links to it
 * and nothing maps its page any more (stable_put_unused()).  The page's
 * lock is only tried: a page locked elsewhere keeps its node until the
 * next such walk.
 */
static void ksm_tidy_node(struct ksm_stable *stable, bool idle)
{
	struct folio *folio = ksm_pfn_folio(READ_ONCE(stable->pfn));

	if (folio && READ_ONCE(folio->mapping) == stable_mapping(stable) &&
	    (!idle || stable->nr_items))
		return;
	/* Moving under migration, or really gone? */
	folio = stable_folio_get(stable, false);
	if (!folio) {
		stable_drop_stale(stable);
		return;
	}
	if (idle && !stable->nr_items && folio_trylock(folio)) {
		if (folio_stable(folio) == stable)
			stable_put_unused(stable, folio);
		folio_unlock(folio);
	}
	folio_put(folio);
}

/*
 * ksm_tidy_stable - the stable trees' share of the end of a pass
 *
 * Drops the nodes whose KSM page is gone: freed once its last mapping was
 * written to or unmapped.  The scan would meet their items only next
 * pass, and pages_shared should not wait for that.  Every
 * stable_node_chains_prune_millisecs it also frees the nodes no item
 * links to, kept for a page still mapped by a child forked after the
 * merge: once that page is unmapped too, nothing else would look at them.
 *
 * One look at the page's ->mapping per node: a pass costs far more per
 * page than this per KSM page, so the walk does not count against
 * pages_to_scan.  But a host may have tens of millions of KSM pages, so
 * whenever someone waits for ksm_lock the walk stops, after at least 64
 * nodes, and resumes where it stopped in the next batch (see ksm_tidy).
 * Returns true when the walk is complete.
 */
static bool ksm_tidy_stable(void)
{
	unsigned int done = 0;

	if (ksm_tidy.nid < 0) {
		ksm_tidy.nid = 0;
		ksm_tidy.next = rb_first(&ksm_stable_trees[0]);
		ksm_tidy.idle = time_after(jiffies, ksm_last_sweep +
				msecs_to_jiffies(READ_ONCE(ksm_prune_millisecs)));
	}
	for (;;) {
		struct ksm_stable *stable;

		while (!ksm_tidy.next) {
			if (++ksm_tidy.nid >= (ksm_merge_across_nodes ? 1 :
					       nr_node_ids)) {
				ksm_tidy.nid = -1;
				if (ksm_tidy.idle)
					ksm_last_sweep = jiffies;
				return true;
			}
			ksm_tidy.next = rb_first(&ksm_stable_trees[ksm_tidy.nid]);
		}
		if (++done > 64 && ksm_lock_wanted())
			return false;
		if (!(done % 256))
			cond_resched();
		stable = rb_entry(ksm_tidy.next, struct ksm_stable, rb);
		ksm_tidy.next = rb_next(ksm_tidy.next);
		ksm_tidy_node(stable, ksm_tidy.idle);
	}
}

/*
 * Pages fresh from a fault wait in per-CPU LRU batches, holding a
 * reference that ksm_pte_take() would take for a pin.  So the batches are
 * drained right before each pass: ksm_scan_walk() asks for it and ends
 * the batch, and ksmd_fn() drains without ksm_lock, since that waits for
 * work on every CPU, then starts the pass at once.  ksmd's alone.
 */
static enum {
	KSM_LRU_DRAIN_NONE,
	KSM_LRU_DRAIN_WANTED,
	KSM_LRU_DRAINED,
} ksm_lru_drain;

/* Empty the unstable trees in use: they hold only this pass's items. */
static void ksm_reset_unstable_trees(void)
{
	int nid;

	for (nid = 0; nid < (ksm_merge_across_nodes ? 1 : nr_node_ids); nid++)
		ksm_unstable_trees[nid] = RB_ROOT;
}

static void ksm_pass_start(void)
{
	ksm_reap_exited(true);
	WRITE_ONCE(ksm_cursor.pass, ksm_cursor.pass + 1);
	ksm_busy_left_us = KSM_PASS_BUSY_MS * USEC_PER_MSEC;
	ksm_lru_drain = KSM_LRU_DRAIN_NONE;
	ksm_reset_unstable_trees();
	ksm_new_sums_reset(ksm_cursor.pass);
	ksm_pass_started = ktime_get();
	ksm_pass_cpu_ns = current->se.sum_exec_runtime;
	trace_ksm_start_scan(ksm_full_scans, ksm_items);
}

/*
 * ksm_advise - the scan-time advisor, at the end of each pass
 *
 * Sets pages_to_scan so that a pass takes advisor_target_scan_time
 * seconds: the pass just finished took some time with the current value,
 * and the time a pass takes is about inversely proportional to it.  The
 * CPU ksmd used in that pass bounds the value from above, so that ksmd
 * stays under advisor_max_cpu percent.  The new value is averaged with
 * the old (weight 1/4) to ride out passes disturbed by other load, and
 * kept within advisor_{min,max}_pages_to_scan.
 */
static void ksm_advise(void)
{
	u64 wall_ns = ktime_to_ns(ktime_sub(ktime_get(), ksm_pass_started));
	u64 cpu_ns = current->se.sum_exec_runtime - ksm_pass_cpu_ns;
	u64 target_ns = (u64)ksm_advisor_target_secs * NSEC_PER_SEC;
	u64 pages = ksm_pages_to_scan, want;
	unsigned int cpu_pct;

	if (ksm_advisor != KSM_ADVISOR_SCAN_TIME || !wall_ns)
		return;
	cpu_pct = div64_u64(cpu_ns * 100, wall_ns);

	want = mul_u64_u64_div_u64(pages, wall_ns, target_ns) ?: 1;
	if (cpu_pct)
		want = min(want, div64_u64(pages * ksm_advisor_max_cpu, cpu_pct));
	want = (3 * pages + want) / 4;
	/* The bounds may cross (see ksm_advisor_bound_store()). */
	want = max_t(u64, min_t(u64, want, ksm_advisor_max_pages),
		     ksm_advisor_min_pages);
	WRITE_ONCE(ksm_pages_to_scan, want);
	trace_ksm_advisor(div_u64(wall_ns, NSEC_PER_SEC), want, cpu_pct);
}

/*
 * Addresses without a page, page table entries read, VMAs passed over
 * that weigh as much as one page scanned.
 */
#define KSM_MISSES_PER_PAGE	512

/* Count @n misses, and take what they weigh off *@budget. */
static void ksm_missed(unsigned int *misses, unsigned int n,
		       unsigned int *budget)
{
	*misses += n;
	*budget -= min(*budget, *misses / KSM_MISSES_PER_PAGE);
	*misses %= KSM_MISSES_PER_PAGE;
}

/*
 * Does the rmap walk through @item, linked to a KSM page, reach its
 * mapping in @vma at @addr?  Only through an anon_vma of @vma's: its own,
 * or (a page fork shared, merged in place) an ancestor's on its chain.
 * The mapping may be another VMA's than the one the item was linked for:
 * the old VMA unmapped, and a swap entry of the KSM page moved there by
 * mremap() and swapped in from the swap cache (swapin_page_fits()).  The
 * item must then be linked again, or migration, reclaim and
 * memory_failure() miss that mapping for as long as it stays.  A chain
 * longer than KSM_AVC_STEPS (a tenant's deep line of forks) is taken for
 * a miss: relinked to @vma's own anon_vma, the item is found at once the
 * next time.  Called under @vma's mmap_lock, which keeps its chain.
 */
#define KSM_AVC_STEPS	8
static bool ksm_item_reaches(const struct ksm_item *item,
			     struct vm_area_struct *vma, unsigned long addr)
{
	struct anon_vma_chain *avc;
	unsigned int steps = 0;

	if ((item->address & ITEM_PGOFF) &&
	    linear_page_index(vma, addr) != addr >> PAGE_SHIFT)
		return false;
	if (item->anon_vma == vma->anon_vma)
		return true;
	list_for_each_entry(avc, &vma->anon_vma_chain, same_vma) {
		if (avc->anon_vma == item->anon_vma)
			return true;
		if (++steps >= KSM_AVC_STEPS)
			break;
	}
	return false;
}

/*
 * The anonymous page mapped at @addr of @vma, referenced; or NULL, with
 * *@settled true if the item at the cursor is for @addr and needs no work
 * (ksm_page_settled(), under the page table lock).
 *
 * A stable item whose page is under migration needs none either: the
 * migration entry will turn back into its KSM page (or the new copy of
 * it), and dropping the item meanwhile would hide that mapping from rmap
 * walks until the next pass.  A stable item whose mapping's page offset is
 * not the one it recorded (a swapped-out KSM page moved by mremap, then
 * swapped back in) keeps working, but without the offset: its rmap walks
 * look at every VMA again.
 */
static struct page *ksm_page_at(struct ksm_mm *kmm, struct vm_area_struct *vma,
				unsigned long addr, bool *settled,
				struct ksm_next *next)
{
	unsigned long index = rec_index(ksm_cursor.checked);
	struct ksm_item *item = NULL, rec;
	struct ksm_map *map = NULL;
	struct page *page = NULL;
	struct folio_walk fw;
	struct folio *folio;
	void *entry;

	*settled = false;
	/*
	 * The next record up to @addr's: if it is not @addr's, @addr has
	 * none yet.  Not beyond: the search would walk on to the next record
	 * however far it is.  Memory new to ksmd has no record to look for.
	 */
	entry = NULL;
	if (index < kmm->end)
		entry = rec_find(kmm, &index, rec_index(addr));
	next->stale = entry && index < rec_index(addr);
	next->entry = NULL;
	if (entry && index == rec_index(addr)) {
		entry = rec_live(kmm, addr, entry);
		next->entry = entry;
		item = entry;
		if (xa_is_value(entry)) {
			item_from_record(&rec, kmm, addr, entry);
			item = &rec;
		} else if (entry_is_map(entry)) {
			map = entry;
			item_from_map(&rec, map);
			item = &rec;
		}
	}
	folio = folio_walk_start(&fw, vma, addr, FW_MIGRATION);
	if (!folio)
		return NULL;
	if (fw.level == FW_LEVEL_PTE ? !pte_present(fw.pte) :
	    fw.level == FW_LEVEL_PMD && !pmd_present(fw.pmd)) {
		/* A migration entry: of the item's KSM page? */
		*settled = item && (item->address & ITEM_STABLE) &&
			   folio_stable(folio) == item->stable;
		goto out;
	}
	if (!folio_test_anon(folio) || folio_is_zone_device(folio))
		goto out;
	if (map && folio_stable(folio) == item->stable &&
	    !ksm_item_reaches(item, vma, addr)) {
		/* An rmap walk may clear ITEM_PGOFF meanwhile. */
		clear_bit(ITEM_PGOFF_BIT, &map->address);
		set_bit(ITEM_RELINK_BIT, &map->address);
		item->address = (item->address & ~ITEM_PGOFF) | ITEM_RELINK;
	}
	if (item && ksm_page_settled(item, folio)) {
		*settled = true;
	} else if (PageHWPoison(fw.page)) {
		/*
		 * A poisoned page is never read (a machine check); one its
		 * item maps as a KSM page keeps the item as it is, to be
		 * relinked or not, for memory_failure()'s rmap walks.
		 */
		*settled = item && (item->address & ITEM_STABLE) &&
			   folio_stable(folio) == item->stable;
	} else {
		folio_get(folio);
		page = fw.page;
	}
out:
	folio_walk_end(&fw, vma);
	/* smart_scan let the page go by: its record changed. */
	if (*settled && !item_in_tree(item)) {
		rec_set_at(kmm, addr, item_record(item));
		if (item != &rec)
			item_free(item);
	}
	return page;
}

/*
 * The entry of the slot for the page at @addr of @kmm, the cursor's mm,
 * if the cursor's walk is on the slot before it in the same leaf; else
 * NULL.  The walk does not move.  Under rcu_read_lock().
 */
static void *rec_peek_next(struct ksm_mm *kmm, unsigned long addr)
{
	struct xa_state *xas = &ksm_walk;

	if (!ksm_walk_at(kmm, addr - PAGE_SIZE) ||
	    xas->xa_offset >= XA_CHUNK_MASK)
		return NULL;
	return xa_entry(xas->xa, xas->xa_node, xas->xa_offset + 1);
}

/*
 * ksm_settled_run - pass over the pages from @addr that still map their
 * KSM page, under one hold of their page table's lock
 * @kmm: the cursor's mm, its mmap_lock held for read
 * @vma: the VMA of @addr, in which the cursor is at @addr
 * @addr: the next address to scan
 * @max: at most this many pages
 *
 * A pass over merged memory is mostly such pages (ksm_page_at() finds
 * them settled, ksm_page_settled()): here up to KSM_SETTLED_RUN of them
 * cost one walk down the page tables and one hold of the lock, not one
 * each, and their maps are read from the cursor's walk of the records
 * slot after slot.  The same tests, under the same lock; the first page
 * that is anything else (a record, no map in its slot, a map that
 * reaches it no more, another domain's KSM page, no page) ends the run,
 * and ksm_page_at() looks at it as ever.  Holds the page table's lock for
 * KSM_SETTLED_RUN pages at most, as a fault that maps many of a table's
 * entries does.  Returns the pages passed.
 */
#define KSM_SETTLED_RUN	64
static unsigned int ksm_settled_run(struct ksm_mm *kmm,
				    struct vm_area_struct *vma,
				    unsigned long addr, unsigned int max)
{
	unsigned long end = pmd_addr_end(addr, vma->vm_end);
	unsigned int n = 0;
	pte_t *start, *pte;
	struct ksm_item rec;
	spinlock_t *ptl;	/* of the page table of @addr */
	void *entry;
	pmd_t *pmd;

	/* No stale records between: the cursor's records are at @addr. */
	if (ksm_cursor.checked != addr || !max)
		return 0;
	rcu_read_lock();
	entry = rec_peek_next(kmm, addr);
	rcu_read_unlock();
	if (!entry || xa_is_value(entry) || !entry_is_map(entry))
		return 0;
	pmd = mm_find_pmd(vma->vm_mm, addr);
	if (!pmd)
		return 0;
	start = pte_offset_map_lock(vma->vm_mm, pmd, addr, &ptl);
	if (!start)
		return 0;
	max = min(max, KSM_SETTLED_RUN);
	rcu_read_lock();
	for (pte = start; addr < end && n < max; pte++, addr += PAGE_SIZE) {
		pte_t ptent = ptep_get(pte);
		struct folio *folio;
		struct page *page;

		entry = rec_peek_next(kmm, addr);
		if (!entry || xa_is_value(entry) || !entry_is_map(entry) ||
		    stable_dead(map_chunk(entry)->stable) ||
		    !pte_present(ptent))
			break;
		page = vm_normal_page(vma, addr, ptent);
		if (!page)
			break;
		folio = page_folio(page);
		item_from_map(&rec, entry);
		if (!ksm_item_reaches(&rec, vma, addr) ||
		    !ksm_page_settled(&rec, folio))
			break;
		xas_next(&ksm_walk);
		n++;
	}
	rcu_read_unlock();
	pte_unmap_unlock(start, ptl);
	return n;
}

/*
 * The end of a pass, once the stable trees are tidy: 0 then, for the
 * scan to stop; else -EAGAIN, and it resumes here.
 */
static int ksm_pass_end(unsigned int *budget)
{
	if (!ksm_tidy_stable()) {
		if (*budget)
			(*budget)--;
		return -EAGAIN;
	}
	ksm_tidy.pending = false;
	trace_ksm_stop_scan(ksm_full_scans, ksm_items);
	ksm_full_scans++;
	ksm_advise();
	return 0;
}

/*
 * The cursor's mm @kmm is busy: may ksmd sleep and try it again in this
 * pass?  Within what it earned by its pages scanned in the pass, yes;
 * beyond, within its own share, while the pass has some left, and the
 * sleep is charged to the pass (ksm_busy_charged).  Its share spent, it
 * gets less in the passes to come.  See the comment at ksm_mm_busy.
 */
static bool ksm_busy_try(struct ksm_mm *kmm)
{
	unsigned long earned = min(ksm_pages_scanned - ksm_cursor.scanned,
				   1UL << 30) * KSM_BUSY_NS_PER_PAGE /
			       NSEC_PER_USEC;
	unsigned long spent = ksm_cursor.busy_us;

	ksm_busy_charged = false;
	/* Earned: enough for the longest sleep, which it does not pay. */
	if (spent + 2 * KSM_MM_BUSY_US <= earned)
		return true;
	spent -= min(spent, earned);
	if (spent >= (KSM_MM_BUSY_MS * USEC_PER_MSEC) >> kmm->busy_shift) {
		/*
		 * Two steps up for one down: a tenant busy every other
		 * pass still ends up with little.
		 */
		WRITE_ONCE(kmm->busy_shift,
			   min(kmm->busy_shift + 2, KSM_BUSY_SHIFT_MAX));
		return false;
	}
	if (ksm_busy_left_us <= 0)
		return false;
	ksm_busy_charged = true;
	return true;
}

/*
 * The pages ksmd is done with and that nothing maps any more, mostly
 * those it merged: its reference is their last, and folios_put() frees a
 * batch of them with one round of the LRU and per-CPU list locks and one
 * memory cgroup uncharge, where put_page() takes each for each page.  A
 * page still mapped is let go of at once: it may be a partner later in
 * the batch, whose references must be its mappings' and the one ksmd
 * takes then (ksm_pte_take()).  (A swap cache page unmapped now may be
 * mapped again by a swap-in meanwhile: if ksmd meets it later in the
 * batch, the reference held here makes it look pinned, and it waits a
 * pass.)  ksmd's alone, under ksm_lock.
 */
static struct folio_batch ksm_done_pages;

static void ksm_page_done(struct page *page)
{
	struct folio *folio = page_folio(page);

	if (folio_mapped(folio))
		folio_put(folio);
	else if (!folio_batch_add(&ksm_done_pages, folio))
		folios_put(&ksm_done_pages);
}

/*
 * Let go of the cursor's mm @mm.  A large folio it merged pages of is
 * split now if the cursor is past it; else the scanner comes back to it,
 * the next batch or later in this one, and ksm_large keeps only its range.
 */
static void ksm_scan_unlock(struct mm_struct *mm)
{
	if (ksm_large.mm == mm &&
	    (ksm_cursor.address < ksm_large.start ||
	     ksm_cursor.address >= ksm_large.end || ksm_test_exit(mm)))
		ksm_large_finish();
	ksm_large_unpin();
	mmap_read_unlock(mm);
}

/*
 * ksm_scan_walk - work on the pages at the cursor, and move it on
 * @budget: pages ksmd may still scan in this batch, counted down here for
 *	each page worked on or that needs no work (ksm_page_settled()), and
 *	for every KSM_MISSES_PER_PAGE addresses without a page
 *
 * Pages that need no work are passed over under mmap_lock, without a
 * reference: a pass over memory that is already merged costs a page
 * table lookup per page.  A page that needs work is worked on here too
 * (ksm_merge_page()), with the cursor's mmap_lock still held for read and
 * its VMA in ksm_scan_vma, so that the merge neither takes the lock nor
 * looks the VMA up again, and the walk goes on where it was.  The merge
 * only tries the mmap_locks of other mms (a partner's), so holding this
 * one meanwhile orders no mmap_locks; what it waits for under it (a KSM
 * page's lock, see "Locking") is ordered after any mmap_lock.
 *
 * Returns 0 at the end of a pass, when there is nothing to scan, to have
 * the LRU batches drained before a pass (ksm_lru_drain), or when the mm is
 * busy (ksm_mm_busy); -EAGAIN when the budget ran out, copies are owed
 * (ksm_owe_copy()), or the CPU or mmap_lock is wanted elsewhere.  Drops
 * stale items and reaps exited mms on the way.
 */
static int ksm_scan_walk(unsigned int *budget)
{
	struct ksm_mm *kmm = ksm_cursor.kmm;
	unsigned int misses = 0, budget_in = *budget;
	struct vm_area_struct *vma;
	struct mm_struct *mm;
	bool dead;

	if (kmm == &ksm_mm_head) {
		if (ksm_tidy.pending)
			return ksm_pass_end(budget);
		/*
		 * The last pass's tree first: this one starts with none.  And
		 * the mms that exited, a few records at a time, rather than
		 * all at once in ksm_pass_start().
		 */
		if (!ksm_drain_unstable(false) || !ksm_reap_exited(false)) {
			if (*budget)
				(*budget)--;
			return -EAGAIN;
		}
		if (ksm_lru_drain != KSM_LRU_DRAINED &&
		    !list_empty(&ksm_mm_head.slot.mm_node)) {
			ksm_lru_drain = KSM_LRU_DRAIN_WANTED;
			return 0;
		}
		spin_lock(&ksm_mm_lock);
		kmm = ksm_mm_next(kmm);
		if (kmm != &ksm_mm_head)
			cursor_set(kmm);
		spin_unlock(&ksm_mm_lock);
		if (kmm == &ksm_mm_head)
			return 0;
		ksm_pass_start();
	}

next_mm:
	mm = kmm->slot.mm;
	if (!mmap_read_trylock(mm)) {
		bool exiting = ksm_test_exit(mm);

		if (!exiting && ksm_busy_try(kmm)) {
			/* ksmd_fn() sleeps a while, without ksm_lock. */
			ksm_mm_busy = true;
			return 0;
		}
		/*
		 * The rest of @kmm waits for the next pass, its records as
		 * they are; an exiting one is reaped meanwhile.
		 */
		if (!exiting)
			kmm->resume = ksm_cursor.checked;
		if (cursor_next_mm(kmm, exiting ? KSM_LEAVE_REAP :
						  KSM_LEAVE_KEEP))
			goto pass_done;
		kmm = ksm_cursor.kmm;
		/* A page's work each: a tenant's many busy mms give way too. */
		if (*budget)
			(*budget)--;
		if (!*budget || need_resched() || ksm_lock_wanted())
			return -EAGAIN;
		goto next_mm;
	}
	/* The cursor left ksm_large's mm before it was past the range. */
	if (ksm_large.mm != mm)
		ksm_large.mm = NULL;
	if (!ksm_test_exit(mm) && test_bit(MMF_VM_MERGEABLE, &mm->flags)) {
		VMA_ITERATOR(vmi, mm, ksm_cursor.address);

		/* A serial changes only at fork, which our lock holds off. */
		if (!ksm_cursor.domain_known ||
		    ksm_domain_mode == KSM_DOMAIN_PROCESS) {
			ksm_cursor.domain = ksm_mm_domain(kmm);
			ksm_cursor.domain_known = true;
		}

		for_each_vma(vmi, vma) {
			unsigned long addr;

			if (!(vma->vm_flags & VM_MERGEABLE) || !vma->anon_vma) {
				/* Tens of thousands of VMAs are work too. */
				ksm_missed(&misses, 8, budget);
				if (!*budget || (budget_in != *budget &&
						 (need_resched() ||
						  mmap_lock_is_contended(mm) ||
						  ksm_lock_wanted()))) {
					ksm_cursor.address = vma->vm_end;
					ksm_scan_unlock(mm);
					return -EAGAIN;
				}
				continue;
			}
			addr = max(ksm_cursor.address, vma->vm_start);
			while (addr < vma->vm_end) {
				struct ksm_item *item;
				struct ksm_next next;
				struct page *page;
				unsigned int n;
				bool settled;

				/*
				 * Let go after some progress, if wanted, and
				 * when copies are owed: made before more are
				 * found.
				 */
				if (!*budget || ksm_nr_owed == KSM_OWED_MAX ||
				    (budget_in != *budget &&
				     (need_resched() ||
				      mmap_lock_is_contended(mm) ||
				      ksm_lock_wanted()))) {
					ksm_cursor.address = addr;
					ksm_scan_unlock(mm);
					return -EAGAIN;
				}
				if (ksm_test_exit(mm))
					goto done_mm;
				n = ksm_settled_run(kmm, vma, addr, *budget);
				if (n) {
					addr += n * PAGE_SIZE;
					ksm_cursor.checked = addr;
					ksm_pages_scanned += n;
					*budget -= n;
					continue;
				}
				page = ksm_page_at(kmm, vma, addr, &settled,
						   &next);
				if (settled) {
					addr += PAGE_SIZE;
					ksm_cursor.checked = addr;
					ksm_pages_scanned++;
					(*budget)--;
					continue;
				}
				if (!page) {
					unsigned int reads = 1;

					/* Skip holes a page table at a time. */
					addr = ksm_next_table(mm, addr + PAGE_SIZE,
							      vma->vm_end,
							      &reads);
					/*
					 * Page tables full of swap entries, or
					 * of nothing, hold no page either:
					 * count them as work.
					 */
					ksm_missed(&misses, reads, budget);
					continue;
				}
				flush_anon_page(vma, page, addr);
				flush_dcache_page(page);
				/* Past ksm_large's folio, or short of it. */
				if (ksm_large.mm == mm &&
				    (addr < ksm_large.start ||
				     addr >= ksm_large.end))
					ksm_large_finish();
				item = cursor_item(kmm, addr, &next);
				if (IS_ERR(item)) {
					/* This page again, next time. */
					put_page(page);
					ksm_cursor.address = addr;
					ksm_scan_unlock(mm);
					if (*budget)
						(*budget)--;
					return PTR_ERR(item);
				}
				addr += PAGE_SIZE;
				ksm_cursor.address = addr;
				if (!item) {
					/*
					 * No memory for its record: a tenant at
					 * its memory cgroup's limit.  The page
					 * waits a pass, and costs the budget
					 * what one scanned does.
					 */
					put_page(page);
					(*budget)--;
					continue;
				}
				ksm_scan_vma = vma;
				ksm_merge_page(item, page);
				ksm_scan_vma = NULL;
				item_settle(item);
				ksm_page_done(page);
				ksm_pages_scanned++;
				(*budget)--;
			}
			ksm_cursor.address = vma->vm_end;
		}
	}
done_mm:
	/*
	 * The rest of the list is for pages that are gone; all of it, if the
	 * mm is, including the items met earlier in this pass.
	 */
	dead = ksm_test_exit(mm) || !test_bit(MMF_VM_MERGEABLE, &mm->flags);
	if (dead)
		ksm_cursor.checked = 0;
	if (!cursor_drop_rest(kmm, false)) {
		/* The walk finds no page left, and comes back here. */
		ksm_scan_unlock(mm);
		if (*budget)
			(*budget)--;
		return -EAGAIN;
	}
	ksm_scan_unlock(mm);
	if (kmm->busy_shift)
		WRITE_ONCE(kmm->busy_shift, kmm->busy_shift - 1);
	if (cursor_next_mm(kmm, dead ? KSM_LEAVE_FREE : KSM_LEAVE_KEEP)) {
pass_done:
		ksm_drain_unstable(false);
		ksm_tidy.pending = true;
		return ksm_pass_end(budget);
	}
	kmm = ksm_cursor.kmm;
	goto next_mm;
}

/*
 * Up to @nr pages of ksmd's work, less if ksm_lock or the freezer wants
 * it.  Returns what is left of @nr if it stopped for the copies it owes
 * or at a busy mm.
 */
static unsigned int ksm_scan_pages(unsigned int nr)
{
	unsigned int start = nr;

	while (nr) {
		cond_resched();
		if (nr != start && ksm_lock_wanted())
			return 0;
		/* Copies are owed: made before more are found. */
		if (ksm_nr_owed == KSM_OWED_MAX)
			return nr;
		if (ksm_scan_walk(&nr))
			continue;
		/* A busy mm: on with the rest after a sleep (ksmd_fn()). */
		return ksm_mm_busy ? nr : 0;
	}
	return 0;
}

/*
 * One batch of ksmd's work.  Called with ksm_lock held.  Returns what is
 * left of @nr when the batch stopped for the copies ksmd owes, or at a
 * busy mm: the batch goes on once they are made, or after a short sleep.
 */
static unsigned int ksm_scan(unsigned int nr)
{
	unsigned int left;

	ksm_reap_exited(false);
	ksm_walk_ok = false;
	/* The mm may have moved to another cgroup since the last batch. */
	ksm_cursor.domain_known = false;
	ksm_cursor.busy_us += ksm_busy_slept_us;
	ksm_busy_slept_us = 0;
	left = ksm_scan_pages(nr);
	if (folio_batch_count(&ksm_done_pages))
		folios_put(&ksm_done_pages);
	/*
	 * Only a batch has a spare item: slab counts stay those of the
	 * records.  The spare chunks, a few hundred bytes, stay until run=2.
	 */
	if (ksm_spare) {
		kmem_cache_free(ksm_item_cache, ksm_spare);
		ksm_spare = NULL;
	}
	return left;
}

static bool ksmd_should_run(void)
{
	/* pages_to_scan 0 means no work: ksmd waits rather than spins. */
	return (ksm_run & KSM_RUN_MERGE) && READ_ONCE(ksm_pages_to_scan) &&
	       (!list_empty(&ksm_mm_head.slot.mm_node) ||
		!list_empty(&ksm_exited));
}

/* A new sleep_millisecs cuts the sleep short, so that it applies at once. */
static bool ksmd_sleep_over(unsigned int ms)
{
	return kthread_should_stop() || READ_ONCE(ksm_sleep_millisecs) != ms;
}

static bool ksmd_wake_up(void)
{
	return ksmd_should_run() || kthread_should_stop();
}

/* ksmd slept since @t0 on a busy mmap_lock: see ksm_busy_try() */
static void ksmd_busy_slept(ktime_t t0)
{
	s64 us = ktime_us_delta(ktime_get(), t0);

	ksm_busy_slept_us += us;
	if (ksm_busy_charged)
		ksm_busy_left_us -= us;
}

static int ksmd_fn(void *unused)
{
	unsigned int left = 0;

	set_freezable();
	set_user_nice(current, 5);

	while (!kthread_should_stop()) {
		unsigned int nr = left ?: READ_ONCE(ksm_pages_to_scan);

		ksm_lock_online();
		if (ksmd_should_run()) {
			left = ksm_scan(nr);
		} else {
			left = 0;
			/* Stopped: the batches fill up again meanwhile. */
			if (ksm_lru_drain == KSM_LRU_DRAINED)
				ksm_lru_drain = KSM_LRU_DRAIN_NONE;
		}
		mutex_unlock(&ksm_lock);

		if (ksm_nr_owed)
			ksm_pay_copies();
		/* The cursor's mm was busy: try again soon (ksm_mm_busy). */
		if (ksm_mm_busy) {
			ktime_t t0 = ktime_get();

			ksm_mm_busy = false;
			usleep_range(KSM_MM_BUSY_US, 2 * KSM_MM_BUSY_US);
			ksmd_busy_slept(t0);
		}
		/* The batch stopped: on with the rest of it. */
		if (left) {
			try_to_freeze();
			continue;
		}

		/* A pass is about to start: see ksm_lru_drain. */
		if (ksm_lru_drain == KSM_LRU_DRAIN_WANTED) {
			lru_add_drain_all();
			ksm_lru_drain = KSM_LRU_DRAINED;
			continue;
		}

		if (ksmd_should_run()) {
			unsigned int ms = READ_ONCE(ksm_sleep_millisecs);

			if (ms)
				wait_event_freezable_timeout(ksmd_sleep_wait,
							     ksmd_sleep_over(ms),
							     msecs_to_jiffies(ms));
			else
				try_to_freeze();
			cond_resched();
		} else {
			wait_event_freezable(ksmd_wait, ksmd_wake_up());
		}
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Unmerging everything (run = 2)                                         */
/* ---------------------------------------------------------------------- */

/* Only run=2 unmerges everything, and run is in sysfs. */
#ifdef CONFIG_SYSFS
/*
 * Give every registered mm private copies of its KSM pages, and forget
 * all items and stable nodes.  Called with ksm_lock held and ksmd
 * stopped, so the cursor is ours.  Returns 0 or the first error; what
 * could be unmerged is unmerged either way.
 */
static int ksm_unmerge_all(void)
{
	struct ksm_mm *kmm;
	int err = 0;

	ksm_reap_exited(true);
	/* The cursor marks the mm in use: __ksm_exit() leaves it to us. */
	spin_lock(&ksm_mm_lock);
	kmm = ksm_mm_next(&ksm_mm_head);
	cursor_set(kmm);
	spin_unlock(&ksm_mm_lock);

	while (kmm != &ksm_mm_head) {
		struct mm_struct *mm = kmm->slot.mm;
		struct vm_area_struct *vma;
		int failed = 0;
		bool dead;

		/* A tenant may hold it for ever: the writer of run can quit. */
		if (mmap_read_lock_killable(mm)) {
			err = -EINTR;
			/* One that exited meanwhile was left to us (__ksm_exit()). */
			cursor_next_mm(kmm, ksm_test_exit(mm) ? KSM_LEAVE_REAP :
								 KSM_LEAVE_KEEP);
			break;
		}
		if (!ksm_test_exit(mm)) {
			VMA_ITERATOR(vmi, mm, 0);

			for_each_vma(vmi, vma) {
				int ret;

				if (!(vma->vm_flags & VM_MERGEABLE) ||
				    !vma->anon_vma)
					continue;
				ret = ksm_unshare(vma, vma->vm_start,
						  vma->vm_end);
				if (ret && !failed)
					failed = ret;
			}
		}
		dead = ksm_test_exit(mm) ||
		       !test_bit(MMF_VM_MERGEABLE, &mm->flags);
		/*
		 * Items of pages still merged stay, so that rmap walks find
		 * those mappings until a later run unmerges them.
		 */
		if (!failed || dead) {
			ksm_cursor.checked = 0;
			cursor_drop_rest(kmm, true);
		}
		mmap_read_unlock(mm);
		if (failed && !err)
			err = failed;

		cursor_next_mm(kmm, dead ? KSM_LEAVE_FREE : KSM_LEAVE_KEEP);
		kmm = ksm_cursor.kmm;
		if (err == -ERESTARTSYS)
			break;
	}

	/* And those that exited meanwhile. */
	ksm_reap_exited(true);
	/* Wherever the walk stopped: park the cursor between passes. */
	spin_lock(&ksm_mm_lock);
	ksm_cursor.kmm = &ksm_mm_head;
	ksm_cursor.address = 0;
	ksm_cursor.checked = 0;
	spin_unlock(&ksm_mm_lock);
	return err;
}
#endif /* CONFIG_SYSFS */

/* ---------------------------------------------------------------------- */
/* Registration: madvise, prctl, fork, exec, exit                         */
/* ---------------------------------------------------------------------- */

/* Areas whose pages are not anonymous pages of this mm alone. */
static bool vma_ksm_compatible(struct vm_area_struct *vma)
{
	vm_flags_t bad = VM_SHARED | VM_MAYSHARE | VM_PFNMAP | VM_IO |
			 VM_DONTEXPAND | VM_HUGETLB | VM_MIXEDMAP |
			 VM_DROPPABLE;

	/* Architecture flags that give the page a meaning beyond its bytes. */
#ifdef VM_SAO
	bad |= VM_SAO;
#endif
#ifdef VM_SPARC_ADI
	bad |= VM_SPARC_ADI;
#endif
	return !(vma->vm_flags & bad) && !vma_is_dax(vma);
}

/* __ksm_enter(), and __ksm_fork() with the parent's @busy_shift */
static int ksm_add_mm(struct mm_struct *mm, unsigned int busy_shift)
{
	struct ksm_mm *kmm, *before;
	struct mm_slot *slot;
	bool wake;

	kmm = kmem_cache_zalloc(ksm_mm_cache, GFP_KERNEL);
	if (!kmm)
		return -ENOMEM;
	xa_init_flags(&kmm->items, XA_FLAGS_ACCOUNT);
	kmm->busy_shift = busy_shift;

	/* Before ksmd can see the mm: a clear flag tells it to let go. */
	set_bit(MMF_VM_MERGEABLE, &mm->flags);
	mmgrab(mm);
	spin_lock(&ksm_mm_lock);
	kmm->serial = ksm_new_serial();
	slot = &kmm->slot;
	mm_slot_insert(ksm_mm_hash, mm, slot);
	wake = list_empty(&ksm_mm_head.slot.mm_node);
	/*
	 * While run=2 walks the list, a child forked from an mm it has not
	 * reached yet inherits merged pages: it goes at the end, ahead of
	 * the walk, which then unmerges it too.
	 */
	before = READ_ONCE(ksm_run) == KSM_RUN_UNMERGE ? &ksm_mm_head :
							    ksm_cursor.kmm;
	list_add_tail(&kmm->slot.mm_node, &before->slot.mm_node);
	spin_unlock(&ksm_mm_lock);

	trace_ksm_enter(mm);
	if (wake)
		wake_up_interruptible(&ksmd_wait);
	return 0;
}

/**
 * __ksm_enter - register @mm with ksmd
 * @mm: the mm; its mmap_lock is held for write, or it is new (fork)
 *
 * New mms go just behind the cursor, so that ksmd meets them only on its
 * next pass, when their pages have had a chance to settle.  Each is a
 * merge domain of its own in the "process" mode.
 *
 * Return: 0 or -ENOMEM.
 */
int __ksm_enter(struct mm_struct *mm)
{
	return ksm_add_mm(mm, 0);
}

/**
 * __ksm_exit - @mm goes away: from __mmput(), or an exec that failed
 * @mm: the mm
 *
 * A registered mm with no items, that the cursor is not on, is freed at
 * once; one with items goes to ksm_exited, for ksmd's next batch; the
 * cursor's is freed when ksmd moves on.  We make sure that no ksmd is
 * still working in the mm: ksmd holds mmap_lock for read whenever it
 * touches the mm, and checks mm_users after taking it.
 */
void __ksm_exit(struct mm_struct *mm)
{
	struct ksm_mm *kmm;
	bool now = false;

	spin_lock(&ksm_mm_lock);
	kmm = ksm_mm_lookup(mm);
	if (kmm && ksm_cursor.kmm != kmm) {
		hash_del(&kmm->slot.hash);
		/* An heir may be about to get a slot (map_pass_on()). */
		if (xa_empty(&kmm->items) && kmm != ksm_heir) {
			list_del(&kmm->slot.mm_node);
			now = true;
		} else {
			/*
			 * Its items, page tables and share of the counters
			 * go at ksmd's next batch (ksm_reap_exited()), not
			 * when the scan reaches it a pass later.
			 */
			list_move_tail(&kmm->slot.mm_node, &ksm_exited);
		}
	}
	spin_unlock(&ksm_mm_lock);

	trace_ksm_exit(mm);
	if (now) {
		ksm_mm_free(kmm);
		return;
	}
	/*
	 * exec's error path holds mmap_lock for write and still has a user;
	 * its mm has no pages and ksmd frees it on sight (MMF_VM_MERGEABLE
	 * clear).
	 */
	clear_bit(MMF_VM_MERGE_ANY, &mm->flags);
	clear_bit(MMF_VM_MERGEABLE, &mm->flags);
	if (ksm_test_exit(mm)) {
		mmap_write_lock(mm);
		mmap_write_unlock(mm);
	}
}

static int ksm_count_zero_pte(pte_t *pte, unsigned long addr,
			      unsigned long next, struct mm_walk *walk)
{
	pte_t entry = ptep_get(pte);

	if (pte_present(entry) && is_ksm_zero_pte(entry))
		(*(long *)walk->private)++;
	return 0;
}

/*
 * A huge PMD maps no KSM zero page: step over it rather than let the
 * walk split it to reach PTEs (the child would lose its huge pages).
 */
static int ksm_count_zero_pmd(pmd_t *pmd, unsigned long addr,
			      unsigned long next, struct mm_walk *walk)
{
	pmd_t entry = pmdp_get(pmd);

	if (pmd_leaf(entry) || !pmd_present(entry))
		walk->action = ACTION_CONTINUE;
	return 0;
}

static const struct mm_walk_ops ksm_count_zero_ops = {
	.pmd_entry = ksm_count_zero_pmd,
	.pte_entry = ksm_count_zero_pte,
	.walk_lock = PGWALK_RDLOCK,
};

/*
 * The KSM zero pages that @mm, a child of @oldmm whose PTEs fork copied,
 * maps in its mergeable areas, put on the counts, @mm's (which dup_mm()
 * copied from @oldmm) and the global one.  A failed dup_mmap() leaves
 * XA_ZERO_ENTRY where its copy stopped, and the parent's areas after it:
 * the walk stops there, as exit_mmap() does.  With both mmap_locks held
 * for write.
 */
static void ksm_count_copied_zero(struct mm_struct *mm,
				  struct mm_struct *oldmm)
{
	VMA_ITERATOR(vmi, mm, 0);
	struct vm_area_struct *vma;
	long zero = 0;

	if (atomic_long_read(&oldmm->ksm_zero_pages)) {
		for_each_vma(vmi, vma) {
			if (xa_is_zero(vma))
				break;
			if (vma->vm_flags & VM_MERGEABLE)
				walk_page_range(mm, vma->vm_start, vma->vm_end,
						&ksm_count_zero_ops, &zero);
		}
	}
	atomic_long_set(&mm->ksm_zero_pages, zero);
	atomic_long_add(zero, &ksm_zero_pages);
}

/**
 * __ksm_fork_failed - count the KSM zero pages of a child that goes
 * @mm: the child's mm, part of whose areas dup_mmap() copied
 * @oldmm: the parent's
 *
 * Called by dup_mmap() when it fails, with both mmap_locks held for
 * write, before exit_mmap() unmaps what was copied, which takes each KSM
 * zero page off the counts.  Without this, dup_mm()'s copy of the
 * parent's count would be @mm's, and the global count would lose the
 * child's pages that it never had.
 */
void __ksm_fork_failed(struct mm_struct *mm, struct mm_struct *oldmm)
{
	ksm_count_copied_zero(mm, oldmm);
}

/**
 * __ksm_fork - register the child of a registered mm
 * @mm: the child's new mm, its page tables copied
 * @oldmm: the parent's
 *
 * Called by dup_mmap() with both mmap_locks held for write.  The child
 * starts with no items; the counters that dup_mm() copied with the mm are
 * reset.  Its KSM zero pages are counted afresh: the copy was taken before
 * the parent's mmap_lock, and areas that fork does not copy
 * (MADV_DONTFORK, MADV_WIPEONFORK) keep theirs in the parent only.
 */
void __ksm_fork(struct mm_struct *mm, struct mm_struct *oldmm)
{
	unsigned int busy_shift = 0;
	struct ksm_mm *kmm;

	mm->ksm_merging_pages = 0;
	mm->ksm_rmap_items = 0;
	ksm_count_copied_zero(mm, oldmm);
	/*
	 * In the "process" mode the parent leaves the domain it shares with
	 * the child's inherited pages: see ksm_domain_stale().
	 */
	spin_lock(&ksm_mm_lock);
	kmm = ksm_mm_lookup(oldmm);
	if (kmm) {
		kmm->serial = ksm_new_serial();
		/* ksmd's, but a stale value only shifts a share once. */
		busy_shift = READ_ONCE(kmm->busy_shift);
	}
	spin_unlock(&ksm_mm_lock);
	/*
	 * Registration is best effort: a child that misses it stays
	 * unmerged.  It starts with its parent's share of tries at a busy
	 * lock: else a tenant forking without pause would bring a new one to
	 * every pass (see ksm_mm_busy).
	 */
	ksm_add_mm(mm, busy_shift);
}

/**
 * ksm_madvise - MADV_MERGEABLE and MADV_UNMERGEABLE on part of a VMA
 * @vma: the VMA
 * @start: first address of the range
 * @end: end of the range
 * @advice: MADV_MERGEABLE or MADV_UNMERGEABLE
 * @vm_flags: the VMA's flags, which the caller applies on success
 *
 * Mergeable is ignored on areas KSM cannot merge (shared, I/O, hugetlb...),
 * as upstream.  Unmergeable first gives the range private copies of its
 * KSM pages.  Called with mmap_lock held for write.
 *
 * Return: 0, or -ENOMEM or -ERESTARTSYS (a signal while unmerging);
 * nothing changed in the flags.
 */
int ksm_madvise(struct vm_area_struct *vma, unsigned long start,
		unsigned long end, int advice, unsigned long *vm_flags)
{
	bool mergeable = *vm_flags & VM_MERGEABLE;
	int err = 0;

	/* Asked for what the area already is, or cannot be: nothing to do. */
	if (advice == MADV_MERGEABLE && !mergeable && vma_ksm_compatible(vma)) {
		if (!test_bit(MMF_VM_MERGEABLE, &vma->vm_mm->flags))
			err = __ksm_enter(vma->vm_mm);
		if (!err)
			*vm_flags |= VM_MERGEABLE;
	} else if (advice == MADV_UNMERGEABLE && mergeable) {
		if (vma->anon_vma) {
			/* Keep out faults under the per-VMA lock meanwhile. */
			vma_start_write(vma);
			err = ksm_unshare(vma, start, end);
		}
		if (!err)
			*vm_flags &= ~VM_MERGEABLE;
	}
	return err;
}
EXPORT_SYMBOL_GPL(ksm_madvise);

/**
 * ksm_add_vma - mark a new VMA mergeable if its mm merges everything
 * @vma: the VMA, just created; mmap_lock held for write
 */
void ksm_add_vma(struct vm_area_struct *vma)
{
	if (test_bit(MMF_VM_MERGE_ANY, &vma->vm_mm->flags) &&
	    vma_ksm_compatible(vma))
		vm_flags_set(vma, VM_MERGEABLE);
}

/* merge-any: VM_MERGEABLE on every compatible VMA of @mm. */
static void ksm_mark_all_vmas(struct mm_struct *mm)
{
	VMA_ITERATOR(vmi, mm, 0);
	struct vm_area_struct *vma;

	for_each_vma(vmi, vma)
		ksm_add_vma(vma);
}

/* Unmerge and clear VM_MERGEABLE on every VMA of @mm. */
static int ksm_clear_all_vmas(struct mm_struct *mm)
{
	VMA_ITERATOR(vmi, mm, 0);
	struct vm_area_struct *vma;

	for_each_vma(vmi, vma) {
		if (!(vma->vm_flags & VM_MERGEABLE))
			continue;
		if (vma->anon_vma) {
			int err;

			vma_start_write(vma);
			err = ksm_unshare(vma, vma->vm_start, vma->vm_end);
			if (err)
				return err;
		}
		vm_flags_clear(vma, VM_MERGEABLE);
	}
	return 0;
}

/**
 * ksm_enable_merge_any - prctl(PR_SET_MEMORY_MERGE, 1): merge every
 * compatible area of @mm, present and future
 * @mm: the mm; mmap_lock held for write
 *
 * Return: 0 or -ENOMEM.
 */
int ksm_enable_merge_any(struct mm_struct *mm)
{
	int err = 0;

	if (test_bit(MMF_VM_MERGE_ANY, &mm->flags))
		return 0;
	if (!test_bit(MMF_VM_MERGEABLE, &mm->flags))
		err = __ksm_enter(mm);
	if (!err) {
		set_bit(MMF_VM_MERGE_ANY, &mm->flags);
		ksm_mark_all_vmas(mm);
	}
	return err;
}

/**
 * ksm_disable_merge_any - prctl(PR_SET_MEMORY_MERGE, 0)
 * @mm: the mm; mmap_lock held for write
 *
 * Unmerges every area of @mm and stops marking new ones.
 *
 * Return: 0, or an error from unmerging; merge-any then stays on, with
 * every compatible area mergeable again.
 */
int ksm_disable_merge_any(struct mm_struct *mm)
{
	int err;

	if (!test_bit(MMF_VM_MERGE_ANY, &mm->flags))
		return 0;
	err = ksm_clear_all_vmas(mm);
	if (!err)
		clear_bit(MMF_VM_MERGE_ANY, &mm->flags);
	else
		ksm_mark_all_vmas(mm);	/* as it was: all mergeable */
	return err;
}

/**
 * ksm_disable - unmerge all of @mm and keep it from merging again
 * @mm: the mm; mmap_lock held for write
 *
 * Return: 0 or an error from unmerging.
 */
int ksm_disable(struct mm_struct *mm)
{
	mmap_assert_write_locked(mm);

	if (test_bit(MMF_VM_MERGE_ANY, &mm->flags))
		return ksm_disable_merge_any(mm);
	return test_bit(MMF_VM_MERGEABLE, &mm->flags) ?
	       ksm_clear_all_vmas(mm) : 0;
}

/* ---------------------------------------------------------------------- */
/* What the rest of mm asks of KSM pages                                  */
/* ---------------------------------------------------------------------- */

/*
 * Can a page that came back from swap be mapped at @addr of @vma as it
 * is?  A KSM page can while its node lives; an ordinary anonymous page
 * only at the offset and anon_vma it was created for.
 */
static bool swapin_page_fits(struct folio *folio, struct vm_area_struct *vma,
			     unsigned long addr)
{
	struct anon_vma *anon_vma;

	/*
	 * KSM pages are never large, and the callers map the right page of
	 * a large folio themselves: only a small one needs the checks below.
	 */
	if (folio_test_large(folio))
		return true;
	/*
	 * A KSM page is mapped as it is only where KSM may map it: a VMA
	 * made unmergeable since the page was swapped out (unmerging passes
	 * swap entries by) gets a copy, or its mapping would escape the
	 * unmerging that mremap relies on (see "mremap during a migration" in
	 * Documentation/mm/ksm.rst).
	 */
	if (folio_test_ksm(folio))
		return folio_stable(folio) && ksm_run != KSM_RUN_UNMERGE &&
		       (vma->vm_flags & VM_MERGEABLE);
	anon_vma = folio_anon_vma(folio);
	if (!anon_vma)
		return true;
	return folio->index == linear_page_index(vma, addr) &&
	       anon_vma->root == vma->anon_vma->root;
}

/**
 * ksm_might_need_to_copy - the folio to map for a swap entry at @addr
 * @folio: the locked swap cache folio
 * @vma: the VMA being faulted
 * @addr: the faulting address
 *
 * Return: @folio if it can be mapped there; else a new locked copy; NULL
 * if none could be allocated; ERR_PTR(-EHWPOISON) if @folio is poisoned.
 */
struct folio *ksm_might_need_to_copy(struct folio *folio,
				     struct vm_area_struct *vma,
				     unsigned long addr)
{
	struct page *page = folio_page(folio, 0);
	struct folio *copy;

	/*
	 * First: a poisoned KSM page may keep its node a while.  (The
	 * callers test the right page of a large folio.)
	 */
	if (!folio_test_large(folio) && PageHWPoison(page))
		return ERR_PTR(-EHWPOISON);
	if (swapin_page_fits(folio, vma, addr))
		return folio;
	/* A read error: let do_swap_page() report it as it would anyway. */
	if (!folio_test_uptodate(folio))
		return folio;

	copy = vma_alloc_folio(GFP_HIGHUSER_MOVABLE, 0, vma, addr, false);
	if (!copy)
		return NULL;
	if (mem_cgroup_charge(copy, vma->vm_mm, GFP_KERNEL)) {
		folio_put(copy);
		return NULL;
	}
	/* A machine check here queues the page for memory_failure(). */
	if (copy_mc_user_highpage(folio_page(copy, 0), page, addr, vma)) {
		folio_put(copy);
		return ERR_PTR(-EHWPOISON);
	}
	folio_set_dirty(copy);
	__folio_mark_uptodate(copy);
	__folio_set_locked(copy);
#ifdef CONFIG_SWAP
	count_vm_event(KSM_SWPIN_COPY);
#endif
	return copy;
}

/* Lock @anon_vma for read, unless @rwc only tries and it is contended. */
static bool ksm_anon_vma_lock(struct anon_vma *anon_vma,
			      struct rmap_walk_control *rwc)
{
	if (anon_vma_trylock_read(anon_vma))
		return true;
	if (rwc->try_lock) {
		rwc->contended = true;
		return false;
	}
	anon_vma_lock_read(anon_vma);
	return true;
}

/*
 * Which page offsets of @anon_vma (locked) to look at for @map's
 * mappings: with ITEM_PGOFF, the address's page number, if @map's own VMA
 * is found there; otherwise all of them, from then on.  The offset is wrong
 * when a swapped-out KSM page was moved by mremap and swapped in again
 * before ksmd met it (see ksm_page_at()), or when the area was unmapped.
 *
 * Migration walks the mappings twice, once to put migration entries in
 * and once to take them out, and the second walk must reach every entry
 * the first one made, or one is left behind for good.  So the choice
 * never depends on what the caller wants, and once wide a map stays
 * wide: the VMAs may change between the two walks (mmap_lock is not
 * held), and a VMA mapped at the recorded offset in between must not
 * narrow the second walk.  ITEM_PGOFF is only ever set under the KSM
 * page's lock, which migration holds across both walks; it is cleared
 * here (under that lock) and by ksm_page_at(), and clearing it only
 * widens.
 */
static void ksm_map_pgoffs(struct ksm_map *map, unsigned long address,
			   struct anon_vma *anon_vma, pgoff_t *first,
			   pgoff_t *last)
{
	unsigned long addr = address & PAGE_MASK;
	struct anon_vma_chain *avc;
	pgoff_t pgoff;

	*first = 0;
	*last = ULONG_MAX;
	if (!(address & ITEM_PGOFF))
		return;
	pgoff = addr >> PAGE_SHIFT;
	anon_vma_interval_tree_foreach(avc, &anon_vma->rb_root, pgoff, pgoff) {
		struct vm_area_struct *vma = avc->vma;

		if (vma->vm_mm == map->kmm->slot.mm && addr >= vma->vm_start &&
		    addr < vma->vm_end) {
			*first = pgoff;
			*last = pgoff;
			return;
		}
	}
	clear_bit(ITEM_PGOFF_BIT, &map->address);
}

/*
 * Visit the mapping at @addr of @vma, under the lock of @anon_vma.
 * Returns true, the lock dropped, if the caller's callbacks end the walk.
 */
static bool ksm_rmap_visit(struct folio *folio, struct vm_area_struct *vma,
			   unsigned long addr, struct rmap_walk_control *rwc,
			   struct anon_vma *anon_vma)
{
	if (rwc->invalid_vma && rwc->invalid_vma(vma, rwc->arg))
		return false;
	if (rwc->rmap_one(folio, vma, addr, rwc->arg) &&
	    !(rwc->done && rwc->done(folio)))
		return false;
	anon_vma_unlock_read(anon_vma);
	return true;
}

/*
 * Did ksm_rmap_native() visit every VMA of @anon_vma (a map's, locked,
 * with a VMA linked to it) at the page's offset?  Yes if @anon_vma is the
 * page's own anon_vma, ->native, or descends from it: a VMA linked to an
 * anon_vma is linked to each of its ancestors too (anon_vma_fork() clones
 * the parent's chain), so it is in ->native's tree as well.  A map's walk
 * then passes over those VMAs at that offset, so that each mapping is
 * visited once where it can (folio_referenced() counts them, and stops
 * when it has counted them all).  Up the ->parent links (set at creation,
 * never changed; the ancestors live while a VMA is linked to @anon_vma),
 * at most KSM_AVC_STEPS of them: a deeper line of forks is taken for "no",
 * and its mappings are visited twice (as where anon_vma_clone() reused an
 * ancestor for a child, or where @anon_vma is an ancestor of ->native: a
 * parent's page merged into its child's copy, which became the KSM page
 * in place): migration, unmapping and healing find nothing the second
 * time, and folio_referenced() may stop early.  A VMA linked
 * since the native walk (a fork meanwhile) copied the entry that walk
 * left in its parent, which it visited.
 */
static bool ksm_below_native(const struct ksm_stable *stable,
			     struct anon_vma *anon_vma)
{
	struct anon_vma *native = stable->native;
	unsigned int steps;

	if (!native || native->root != anon_vma->root)
		return false;
	for (steps = 0; anon_vma != native; steps++) {
		if (steps == KSM_AVC_STEPS || anon_vma->parent == anon_vma)
			return false;
		anon_vma = anon_vma->parent;
	}
	return true;
}

/*
 * The mappings that fork made of a page that became a KSM page in place
 * (stable->native): found exactly as rmap_walk_anon() finds those of any
 * anonymous page, through its anon_vma and its offset, mergeable areas
 * or not.  mremap() keeps a moved area's offsets, and takes the anon_vma
 * lock where a walk could miss a page table it moves, so both walks of a
 * migration find every entry.  Returns true if the walk was ended.
 */
static bool ksm_rmap_native(struct folio *folio, struct ksm_stable *stable,
			    struct rmap_walk_control *rwc)
{
	struct anon_vma *anon_vma = stable->native;
	pgoff_t pgoff = folio->index;
	struct anon_vma_chain *avc;

	if (!anon_vma)
		return false;
	if (!ksm_anon_vma_lock(anon_vma, rwc))
		return true;
	anon_vma_interval_tree_foreach(avc, &anon_vma->rb_root, pgoff, pgoff) {
		struct vm_area_struct *vma = avc->vma;
		unsigned long addr = vma_address(vma, pgoff, 1);

		cond_resched();
		if (addr != -EFAULT &&
		    ksm_rmap_visit(folio, vma, addr, rwc, anon_vma))
			return true;
	}
	anon_vma_unlock_read(anon_vma);
	return false;
}

/*
 * The two rounds of the maps' walk: each map's own mm, then the others.
 * Returns true if the walk was ended (by the caller's callbacks, or a
 * contended lock with rwc->try_lock).
 */
static bool ksm_rmap_rounds(struct folio *folio, struct ksm_stable *stable,
			    struct rmap_walk_control *rwc)
{
	int round;

	for (round = 0; round < 2; round++) {
		struct ksm_chunk *chunk = NULL;
		unsigned int left, i = 0;

		for (left = stable->nr_items; left; left--) {
			struct ksm_map *map;
			unsigned long address, addr;
			struct anon_vma *anon_vma;
			struct anon_vma_chain *avc;
			pgoff_t first, last;
			int below = -1;

			if (!i) {
				/* The newest chunk, then full ones. */
				chunk = chunk ? chunk->next : stable->chunks;
				i = chunk_fill(left);
			}
			map = &chunk->map[--i];
			address = READ_ONCE(map->address);
			addr = address & PAGE_MASK;
			anon_vma = map->anon_vma;
			cond_resched();
			if (!ksm_anon_vma_lock(anon_vma, rwc))
				return true;
			ksm_map_pgoffs(map, address, anon_vma, &first, &last);
			anon_vma_interval_tree_foreach(avc, &anon_vma->rb_root,
						       first, last) {
				struct vm_area_struct *vma = avc->vma;
				bool own;

				cond_resched();
				if (addr < vma->vm_start || addr >= vma->vm_end)
					continue;
				/*
				 * Only mergeable areas: a map's mapping is
				 * in one, and mremap() unmerges those before
				 * it moves them, waiting for migration
				 * entries, so the walks of one migration find
				 * an entry where they left it.  Elsewhere a
				 * KSM page is mapped only where fork left it,
				 * at its own offset: ksm_rmap_native()'s,
				 * which also visited what ksm_below_native()
				 * tells.
				 */
				if (!(vma->vm_flags & VM_MERGEABLE))
					continue;
				own = vma->vm_mm == map->kmm->slot.mm;
				if (round == own)
					continue;
				/*
				 * Only now: ->parent links are safe to follow
				 * once a VMA linked to @anon_vma is found
				 * under its lock (the map pins only it).
				 */
				if (below < 0)
					below = ksm_below_native(stable,
								 anon_vma);
				if (below &&
				    vma_address(vma, folio->index, 1) == addr)
					continue;
				if (ksm_rmap_visit(folio, vma, addr, rwc,
						   anon_vma))
					return true;
			}
			anon_vma_unlock_read(anon_vma);
		}
	}
	return false;
}

/**
 * rmap_walk_ksm - rmap_walk() for a KSM page
 * @folio: the KSM page, locked
 * @rwc: what to do with each mapping
 *
 * A page made a KSM page in place is first looked for where fork left it,
 * through its own anon_vma and offset, as any anonymous page is; then
 * every mapping is looked for through the maps of the page's stable node,
 * each with the anon_vma of the VMA it was merged in, locked for read:
 * each map's own mm first, then in a second round the children forked
 * since, which share that anon_vma but may have no map yet.
 */
void rmap_walk_ksm(struct folio *folio, struct rmap_walk_control *rwc)
{
	struct ksm_stable *stable = folio_stable(folio);

	VM_WARN_ON_ONCE_FOLIO(!folio_test_locked(folio), folio);
	if (stable && !ksm_rmap_native(folio, stable, rwc))
		ksm_rmap_rounds(folio, stable, rwc);
}

#ifdef CONFIG_MEMORY_FAILURE
struct ksm_kill_arg {
	struct page *page;
	struct list_head *to_kill;
	int force_early;
};

static bool ksm_collect_one(struct folio *folio, struct vm_area_struct *vma,
			    unsigned long addr, void *arg)
{
	DEFINE_FOLIO_VMA_WALK(pvmw, folio, vma, addr, 0);
	struct ksm_kill_arg *ka = arg;
	struct task_struct *tsk;

	/*
	 * The walk looks at every process whose VMA could map the page (an
	 * item's anon_vma may be an ancestor's, covering children that have
	 * copied their page since): signal only those that map it.  Under
	 * the anon_vma lock, not mmap_lock: a page_vma_mapped_walk().
	 */
	if (!page_vma_mapped_walk(&pvmw))
		return true;
	page_vma_mapped_walk_done(&pvmw);
	rcu_read_lock();
	for_each_process(tsk) {
		struct task_struct *t = task_early_kill(tsk, ka->force_early);

		if (t && t->mm == vma->vm_mm)
			add_to_kill_ksm(t, ka->page, vma, ka->to_kill, addr);
	}
	rcu_read_unlock();
	return true;
}

/**
 * collect_procs_ksm - the processes to signal about a poisoned KSM page
 * @folio: the KSM page, locked
 * @page: the poisoned page
 * @to_kill: list to add them to
 * @force_early: kill even those not asking for early kill
 */
void collect_procs_ksm(struct folio *folio, struct page *page,
		       struct list_head *to_kill, int force_early)
{
	struct ksm_kill_arg ka = {
		.page = page,
		.to_kill = to_kill,
		.force_early = force_early,
	};
	struct rmap_walk_control rwc = {
		.rmap_one = ksm_collect_one,
		.arg = &ka,
	};

	rmap_walk_ksm(folio, &rwc);
}

/*
 * Memory failure that spares the sharers.  A KSM page may be mapped by
 * every guest of a host; memory_failure() would unmap it from all of
 * them and kill them (at once, or as they touch it).  Two kinds of
 * healthy copy let them live on:
 *
 *  - another KSM page of the same content and domain, made because
 *    max_page_sharing filled this one: the group of @dup_next, which
 *    knows the contents are equal without reading the poisoned page
 *    (on real hardware a read of it is a machine check).  The node takes
 *    a new frame holding a copy of the healthy page, and every mapping
 *    moves to it, as migration would move them: the maps, the tree and
 *    the counters do not change, and max_page_sharing still holds.
 *  - a clean page in the swap cache: its swap slot holds the content.
 *    That is memory_failure()'s own case: it turns the mappings into swap
 *    entries, drops the page from the swap cache, and the next fault
 *    reads the slot.
 *
 * Without either, everyone is unmapped and signalled, as upstream does.
 * Whenever the frame keeps no mapping, or has no copy, the poisoned page
 * must never be mapped again: a node left with it leaves the stable tree
 * and its group at once, so that no search reads it and no page merges
 * into it.  Its maps stay, for the rmap walks of
 * memory_failure() that follow, and go as the scanner or exit meets them.
 */

/* Move the mapping of the poisoned KSM @folio at @addr to the copy @arg. */
static bool ksm_heal_one(struct folio *folio, struct vm_area_struct *vma,
			 unsigned long addr, void *arg)
{
	DEFINE_FOLIO_VMA_WALK(pvmw, folio, vma, addr, 0);
	struct folio *copy = arg;
	struct page *page = folio_page(copy, 0);
	struct mmu_notifier_range range;

	mmu_notifier_range_init(&range, MMU_NOTIFY_CLEAR, 0, vma->vm_mm, addr,
				addr + PAGE_SIZE);
	mmu_notifier_invalidate_range_start(&range);
	/* Under the anon_vma lock, like try_to_migrate_one(). */
	while (page_vma_mapped_walk(&pvmw)) {
		pte_t orig, entry;

		flush_cache_page(vma, pvmw.address, folio_pfn(folio));
		orig = ptep_clear_flush(vma, pvmw.address, pvmw.pte);
		entry = pte_wrprotect(mk_pte(page, vma->vm_page_prot));
		if (pte_uffd_wp(orig))
			entry = pte_mkuffd_wp(entry);
		if (pte_soft_dirty(orig))
			entry = pte_mksoft_dirty(entry);
		folio_get(copy);
		folio_add_anon_rmap_pte(copy, page, vma, pvmw.address,
					RMAP_NONE);
		set_pte_at(vma->vm_mm, pvmw.address, pvmw.pte, entry);
		update_mmu_cache(vma, pvmw.address, pvmw.pte);
		folio_remove_rmap_pte(folio, folio_page(folio, 0), vma);
		folio_put(folio);
		/*
		 * As remove_migration_pte(): munlock parked a reference to
		 * @folio in this CPU's batch, and memory_failure() must find
		 * none but its own.
		 */
		if (vma->vm_flags & VM_LOCKED)
			mlock_drain_local();
	}
	mmu_notifier_invalidate_range_end(&range);
	return true;
}

/*
 * Give @stable, whose KSM page @folio (locked) is poisoned, a new frame
 * with @dup's content, and move @folio's mappings there.  Returns false
 * if no mapping moved (no memory, or @dup's frame failed too).
 */
static bool stable_heal(struct ksm_stable *stable, struct folio *folio,
			struct folio *dup)
{
	struct rmap_walk_control rwc = { .rmap_one = ksm_heal_one };
	struct folio *copy;

	/* No OOM kill here, under mf_mutex, ksm_lock and the page lock. */
	copy = __folio_alloc_node(GFP_HIGHUSER_MOVABLE | __GFP_NORETRY |
				  __GFP_NOWARN, 0, folio_nid(folio));
	if (!copy)
		return false;
	if (copy_mc_highpage(folio_page(copy, 0), folio_page(dup, 0))) {
		folio_put(copy);
		return false;
	}
	__folio_set_locked(copy);
	__folio_set_swapbacked(copy);
	__folio_mark_uptodate(copy);
	folio_set_dirty(copy);
	/* Its mappings of stable->native are found by the page's offset. */
	copy->index = folio->index;
	folio_set_stable(copy, stable);
	/*
	 * Charged to the poisoned page's memory cgroup, which has paid for
	 * it so far: no reclaim, no OOM kill here.  memory_failure() takes
	 * the poisoned page off its LRU and uncharges it.
	 */
	mem_cgroup_replace_folio(folio, copy);
	/* As migration does: on an LRU first, for the mlock of VM_LOCKED. */
	folio_add_lru(copy);

	rwc.arg = copy;
	rmap_walk_ksm(folio, &rwc);
	if (!folio_mapped(copy)) {
		folio_set_stable(copy, NULL);
		folio_unlock(copy);
		folio_put(copy);
		return false;
	}
	/* As folio_migrate_ksm(): ->mapping first, then the pfn. */
	smp_wmb();
	WRITE_ONCE(stable->pfn, folio_pfn(copy));
	folio_unlock(copy);
	folio_put(copy);
	/*
	 * The node's maps are the copy's, under its lock now.  A mapping
	 * that this walk did not reach, memory_failure()'s would not either.
	 */
	folio_set_stable(folio, NULL);
	return true;
}

/**
 * ksm_memory_failure - spare the sharers of a poisoned KSM page
 * @folio: the poisoned page, referenced by the caller, not locked
 * @flags: memory_failure()'s MF_* flags
 *
 * Called by memory_failure() before it deals with the mappings of a
 * poisoned page: if @folio is a KSM page with a healthy duplicate, its
 * mappings move to a copy of that, and memory_failure() finds the page
 * unmapped.  A KSM page that keeps its mappings leaves the stable tree,
 * so that nothing merges into it again.  With MF_MUST_KILL (the task that
 * met the error cannot go on) the mappings stay, for the kill.
 *
 * The page's kind is tested under its lock: ksmd makes KSM pages under
 * it, and refuses poisoned pages (ksm_fold()), so a page turned into one
 * after it was poisoned is seen here, and one that is not a KSM page
 * now never becomes one.  Only a KSM page costs ksm_lock.
 */
void ksm_memory_failure(struct folio *folio, int flags)
{
	struct ksm_stable *stable, *s;
	bool ksm;

	if (folio_test_large(folio) || !folio_test_anon(folio))
		return;
	folio_lock(folio);
	ksm = folio_test_ksm(folio);
	folio_unlock(folio);
	if (!ksm)
		return;
	ksm_mutex_lock();
	folio_lock(folio);
	stable = folio_stable(folio);
	if (!stable || READ_ONCE(stable->pfn) != folio_pfn(folio))
		goto out;
	for (s = stable->dup_next; s && s != stable && !(flags & MF_MUST_KILL);
	     s = s->dup_next) {
		struct folio *dup = stable_folio_get(s, false);
		bool healed = false;

		if (!dup)
			continue;
		if (!PageHWPoison(folio_page(dup, 0)))
			healed = stable_heal(stable, folio, dup);
		folio_put(dup);
		if (healed)
			goto out;
	}
	stable_retire(stable, folio);
out:
	folio_unlock(folio);
	mutex_unlock(&ksm_lock);
}
#endif /* CONFIG_MEMORY_FAILURE */

/**
 * folio_migrate_ksm - the stable node follows its page to a new frame
 * @newfolio: the destination, which has the KSM mapping already
 * @folio: the source; both are locked
 */
void folio_migrate_ksm(struct folio *newfolio, struct folio *folio)
{
	struct ksm_stable *stable;

	VM_WARN_ON_ONCE_FOLIO(!folio_test_locked(folio), folio);
	VM_WARN_ON_ONCE_FOLIO(!folio_test_locked(newfolio), newfolio);

	stable = folio_stable(folio);
	if (!stable)
		return;
	/* The new page's ->mapping, set by migration, is seen first ... */
	smp_wmb();
	WRITE_ONCE(stable->pfn, folio_pfn(newfolio));
	/* ... and the new ->pfn before the old page lets go. */
	smp_wmb();	/* both pair with smp_rmb() in stable_folio_get() */
	folio_set_stable(folio, NULL);
}

/**
 * ksm_process_profit - memory KSM saves @mm, less what it costs
 * @mm: the mm
 *
 * What it costs: a record for each tracked page, and a map for each
 * mapping of a KSM page (its share of a chunk's header and room, 4 to 8
 * bytes, and the full items of this pass's unstable tree, for a pass,
 * are left out).
 *
 * Return: bytes; negative when the records cost more than the merges save.
 */
long ksm_process_profit(struct mm_struct *mm)
{
	return (long)(mm->ksm_merging_pages + mm_ksm_zero_pages(mm)) *
	       PAGE_SIZE - (long)(mm->ksm_rmap_items * KSM_REC_BYTES +
				  mm->ksm_merging_pages *
				  sizeof(struct ksm_map));
}

/* ---------------------------------------------------------------------- */
/* sysfs: /sys/kernel/mm/ksm/                                             */
/* ---------------------------------------------------------------------- */

#ifdef CONFIG_SYSFS

/*
 * A malformed or out-of-range number is EINVAL for the knobs parsed here,
 * as it has always been for them, whatever kstrto*() calls it.  Two knobs
 * pass kstrto*()'s own error on, as upstream does: merge_across_nodes and
 * max_page_sharing (ERANGE for a number too large for their type).
 */
static int ksm_parse_uint(const char *buf, unsigned int *value)
{
	return kstrtouint(buf, 10, value) ? -EINVAL : 0;
}

/* A show function that prints one value. */
#define KSM_SHOW(_name, _fmt, _expr)					\
static ssize_t _name##_show(struct kobject *kobj,			\
			    struct kobj_attribute *attr, char *buf)	\
{									\
	return sysfs_emit(buf, _fmt "\n", (_expr));			\
}

/* A store function for a yes/no knob (kstrtobool: 0/1, y/n, on/off). */
#define KSM_BOOL_STORE(_name, _var)					\
static ssize_t _name##_store(struct kobject *kobj,			\
			     struct kobj_attribute *attr,		\
			     const char *buf, size_t count)		\
{									\
	bool value;							\
									\
	if (kstrtobool(buf, &value))					\
		return -EINVAL;						\
	WRITE_ONCE(_var, value);					\
	return count;							\
}

/* A knob that takes any unsigned int, and does nothing more at once. */
#define KSM_UINT_STORE(_name, _var)					\
static ssize_t _name##_store(struct kobject *kobj,			\
			     struct kobj_attribute *attr,		\
			     const char *buf, size_t count)		\
{									\
	unsigned int value;						\
	int err = ksm_parse_uint(buf, &value);				\
									\
	if (err)							\
		return err;						\
	WRITE_ONCE(_var, value);					\
	return count;							\
}

/* A knob that is one of @n words: all of them, the one in force in []. */
static ssize_t ksm_show_choice(char *buf, const char * const *names, int n,
			       int cur)
{
	int i, len = 0;

	for (i = 0; i < n; i++)
		len += sysfs_emit_at(buf, len, i == cur ? "%s[%s]" : "%s%s",
				     i ? " " : "", names[i]);
	len += sysfs_emit_at(buf, len, "\n");
	return len;
}

#define KSM_ATTR_RO(_name) \
	static struct kobj_attribute _name##_attr = __ATTR_RO(_name)
#define KSM_ATTR(_name) \
	static struct kobj_attribute _name##_attr = __ATTR_RW(_name)

KSM_SHOW(sleep_millisecs, "%u", ksm_sleep_millisecs)

static ssize_t sleep_millisecs_store(struct kobject *kobj,
				     struct kobj_attribute *attr,
				     const char *buf, size_t count)
{
	unsigned int msecs;
	int err;

	err = ksm_parse_uint(buf, &msecs);
	if (err)
		return err;
	WRITE_ONCE(ksm_sleep_millisecs, msecs);
	wake_up_interruptible(&ksmd_sleep_wait);
	return count;
}
KSM_ATTR(sleep_millisecs);

KSM_SHOW(pages_to_scan, "%u", ksm_pages_to_scan)

static ssize_t pages_to_scan_store(struct kobject *kobj,
				   struct kobj_attribute *attr,
				   const char *buf, size_t count)
{
	unsigned int nr;
	int err;

	err = ksm_parse_uint(buf, &nr);
	if (err)
		return err;
	/*
	 * The advisor owns pages_to_scan while it is on; under ksm_lock, so
	 * that advisor_mode cannot change between the check and the write.
	 */
	ksm_mutex_lock();
	if (ksm_advisor == KSM_ADVISOR_NONE)
		WRITE_ONCE(ksm_pages_to_scan, nr);
	else
		err = -EINVAL;
	mutex_unlock(&ksm_lock);
	if (err)
		return err;
	wake_up_interruptible(&ksmd_wait);
	return count;
}
KSM_ATTR(pages_to_scan);

KSM_SHOW(run, "%u", ksm_run)

/*
 * run=2: every KSM page is unmerged and every item and node dropped.
 * Unmerging may take long and needs memory, and OOM may pick the writer.
 * Pages still swapped out keep their nodes: not an error.
 */
static int ksm_unmerge_everything(void)
{
	int err;

	set_current_oom_origin();
	err = ksm_unmerge_all();
	if (!err)
		err = ksm_sweep_stable_nodes();
	clear_current_oom_origin();
	/*
	 * The cursor is parked between passes whatever happened: the end of
	 * the pass that run=2 interrupted is not to come.
	 */
	ksm_tidy_restart();
	ksm_tidy.pending = false;
	ksm_free_spare_chunks();
	if (err == -EBUSY)
		return 0;
	/* Nothing is left: full_scans counts from 0 again, as upstream's. */
	if (!err)
		ksm_full_scans = 0;
	return err;
}

static ssize_t run_store(struct kobject *kobj, struct kobj_attribute *attr,
			 const char *buf, size_t count)
{
	unsigned int run;
	int err;

	err = ksm_parse_uint(buf, &run);
	if (err)
		return err;
	if (run > KSM_RUN_UNMERGE)
		return -EINVAL;

	ksm_lock_online();
	if (ksm_run != run) {
		ksm_run = run;
		if (run == KSM_RUN_UNMERGE)
			err = ksm_unmerge_everything();
		/* A failed unmerge leaves ksmd stopped, half done. */
		if (err)
			ksm_run = KSM_RUN_STOP;
	}
	mutex_unlock(&ksm_lock);
	if (err)
		return err;
	if (run & KSM_RUN_MERGE)
		wake_up_interruptible(&ksmd_wait);
	return count;
}
KSM_ATTR(run);

KSM_SHOW(use_zero_pages, "%u", ksm_use_zero_pages)

KSM_BOOL_STORE(use_zero_pages, ksm_use_zero_pages)
KSM_ATTR(use_zero_pages);

/*
 * Do KSM pages or stable nodes exist?  The knobs that change what a node
 * means (merge_across_nodes, max_page_sharing, merge_domain) refuse to
 * change then.  Drops the nodes nothing needs first.  Under ksm_lock.
 */
static bool ksm_has_ksm_pages(void)
{
	return ksm_pages_shared || ksm_sweep_stable_nodes() ||
	       ksm_stable_nodes;
}

/**
 * struct ksm_node_knob - a knob that says what a stable node means
 * @is: whether the knob holds @value already (read without the lock too)
 * @set: give it @value, under ksm_lock, with no KSM page left: 0 or -errno
 */
struct ksm_node_knob {
	bool (*is)(long value);
	int (*set)(long value);
};

/*
 * The store of merge_across_nodes, max_page_sharing and merge_domain,
 * after parsing: like upstream's, a change is refused (-EBUSY) while any
 * KSM page exists, and writing the value the knob holds always succeeds,
 * also when another writer got there first.
 */
static ssize_t ksm_node_knob_store(const struct ksm_node_knob *knob,
				   long value, size_t count)
{
	int err = 0;

	if (knob->is(value))
		return count;
	ksm_lock_online();
	ksm_reap_exited(true);
	if (!knob->is(value))
		err = ksm_has_ksm_pages() ? -EBUSY : knob->set(value);
	mutex_unlock(&ksm_lock);
	return err ?: count;
}

/*
 * Empty the unstable trees, before their key changes (merge_across_nodes,
 * merge_domain): no item may be in a tree about to be dropped.  Their
 * items are folded back into records, and the cursor goes back between
 * passes, so that the pass in progress starts over.  Called with ksm_lock
 * held.
 */
static void ksm_forget_unstable(void)
{
	struct ksm_mm *kmm;

	ksm_reap_exited(true);
	ksm_drain_unstable(true);
	spin_lock(&ksm_mm_lock);
	ksm_cursor.kmm = &ksm_mm_head;
	ksm_cursor.address = 0;
	ksm_cursor.checked = 0;
	list_for_each_entry(kmm, &ksm_mm_head.slot.mm_node, slot.mm_node)
		kmm->resume = 0;
	spin_unlock(&ksm_mm_lock);
	WRITE_ONCE(ksm_cursor.pass, ksm_cursor.pass + 1);
	ksm_reset_unstable_trees();
}

#ifdef CONFIG_NUMA
KSM_SHOW(merge_across_nodes, "%u", ksm_merge_across_nodes)

/*
 * Per-node trees come in nr_node_ids pairs, allocated on first use and
 * kept: switching back and forth must not fail for want of memory twice.
 */
static int ksm_alloc_node_trees(void)
{
	static struct rb_root *trees;
	int nid;

	if (trees)
		return 0;
	trees = kcalloc(nr_node_ids * 2, sizeof(*trees), GFP_KERNEL);
	if (!trees)
		return -ENOMEM;
	for (nid = 0; nid < nr_node_ids * 2; nid++)
		trees[nid] = RB_ROOT;
	ksm_node_stable_trees = trees;
	ksm_node_unstable_trees = trees + nr_node_ids;
	return 0;
}

/*
 * Switch between one pair of trees and a pair per node; the stable trees
 * are empty.  The unstable trees start afresh.
 */
static void ksm_switch_trees(bool across)
{
	ksm_forget_unstable();
	/* A walk under way starts again, on the new trees. */
	ksm_tidy_restart();
	ksm_merge_across_nodes = across;
	if (across) {
		ksm_stable_trees = &ksm_one_stable_tree;
		ksm_unstable_trees = &ksm_one_unstable_tree;
	} else {
		ksm_stable_trees = ksm_node_stable_trees;
		ksm_unstable_trees = ksm_node_unstable_trees;
	}
}

static bool merge_across_nodes_is(long value)
{
	return READ_ONCE(ksm_merge_across_nodes) == value;
}

static int merge_across_nodes_set(long value)
{
	int err = value ? 0 : ksm_alloc_node_trees();

	if (!err)
		ksm_switch_trees(value);
	return err;
}

static ssize_t merge_across_nodes_store(struct kobject *kobj,
					struct kobj_attribute *attr,
					const char *buf, size_t count)
{
	static const struct ksm_node_knob knob = {
		.is = merge_across_nodes_is,
		.set = merge_across_nodes_set,
	};
	unsigned long value;
	int err;

	err = kstrtoul(buf, 10, &value);
	if (err)
		return err;
	if (value > 1)
		return -EINVAL;
	return ksm_node_knob_store(&knob, value, count);
}
KSM_ATTR(merge_across_nodes);
#endif /* CONFIG_NUMA */

static const char * const ksm_domain_names[] = {
	[KSM_DOMAIN_GLOBAL] = "global",
	[KSM_DOMAIN_PROCESS] = "process",
	[KSM_DOMAIN_CGROUP] = "cgroup",
};

static ssize_t merge_domain_show(struct kobject *kobj,
				 struct kobj_attribute *attr, char *buf)
{
	return ksm_show_choice(buf, ksm_domain_names,
			       ARRAY_SIZE(ksm_domain_names), ksm_domain_mode);
}

/*
 * As merge_across_nodes: the mode changes only while there is no KSM page
 * (EBUSY), since the domains of the old mode mean nothing in the new one;
 * the unstable trees start afresh.  "cgroup" needs the memory controller
 * (EOPNOTSUPP without it).
 */
static bool merge_domain_is(long mode)
{
	return READ_ONCE(ksm_domain_mode) == mode;
}

static int merge_domain_set(long mode)
{
	ksm_forget_unstable();
	WRITE_ONCE(ksm_domain_mode, mode);
	return 0;
}

static ssize_t merge_domain_store(struct kobject *kobj,
				  struct kobj_attribute *attr,
				  const char *buf, size_t count)
{
	static const struct ksm_node_knob knob = {
		.is = merge_domain_is,
		.set = merge_domain_set,
	};
	int mode = sysfs_match_string(ksm_domain_names, buf);

	if (mode < 0)
		return -EINVAL;
	if (mode == KSM_DOMAIN_CGROUP && mem_cgroup_disabled())
		return -EOPNOTSUPP;
	return ksm_node_knob_store(&knob, mode, count);
}
KSM_ATTR(merge_domain);

KSM_SHOW(merge_zero_across_domains, "%u", ksm_zero_across_domains)
KSM_BOOL_STORE(merge_zero_across_domains, ksm_zero_across_domains)
KSM_ATTR(merge_zero_across_domains);

KSM_SHOW(max_page_sharing, "%d", ksm_max_page_sharing)

static bool max_page_sharing_is(long value)
{
	return READ_ONCE(ksm_max_page_sharing) == value;
}

static int max_page_sharing_set(long value)
{
	WRITE_ONCE(ksm_max_page_sharing, value);
	return 0;
}

static ssize_t max_page_sharing_store(struct kobject *kobj,
				      struct kobj_attribute *attr,
				      const char *buf, size_t count)
{
	static const struct ksm_node_knob knob = {
		.is = max_page_sharing_is,
		.set = max_page_sharing_set,
	};
	int value, err;

	err = kstrtoint(buf, 10, &value);
	if (err)
		return err;
	/* A KSM page with one mapping saves nothing. */
	if (value < 2)
		return -EINVAL;
	return ksm_node_knob_store(&knob, value, count);
}
KSM_ATTR(max_page_sharing);

KSM_SHOW(stable_node_chains_prune_millisecs, "%u", ksm_prune_millisecs)

KSM_UINT_STORE(stable_node_chains_prune_millisecs, ksm_prune_millisecs)
KSM_ATTR(stable_node_chains_prune_millisecs);

KSM_SHOW(smart_scan, "%u", ksm_smart_scan)

KSM_BOOL_STORE(smart_scan, ksm_smart_scan)
KSM_ATTR(smart_scan);

KSM_SHOW(max_kernel_pages, "%lu", ksm_max_kernel_pages)

static ssize_t max_kernel_pages_store(struct kobject *kobj,
				      struct kobj_attribute *attr,
				      const char *buf, size_t count)
{
	unsigned long value;

	if (kstrtoul(buf, 10, &value))
		return -EINVAL;
	WRITE_ONCE(ksm_max_kernel_pages, value);
	return count;
}
KSM_ATTR(max_kernel_pages);

static const char * const ksm_advisor_names[] = {
	[KSM_ADVISOR_NONE] = "none",
	[KSM_ADVISOR_SCAN_TIME] = "scan-time",
};

static ssize_t advisor_mode_show(struct kobject *kobj,
				 struct kobj_attribute *attr, char *buf)
{
	return ksm_show_choice(buf, ksm_advisor_names,
			       ARRAY_SIZE(ksm_advisor_names), ksm_advisor);
}

static ssize_t advisor_mode_store(struct kobject *kobj,
				  struct kobj_attribute *attr,
				  const char *buf, size_t count)
{
	int mode = sysfs_match_string(ksm_advisor_names, buf);

	if (mode < 0)
		return -EINVAL;

	ksm_mutex_lock();
	if (mode != ksm_advisor) {
		/* Either way pages_to_scan starts afresh, as upstream. */
		WRITE_ONCE(ksm_pages_to_scan, mode == KSM_ADVISOR_SCAN_TIME ?
			   ksm_advisor_min_pages : KSM_PAGES_TO_SCAN_DEFAULT);
		ksm_advisor = mode;
	}
	mutex_unlock(&ksm_lock);
	wake_up_interruptible(&ksmd_wait);
	return count;
}
KSM_ATTR(advisor_mode);

KSM_SHOW(advisor_max_cpu, "%u", ksm_advisor_max_cpu)

static ssize_t advisor_max_cpu_store(struct kobject *kobj,
				     struct kobj_attribute *attr,
				     const char *buf, size_t count)
{
	unsigned int pct;

	if (ksm_parse_uint(buf, &pct) || !pct || pct > 100)
		return -EINVAL;
	WRITE_ONCE(ksm_advisor_max_cpu, pct);
	return count;
}
KSM_ATTR(advisor_max_cpu);

/* Both bounds of the advisor: min <= max, and within pages_to_scan's type. */
static ssize_t ksm_advisor_bound_store(const char *buf, size_t count,
				       bool max)
{
	unsigned int value;

	/*
	 * A bound may cross the other one for a while (set max=100, then
	 * min=50): the order of two writes must not matter, so it is taken
	 * as it is, and ksm_advise() lets the minimum win meanwhile.
	 */
	if (ksm_parse_uint(buf, &value) || !value)
		return -EINVAL;
	ksm_mutex_lock();
	if (max)
		ksm_advisor_max_pages = value;
	else
		ksm_advisor_min_pages = value;
	mutex_unlock(&ksm_lock);
	return count;
}

KSM_SHOW(advisor_min_pages_to_scan, "%lu", ksm_advisor_min_pages)

static ssize_t advisor_min_pages_to_scan_store(struct kobject *kobj,
					       struct kobj_attribute *attr,
					       const char *buf, size_t count)
{
	return ksm_advisor_bound_store(buf, count, false);
}
KSM_ATTR(advisor_min_pages_to_scan);

KSM_SHOW(advisor_max_pages_to_scan, "%lu", ksm_advisor_max_pages)

static ssize_t advisor_max_pages_to_scan_store(struct kobject *kobj,
					       struct kobj_attribute *attr,
					       const char *buf, size_t count)
{
	return ksm_advisor_bound_store(buf, count, true);
}
KSM_ATTR(advisor_max_pages_to_scan);

KSM_SHOW(advisor_target_scan_time, "%u", ksm_advisor_target_secs)

static ssize_t advisor_target_scan_time_store(struct kobject *kobj,
					      struct kobj_attribute *attr,
					      const char *buf, size_t count)
{
	unsigned int secs;

	if (ksm_parse_uint(buf, &secs) || !secs)
		return -EINVAL;
	WRITE_ONCE(ksm_advisor_target_secs, secs);
	return count;
}
KSM_ATTR(advisor_target_scan_time);

KSM_SHOW(pages_shared, "%lu", READ_ONCE(ksm_pages_shared))
KSM_ATTR_RO(pages_shared);
KSM_SHOW(pages_sharing, "%lu", READ_ONCE(ksm_pages_sharing))
KSM_ATTR_RO(pages_sharing);
KSM_SHOW(pages_unshared, "%lu", READ_ONCE(ksm_pages_unshared))
KSM_ATTR_RO(pages_unshared);
KSM_SHOW(pages_scanned, "%lu", READ_ONCE(ksm_pages_scanned))
KSM_ATTR_RO(pages_scanned);
KSM_SHOW(pages_skipped, "%lu", READ_ONCE(ksm_pages_skipped))
KSM_ATTR_RO(pages_skipped);
KSM_SHOW(full_scans, "%lu", READ_ONCE(ksm_full_scans))
KSM_ATTR_RO(full_scans);
KSM_SHOW(ksm_zero_pages, "%ld", atomic_long_read(&ksm_zero_pages))
KSM_ATTR_RO(ksm_zero_pages);
KSM_SHOW(stable_node_chains, "%lu", READ_ONCE(ksm_dup_groups))
KSM_ATTR_RO(stable_node_chains);
KSM_SHOW(stable_node_dups, "%lu", READ_ONCE(ksm_dup_nodes))
KSM_ATTR_RO(stable_node_dups);
KSM_SHOW(kernel_pages_allocated, "%lu", READ_ONCE(ksm_stable_nodes))
KSM_ATTR_RO(kernel_pages_allocated);

static long ksm_pages_volatile_now(void)
{
	long n = (long)READ_ONCE(ksm_items) - READ_ONCE(ksm_pages_shared) -
		 READ_ONCE(ksm_pages_sharing) - READ_ONCE(ksm_pages_unshared);

	/* The counters are read without the lock: never show a negative. */
	return max(n, 0L);
}

KSM_SHOW(pages_volatile, "%ld", ksm_pages_volatile_now())
KSM_ATTR_RO(pages_volatile);

/* What KSM saves, less what its records, items and maps cost. */
static long ksm_general_profit_now(void)
{
	return (long)(READ_ONCE(ksm_pages_sharing) +
		      atomic_long_read(&ksm_zero_pages)) * PAGE_SIZE -
	       (long)(READ_ONCE(ksm_items) * KSM_REC_BYTES +
		      READ_ONCE(ksm_full_items) * sizeof(struct ksm_item) +
		      READ_ONCE(ksm_chunk_bytes));
}

KSM_SHOW(general_profit, "%ld", ksm_general_profit_now())
KSM_ATTR_RO(general_profit);

static struct attribute *ksm_attrs[] = {
	/* controls */
	&run_attr.attr,
	&pages_to_scan_attr.attr,
	&sleep_millisecs_attr.attr,
	&use_zero_pages_attr.attr,
#ifdef CONFIG_NUMA
	&merge_across_nodes_attr.attr,
#endif
	&merge_domain_attr.attr,
	&merge_zero_across_domains_attr.attr,
	&max_page_sharing_attr.attr,
	&stable_node_chains_prune_millisecs_attr.attr,
	&smart_scan_attr.attr,
	&max_kernel_pages_attr.attr,
	&advisor_mode_attr.attr,
	&advisor_max_cpu_attr.attr,
	&advisor_min_pages_to_scan_attr.attr,
	&advisor_max_pages_to_scan_attr.attr,
	&advisor_target_scan_time_attr.attr,
	/* counters: the scan, then what it saved, then what it costs */
	&full_scans_attr.attr,
	&pages_scanned_attr.attr,
	&pages_skipped_attr.attr,
	&pages_shared_attr.attr,
	&pages_sharing_attr.attr,
	&ksm_zero_pages_attr.attr,
	&pages_unshared_attr.attr,
	&pages_volatile_attr.attr,
	&stable_node_chains_attr.attr,
	&stable_node_dups_attr.attr,
	&kernel_pages_allocated_attr.attr,
	&general_profit_attr.attr,
	NULL,
};

/* /sys/kernel/mm/ksm/ */
static const struct attribute_group ksm_attr_group = {
	.name = "ksm",
	.attrs = ksm_attrs,
};
#endif /* CONFIG_SYSFS */

#ifdef CONFIG_MEMORY_HOTREMOVE
/*
 * Offlining migrated every KSM page of the block elsewhere, moving its
 * node's ->pfn along; a node still pointing into the block is stale.
 */
static void ksm_drop_nodes_in(unsigned long start_pfn, unsigned long end_pfn)
{
	int nid;

	for (nid = 0; nid < (ksm_merge_across_nodes ? 1 : nr_node_ids); nid++) {
		struct rb_node *node = rb_first(&ksm_stable_trees[nid]);

		while (node) {
			struct ksm_stable *stable;

			cond_resched();
			stable = rb_entry(node, struct ksm_stable, rb);
			node = rb_next(node);
			if (stable->pfn >= start_pfn && stable->pfn < end_pfn)
				stable_drop_stale(stable);
		}
	}
}

static int ksm_memory_callback(struct notifier_block *nb,
			       unsigned long action, void *arg)
{
	struct memory_notify *mn = arg;

	switch (action) {
	case MEM_GOING_OFFLINE:
		ksm_mutex_lock();
		ksm_offlining = true;
		mutex_unlock(&ksm_lock);
		break;
	case MEM_OFFLINE:
	case MEM_CANCEL_OFFLINE:
		ksm_mutex_lock();
		if (action == MEM_OFFLINE)
			ksm_drop_nodes_in(mn->start_pfn,
					  mn->start_pfn + mn->nr_pages);
		WRITE_ONCE(ksm_offlining, false);
		mutex_unlock(&ksm_lock);
		wake_up_all(&ksm_online_wait);
		break;
	}
	return NOTIFY_OK;
}
#endif

/* ---------------------------------------------------------------------- */
/* Start-up                                                               */
/* ---------------------------------------------------------------------- */

#ifdef CONFIG_SYSFS
static int __init ksm_sysfs_init(void)
{
	int err = sysfs_create_group(mm_kobj, &ksm_attr_group);

	if (err)
		pr_err("/sys/kernel/mm/ksm not created (%d)\n", err);
	return err;
}

static void __init ksm_sysfs_exit(void)
{
	sysfs_remove_group(mm_kobj, &ksm_attr_group);
}
#else
/* Without sysfs nobody could ever write run: ksmd merges from the start. */
static int __init ksm_sysfs_init(void)
{
	ksm_run = KSM_RUN_MERGE;
	return 0;
}

static void __init ksm_sysfs_exit(void)
{
}
#endif

static int __init ksm_init(void)
{
	int err = -ENOMEM;
	unsigned int c;

	/* Their sizes are the memory cost of KSM: keep them there. */
	BUILD_BUG_ON(IS_ENABLED(CONFIG_64BIT) && sizeof(struct ksm_item) > 56);
	/* A record's fields fit a value entry (see "Records"). */
	BUILD_BUG_ON(REC_SUM_SHIFT + REC_SUM_BITS > BITS_PER_LONG - 1);
	BUILD_BUG_ON(BIT(REC_SKIP_SHIFT - REC_AGE_SHIFT) <= ITEM_AGE_MAX);
	BUILD_BUG_ON(REC_SUM_SHIFT - REC_SKIP_SHIFT < 4);	/* ksm_item.skip */
	BUILD_BUG_ON(REC_SUM_BITS < KSM_NEW_SUM_BITS);
	/* A dense mm's record costs KSM_REC_BYTES: 9 on 64-bit. */
	BUILD_BUG_ON(IS_ENABLED(CONFIG_64BIT) && KSM_REC_BYTES > 16);
	BUILD_BUG_ON(IS_ENABLED(CONFIG_64BIT) &&
		     sizeof(struct ksm_stable) > 80);
	/* A map and its chunks (see "Maps"): 64, 112, 208, 400 bytes. */
	BUILD_BUG_ON(IS_ENABLED(CONFIG_64BIT) && sizeof(struct ksm_map) > 24);
	BUILD_BUG_ON(IS_ENABLED(CONFIG_64BIT) &&
		     struct_size_t(struct ksm_chunk, map, 2) > 64);
	BUILD_BUG_ON(IS_ENABLED(CONFIG_64BIT) &&
		     struct_size_t(struct ksm_chunk, map, 16) > 400);
	/* A map's index in its chunk, and the ITEM_* bits, below the page */
	BUILD_BUG_ON(MAP_SLOT_SHIFT + 4 > PAGE_SHIFT);
	BUILD_BUG_ON(MAP_SLOT_SHIFT <= ITEM_RELINK_BIT);
	BUILD_BUG_ON(16 > 1 + (MAP_SLOT_MASK >> MAP_SLOT_SHIFT));
	/* A slot's pointer to a map is no xarray internal entry. */
	BUILD_BUG_ON(__alignof__(struct ksm_map) < 4);
	/* ksm_item.nid, ksm_stable.nid */
	BUILD_BUG_ON(MAX_NUMNODES > (1 << 15));

	ksm_simd_init();
	ksm_zero_checksum = page_checksum(ZERO_PAGE(0));
	ksm_new_sums_reset(0);
	ksm_new_sums_reset(1);

	/* Unmerged: its slabs empty when a pass ends. */
	ksm_item_cache = KMEM_CACHE(ksm_item, SLAB_NO_MERGE);
	ksm_stable_cache = KMEM_CACHE(ksm_stable, 0);
	ksm_mm_cache = KMEM_CACHE(ksm_mm, 0);
	if (!ksm_item_cache || !ksm_stable_cache || !ksm_mm_cache)
		goto out_caches;
	for (c = 0; c < KSM_CHUNK_CLASSES; c++) {
		static const char * const names[KSM_CHUNK_CLASSES] = {
			"ksm_chunk2", "ksm_chunk4", "ksm_chunk8", "ksm_chunk16"
		};

		size_t size = struct_size_t(struct ksm_chunk, map,
					    chunk_cap[c]);

		ksm_chunk_cache[c] = kmem_cache_create(names[c], size, 0,
						       SLAB_NO_MERGE, NULL);
		if (!ksm_chunk_cache[c])
			goto out_caches;
	}

	err = ksm_sysfs_init();
	if (err)
		goto out_caches;
	ksmd = kthread_run(ksmd_fn, NULL, "ksmd");
	if (IS_ERR(ksmd)) {
		err = PTR_ERR(ksmd);
		pr_err("ksmd did not start (%d)\n", err);
		ksm_sysfs_exit();
		goto out_caches;
	}
#ifdef CONFIG_MEMORY_HOTREMOVE
	/* After slab's notifier, which must still hold our caches. */
	hotplug_memory_notifier(ksm_memory_callback, KSM_CALLBACK_PRI);
#endif
	return 0;

out_caches:
	for (c = 0; c < KSM_CHUNK_CLASSES; c++)
		kmem_cache_destroy(ksm_chunk_cache[c]);
	kmem_cache_destroy(ksm_mm_cache);
	kmem_cache_destroy(ksm_stable_cache);
	kmem_cache_destroy(ksm_item_cache);
	return err;
}
subsys_initcall(ksm_init);

#ifdef CONFIG_KSM_KUNIT_TEST
#include "ksm-kunit.h"
#endif
