/**
 * thp-heavy: a heap of 2 MiB folios (a JVM or a database with MADV_HUGEPAGE) that forks, after
 * which parent and child each write a few pages of many THPs. A write to a PMD-mapped THP that
 * is shared faults in do_huge_pmd_wp_page(): since 5.8 (3917c80280c9) it splits the PMD and
 * copies only the 4 KiB page written (wp_page_copy() on the PTE), never the whole 2 MiB. After
 * the child exits, the parent's partially PTE-mapped THPs are collapsed back (MADV_COLLAPSE,
 * 6.1: collapse_huge_page()), and with mTHP sizes enabled (6.8) the small-page heap faults in
 * 16–64 KiB folios.
 */
import { ProgramBuilder } from "./program.js";
import { Rng, below } from "./random.js";
import type { Workload } from "./workload.js";

const HPAGE = 512;

export const thpHeavy: Workload = {
  name: "thp-heavy",
  title: "a heap of 2 MiB THPs, partial writes after fork, mTHP, collapse",
  standsFor: "a JVM / database heap with MADV_HUGEPAGE that forks (do_huge_pmd_wp_page(), MADV_COLLAPSE)",
  params: {
    thps: { description: "2 MiB THPs in the heap", small: 2, default: 64, large: 256, min: 1 },
    writesPerThp: { description: "4 KiB pages written in each THP by each side after fork", small: 3, default: 8, large: 8, min: 0, max: 512 },
    mthpPages: { description: "pages of a second heap faulted with mTHP (64 KiB folios)", small: 32, default: 8192, large: 32768, min: 0 },
    collapse: { description: "1: MADV_COLLAPSE the heap after the child exits", small: 1, default: 1, large: 1, min: 0, max: 1 },
  },
  kernelOptions() {
    return { thp: { enabled: "madvise", sizes: { "64K": "always" } } };
  },
  generate(params, seed) {
    const { thps, writesPerThp, mthpPages, collapse } = params as Record<string, number>;
    const rng = new Rng(seed);
    const b = new ProgramBuilder("thp-heavy", seed, params);
    const pages = thps! * HPAGE;
    const heap = b.mmap(0, pages, { huge: true });
    b.add({ op: "write", proc: 0, region: heap, pages: { first: 0, count: pages }, value: 1 });
    // no MADV_NOHUGEPAGE here: VM_NOHUGEPAGE turns off every THP order of the VMA, mTHP's too
    // (__thp_vma_allowable_orders()); under "madvise" the 2M order is off without MADV_HUGEPAGE
    const small = mthpPages! > 0 ? b.mmap(0, mthpPages!) : -1;
    if (small >= 0) b.add({ op: "write", proc: 0, region: small, pages: { first: 0, count: mthpPages! }, value: 2 });
    const child = b.fork(0);
    const partial = () => {
      const list: number[] = [];
      for (let t = 0; t < thps!; t++) for (let w = 0; w < writesPerThp!; w++) list.push(t * HPAGE + below(rng, HPAGE));
      return list;
    };
    if (writesPerThp! > 0) {
      b.add({ op: "write", proc: 0, region: heap, pages: { list: partial() }, value: 0x1000 });
      b.add({ op: "write", proc: child, region: heap, pages: { list: partial() }, value: 0x2000 });
    }
    if (small >= 0) b.add({ op: "write", proc: child, region: small, pages: { first: 0, count: mthpPages!, stride: 1 }, value: 0x3000 });
    b.add({ op: "exit", proc: child });
    if (collapse) b.add({ op: "madvise", proc: 0, region: heap, first: 0, count: pages, advice: "collapse" });
    b.add({ op: "read", proc: 0, region: heap, pages: { first: 0, count: pages, stride: 1 } });
    if (small >= 0) b.add({ op: "munmap", proc: 0, region: small });
    b.add({ op: "munmap", proc: 0, region: heap });
    return b.build();
  },
};
