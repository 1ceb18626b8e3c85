/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel Samepage Merging: what the rest of the kernel sees of it.
 *
 * KSM lets ksmd replace identical anonymous pages of unrelated processes
 * by one write-protected "KSM page"; a later write takes an ordinary
 * copy-on-write fault.  mm/ksm.c holds the engine; this header holds the
 * hooks mm, fork, exec, exit, madvise and prctl call into it.
 *
 * The hooks that run on every fork and exit are inline and only test an mm
 * flag; the work behind them is out of line, with a "__" prefix.
 */
#ifndef __LINUX_KSM_H
#define __LINUX_KSM_H

#include <linux/bitops.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/rmap.h>
#include <linux/sched.h>
#include <linux/sched/coredump.h>

#ifdef CONFIG_KSM

int ksm_madvise(struct vm_area_struct *vma, unsigned long start,
		unsigned long end, int advice, unsigned long *vm_flags);
void ksm_add_vma(struct vm_area_struct *vma);
int ksm_enable_merge_any(struct mm_struct *mm);
int ksm_disable_merge_any(struct mm_struct *mm);
int ksm_disable(struct mm_struct *mm);

int __ksm_enter(struct mm_struct *mm);
void __ksm_exit(struct mm_struct *mm);
void __ksm_fork(struct mm_struct *mm, struct mm_struct *oldmm);
void __ksm_fork_failed(struct mm_struct *mm, struct mm_struct *oldmm);

/*
 * With use_zero_pages, KSM maps the shared zero page in place of a page
 * full of zeroes.  It sets the PTE dirty so that such a mapping can be told
 * apart from a zero page that a read fault mapped, and be counted and
 * unmerged as KSM's own.
 */
static inline bool is_ksm_zero_pte(pte_t pte)
{
	return is_zero_pfn(pte_pfn(pte)) && pte_dirty(pte);
}

/* The KSM-placed zero pages, over all mms. */
extern atomic_long_t ksm_zero_pages;

static inline void ksm_map_zero_page(struct mm_struct *mm)
{
	atomic_long_inc(&mm->ksm_zero_pages);
	atomic_long_inc(&ksm_zero_pages);
}

/* Called as a zero-page PTE goes away: zap, COW, khugepaged collapse. */
static inline void ksm_might_unmap_zero_page(struct mm_struct *mm, pte_t pte)
{
	if (!is_ksm_zero_pte(pte))
		return;
	atomic_long_dec(&mm->ksm_zero_pages);
	atomic_long_dec(&ksm_zero_pages);
}

static inline long mm_ksm_zero_pages(struct mm_struct *mm)
{
	return atomic_long_read(&mm->ksm_zero_pages);
}

/* dup_mmap(): a child of a registered mm is registered too. */
static inline void ksm_fork(struct mm_struct *mm, struct mm_struct *oldmm)
{
	if (test_bit(MMF_VM_MERGEABLE, &oldmm->flags))
		__ksm_fork(mm, oldmm);
}

/*
 * dup_mmap() failed part way: the KSM zero pages of the areas the child
 * got, which its exit_mmap() will take off the counts, go on them.
 */
static inline void ksm_fork_failed(struct mm_struct *mm,
				   struct mm_struct *oldmm)
{
	if (test_bit(MMF_VM_MERGEABLE, &oldmm->flags))
		__ksm_fork_failed(mm, oldmm);
}

/* exec keeps prctl(PR_SET_MEMORY_MERGE): register the new mm at once. */
static inline int ksm_execve(struct mm_struct *mm)
{
	return test_bit(MMF_VM_MERGE_ANY, &mm->flags) ? __ksm_enter(mm) : 0;
}

static inline void ksm_exit(struct mm_struct *mm)
{
	if (test_bit(MMF_VM_MERGEABLE, &mm->flags))
		__ksm_exit(mm);
}

/*
 * A KSM page that went out to swap comes back as a plain anonymous page
 * of whichever process faults first; it cannot serve another anon_vma or
 * another offset, so do_swap_page() and unuse_pte() may need a copy.
 */
struct folio *ksm_might_need_to_copy(struct folio *folio,
				     struct vm_area_struct *vma,
				     unsigned long addr);

void rmap_walk_ksm(struct folio *folio, struct rmap_walk_control *rwc);
void folio_migrate_ksm(struct folio *newfolio, struct folio *folio);
void collect_procs_ksm(struct folio *folio, struct page *page,
		       struct list_head *to_kill, int force_early);
void ksm_memory_failure(struct folio *folio, int flags);
long ksm_process_profit(struct mm_struct *mm);

#else  /* !CONFIG_KSM */

static inline void ksm_add_vma(struct vm_area_struct *vma)
{
}

static inline int ksm_disable(struct mm_struct *mm)
{
	return 0;
}

static inline void ksm_fork(struct mm_struct *mm, struct mm_struct *oldmm)
{
}

static inline void ksm_fork_failed(struct mm_struct *mm,
				   struct mm_struct *oldmm)
{
}

static inline int ksm_execve(struct mm_struct *mm)
{
	return 0;
}

static inline void ksm_exit(struct mm_struct *mm)
{
}

static inline void ksm_might_unmap_zero_page(struct mm_struct *mm, pte_t pte)
{
}

static inline void collect_procs_ksm(struct folio *folio, struct page *page,
				     struct list_head *to_kill,
				     int force_early)
{
}

static inline void ksm_memory_failure(struct folio *folio, int flags)
{
}

#ifdef CONFIG_MMU
static inline int ksm_madvise(struct vm_area_struct *vma,
			      unsigned long start, unsigned long end,
			      int advice, unsigned long *vm_flags)
{
	return 0;
}

static inline struct folio *ksm_might_need_to_copy(struct folio *folio,
						   struct vm_area_struct *vma,
						   unsigned long addr)
{
	return folio;
}

static inline void rmap_walk_ksm(struct folio *folio,
				 struct rmap_walk_control *rwc)
{
}

static inline void folio_migrate_ksm(struct folio *newfolio,
				     struct folio *folio)
{
}
#endif /* CONFIG_MMU */
#endif /* !CONFIG_KSM */

#endif /* __LINUX_KSM_H */
