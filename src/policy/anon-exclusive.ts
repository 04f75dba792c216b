/**
 * `anon-exclusive`: Linux 5.19 and later (6c287605fd56 and its series), as in 6.12. An
 * exclusive anonymous page is marked PageAnonExclusive; a write fault reuses it at once.
 * A page that may be shared is reused only when, under the folio lock and after draining the
 * local LRU batch and dropping the swap cache, its reference count is 1
 * (wp_can_reuse_anon_folio()). GUP never pins a possibly shared anonymous page R/O: it unshares
 * first (FAULT_FLAG_UNSHARE); fork copies a possibly pinned exclusive page
 * (folio_try_dup_anon_rmap_pte() fails); swap-out, migration and KSM refuse pinned pages.
 */
import type {
  CowStrategy, KnobSpec, HugeWpFacts, WpFacts, WpHelpers, WpDecision, GupFacts, SwapinFacts, SwapinHelpers, SwapinDecision,
} from "./strategy.js";
import { resolveKnobs, kernelRange } from "./strategy.js";

export const ANON_EXCLUSIVE_KNOBS: readonly KnobSpec[] = [
  {
    name: "swapExclusive",
    commit: "1493a1913e34",
    kernel: "5.19",
    description: "mm/swap: remember PG_anon_exclusive via a swp pte bit — a page swapped in where it was exclusive comes back exclusive",
    default: true,
  },
  {
    name: "migrationReadExclusive",
    commit: "6c287605fd56",
    kernel: "5.19",
    description: "mm: remember exclusively mapped anonymous pages with PG_anon_exclusive — readable-exclusive migration entries bring a R/O exclusive page back exclusive (off: read/write entries only, as before 5.19, and the page comes back possibly shared)",
    default: true,
  },
  {
    name: "gupFastBarriers",
    commit: "088b8aa537c2",
    kernel: "6.1",
    description: "mm: fix PageAnonExclusive clearing racing with concurrent RCU GUP-fast — the A1–A4/B1–B5 barriers",
    default: true,
  },
  {
    name: "gupFastPteRecheck",
    commit: "2667f50e8b81",
    kernel: "—",
    description: "mm: introduce a general RCU get_user_pages_fast() — GUP-fast re-reads the PTE after grabbing the page and backs off if it changed (B4); off: left out on purpose (a broken protocol)",
    default: true,
    protocol: true,
  },
  {
    name: "unmapClearsPte",
    commit: "6c287605fd56",
    kernel: "—",
    description: "mm: remember exclusively mapped anonymous pages with PG_anon_exclusive — try_to_unmap_one() / try_to_migrate_one() clear the PTE before checking pins (A1); off: they check pins on a live PTE (a broken protocol)",
    default: true,
    protocol: true,
  },
  {
    name: "gupFastWriteProtectSeq",
    commit: "57efa1fe5957",
    kernel: "—",
    description: "mm/gup: prevent gup_fast from racing with COW during fork — a FOLL_PIN GUP-fast retries when fork's mm->write_protect_seq moved; off: ignored (a broken protocol)",
    default: true,
    protocol: true,
  },
  {
    name: "roLongtermPinAnyCow",
    commit: "84209e87c696",
    kernel: "6.2",
    description: "mm/gup: reliable R/O long-term pinning in COW mappings — R/O long-term pins unshare in any COW mapping, not only of anonymous pages",
    default: true,
  },
  {
    name: "mprotectWriteUpgrade",
    commit: "64fe24a3e05e",
    kernel: "6.2",
    description: "mm/mprotect: try avoiding write faults for exclusive anonymous pages when changing protection",
    default: true,
  },
  {
    name: "directIoPins",
    commit: "a7e689dd1c06",
    kernel: "6.5",
    description: "block: Convert bio_iov_iter_get_pages to use iov_iter_extract_pages — O_DIRECT pins (FOLL_PIN) instead of taking references (FOLL_GET), so fork copies a page under I/O",
    default: true,
  },
];

/**
 * do_huge_pmd_wp_page() since 5.18 (3bff7e3f1f16) — with PageAnonExclusive() first from 5.19:
 * reuse only when, under the folio lock and with the swap cache dropped, the THP's one
 * reference is this PMD's; otherwise the PMD is split and the PTE fault copies the subpage.
 */
export function thpReusePageCount(f: HugeWpFacts, h: WpHelpers): WpDecision {
  if (f.exclusive) return { reuse: true, rule: "do_huge_pmd_wp_page(): PageAnonExclusive() — reuse", setExclusive: true };
  // a THP never waits in a per-CPU LRU batch: no drain
  if (!h.trylock()) return { reuse: false, rule: "do_huge_pmd_wp_page(): folio_trylock() failed — split the PMD, fall back" };
  const limit = 1 + (f.swapcache ? 512 : 0);
  if (h.refcount() > limit) {
    const rc = h.refcount();
    h.unlock();
    return { reuse: false, rule: `do_huge_pmd_wp_page(): folio_ref_count() ${rc} > 1 + folio_test_swapcache() * 512 — split the PMD, fall back` };
  }
  if (f.swapcache) h.freeSwap();
  const rc = h.refcount();
  h.unlock();
  if (rc !== 1) return { reuse: false, rule: `do_huge_pmd_wp_page(): folio_ref_count() ${rc} != 1 — split the PMD, fall back` };
  return {
    reuse: true,
    rule: "do_huge_pmd_wp_page(): folio_ref_count() == 1 under the folio lock — reuse, SetPageAnonExclusive()",
    moveAnon: true,
    setExclusive: true,
  };
}

export function anonExclusiveStrategy(knobs?: Readonly<Record<string, boolean>>): CowStrategy {
  const k = resolveKnobs("anon-exclusive", ANON_EXCLUSIVE_KNOBS, knobs);
  return {
    id: "anon-exclusive",
    title: "PageAnonExclusive COW",
    kernels: kernelRange("5.19", null, ANON_EXCLUSIVE_KNOBS, k),
    commits: ["6c287605fd56", ...ANON_EXCLUSIVE_KNOBS.filter((s) => k[s.name] && !s.protocol).map((s) => s.commit)],
    knobs: k,
    lruBatchSize: 31,
    tracksAnonExclusive: true,
    gupBreaksCow: false,
    mprotectWriteUpgrade: k.mprotectWriteUpgrade!,
    gupFastBarriers: k.gupFastBarriers!,
    gupFastProtocol: { pteRecheck: k.gupFastPteRecheck!, unmapClear: k.unmapClearsPte!, writeProtectSeq: k.gupFastWriteProtectSeq! },
    directIoPins: k.directIoPins!,
    clearRefsSkipsPinned: true,
    freeSwapCacheAfterCow: true,

    wpReuse(f: WpFacts, h: WpHelpers): WpDecision {
      if (f.exclusive) return { reuse: true, rule: "do_wp_page(): PageAnonExclusive() — reuse", setExclusive: true };
      // wp_can_reuse_anon_folio()
      if (f.large) return { reuse: false, rule: "wp_can_reuse_anon_folio(): large folio — copy" };
      if (f.ksm || h.refcount() > 3) {
        return { reuse: false, rule: `wp_can_reuse_anon_folio(): ${f.ksm ? "KSM folio" : `folio_ref_count() ${h.refcount()} > 3`} — copy` };
      }
      if (!f.lru) h.lruAddDrain();
      const limit = 1 + (f.swapcache ? 1 : 0);
      if (h.refcount() > limit) {
        return { reuse: false, rule: `wp_can_reuse_anon_folio(): folio_ref_count() ${h.refcount()} > 1 + folio_test_swapcache() — copy` };
      }
      if (!h.trylock()) return { reuse: false, rule: "wp_can_reuse_anon_folio(): folio_trylock() failed — copy" };
      if (f.swapcache) h.freeSwap();
      const rc = h.refcount();
      h.unlock();
      if (rc !== 1) return { reuse: false, rule: `wp_can_reuse_anon_folio(): folio_ref_count() ${rc} != 1 — copy` };
      return {
        reuse: true,
        rule: "wp_can_reuse_anon_folio(): folio_ref_count() == 1 under the folio lock — reuse, SetPageAnonExclusive()",
        moveAnon: true,
        setExclusive: true,
      };
    },
    thpWpReuse: thpReusePageCount,
    forkDefers: "pinned-exclusive",
    forkPinned: () => ({ copy: true, rule: "folio_try_dup_anon_rmap_pte(): exclusive and folio_maybe_dma_pinned() — copy_present_page()" }),
    gupMustUnshare(f: GupFacts): boolean {
      if (f.write || !f.pin) return false;
      if (!f.anon) return f.longterm && k.roLongtermPinAnyCow! && f.cowMapping;
      return f.ksm || !f.exclusive;
    },
    swapin(f: SwapinFacts, h: SwapinHelpers): SwapinDecision {
      // do_swap_page(): the swap entry says whether the page was exclusive; otherwise only the
      // reference count can tell, after the swap cache is dropped when that may help
      const fromEntry = k.swapExclusive! && f.swpExclusive && !f.ksm;
      h.swapFree();
      if (f.write && !f.ksm && h.refcount() === 2) h.freeSwap(); // should_try_to_free_swap()
      const rc = h.refcount();
      if (fromEntry || (!f.ksm && rc === 1)) {
        // 6.2+ maps it writable even on a read fault, unless a write must be noticed
        const why = fromEntry ? "pte_swp_exclusive()" : "folio_ref_count() == 1";
        return f.writeNotify
          ? { exclusive: true, writable: false, rule: `do_swap_page(): ${why} — exclusive; pte_needs_soft_dirty_wp(): read-only until written` }
          : { exclusive: true, writable: true, rule: `do_swap_page(): ${why} — exclusive, mapped writable` };
      }
      return { exclusive: false, writable: false, rule: `do_swap_page(): folio_ref_count() ${rc}, not known exclusive — mapped read-only` };
    },
    reclaimsPinned: false,
    unmap: { shareAnon: true, swpExclusive: k.swapExclusive! },
    migrationReadExclusive: k.migrationReadExclusive!,
  };
}
