/**
 * COW strategies: the small set of questions the kernel asks about copy-on-write, answered the
 * way one generation of Linux answers them. A strategy never touches the core; the fault path
 * hands it facts and a few kernel helpers, and records the rule it names.
 * @packageDocumentation
 */
import { CowsimError } from "../errno.js";

/** What do_wp_page() knows about the anonymous page at the faulting address. @public */
export interface WpFacts {
  readonly pfn: number;
  /** PageAnonExclusive() of the mapped (sub)page. */
  readonly exclusive: boolean;
  readonly ksm: boolean;
  readonly large: boolean;
  /** folio_test_lru(): on an LRU list (not waiting in a per-CPU batch, not isolated). */
  readonly lru: boolean;
  readonly swapcache: boolean;
  readonly writeback: boolean;
  /** FAULT_FLAG_UNSHARE: a R/O GUP pin wants the page exclusive, nothing will be written. */
  readonly unshare: boolean;
}

/** What do_huge_pmd_wp_page() knows about the PMD-mapped THP at the faulting address. @public */
export interface HugeWpFacts {
  /** The head page. */
  readonly pfn: number;
  /** PageAnonExclusive() of the head, which stands for the whole PMD-mapped folio. */
  readonly exclusive: boolean;
  readonly swapcache: boolean;
  /** FAULT_FLAG_UNSHARE: a R/O GUP pin wants the THP exclusive. */
  readonly unshare: boolean;
}

/** Kernel helpers a decision may call; the counts are read afresh each time. @public */
export interface WpHelpers {
  /** folio_ref_count() */
  refcount(): number;
  /**
   * The map count the COW rules before 5.19 read: folio_mapcount() of a small folio; of a large
   * one, the most any of its pages is mapped plus its PMD mappings, as
   * page_trans_huge_map_swapcount() counts a THP for reuse_swap_page().
   */
  mapcount(): number;
  /** The swap count of the folio's swap slot (0 when it is not in the swap cache). */
  swapcount(): number;
  /** lru_add_drain(): empty this CPU's LRU batches, dropping their references. */
  lruAddDrain(): void;
  /** folio_free_swap() / try_to_free_swap(): leave the swap cache if no swap PTE needs it. */
  freeSwap(): boolean;
  /** folio_trylock() */
  trylock(): boolean;
  /** folio_unlock() */
  unlock(): void;
}

/** A strategy's answer to do_wp_page(), with the rule that decided it (for explanations). @public */
export interface WpDecision {
  readonly reuse: boolean;
  /** The kernel function and condition that decided, e.g. "wp_can_reuse_anon_folio(): folio_ref_count() == 1". */
  readonly rule: string;
  /** folio_move_anon_rmap(): the reused page moves to the faulting VMA's anon_vma. */
  readonly moveAnon?: boolean;
  /** SetPageAnonExclusive() on reuse. */
  readonly setExclusive?: boolean;
}

/**
 * A built-in strategy's wpReuse() restated as data, for the write-protect faults the core decides
 * in the access call itself: a small anonymous folio, not KSM, outside the swap cache and
 * unlocked. Every other fault still asks wpReuse(). The two must agree; a property test runs
 * both on the same programs.
 */
export interface WpCoreRule {
  /** PageAnonExclusive() → reuse at once (Linux ≥ 5.19). */
  readonly exclusiveReuses: boolean;
  /** What decides the rest: folio_mapcount() ≤ 1 (reuse_swap_page()) or folio_ref_count() == 1. */
  readonly count: "mapcount" | "refcount";
  /** folio_ref_count() > 3 copies at once; a folio off the LRU has the local batch drained first (d4c470970d45). */
  readonly drainFirst: boolean;
  /** folio_mapcount() == 1 as well (Linux 5.9 – 5.17's check under the page lock). */
  readonly mapcountToo: boolean;
  /** Reuse moves the page to the faulting VMA's anon_vma (folio_move_anon_rmap()). */
  readonly moveAnon: boolean;
  /** Reuse marks the page PageAnonExclusive. */
  readonly setExclusive: boolean;
  /**
   * A page of a large folio that is not PageAnonExclusive is copied (6.12's
   * wp_can_reuse_anon_folio(): folio_test_large()); false: such faults ask wpReuse().
   */
  readonly largeCopies?: boolean;
}

/**
 * A built-in strategy's swapin() restated as data, for the swap-ins the core takes in the access
 * call itself: an order-0 page read back or found unlocked in the swap cache, not KSM, not
 * poisoned, in a VMA with its own anon_vma and no uffd-wp. Every other swap-in still asks
 * swapin(). The two must agree; a property test runs both on the same programs.
 */
export interface SwapinCoreRule {
  /**
   * What decides: a write fault's reuse_swap_page() — folio_mapcount() + swap count ≤ 1 (Linux ≤
   * 5.17) — or folio_ref_count() == 1 after swap_free() and should_try_to_free_swap() (5.18+).
   */
  readonly count: "mapcount" | "refcount";
  /** pte_swp_exclusive() makes the page exclusive at once (1493a1913e34, 5.19+). */
  readonly entryExclusive: boolean;
  /** A read fault may map an exclusive page too, writable unless soft-dirty must see the write (6.x). */
  readonly readExclusive: boolean;
}

/** What GUP knows when it decides whether a R/O pin must unshare first. @public */
export interface GupFacts {
  readonly anon: boolean;
  readonly exclusive: boolean;
  readonly ksm: boolean;
  readonly write: boolean;
  readonly pin: boolean;
  readonly longterm: boolean;
  /** is_cow_mapping() of the VMA. */
  readonly cowMapping: boolean;
}

/** What do_swap_page() knows about the page it is about to map. @public */
export interface SwapinFacts {
  /** A write fault (FAULT_FLAG_WRITE). */
  readonly write: boolean;
  /** The swap PTE carried SWP_EXCLUSIVE. */
  readonly swpExclusive: boolean;
  readonly ksm: boolean;
  /**
   * pte_needs_soft_dirty_wp() or userfaultfd_pte_wp(): soft-dirty tracking or uffd-wp must see
   * the next write, so a page mapped on a read fault has to stay read-only.
   */
  readonly writeNotify: boolean;
}

/** Kernel helpers of do_swap_page(); the counts are read afresh each time. @public */
export interface SwapinHelpers {
  /** folio_ref_count() (the swap cache's reference and the fault's included). */
  refcount(): number;
  /** folio_mapcount() */
  mapcount(): number;
  /** The swap count of the slot (this PTE's entry included until swapFree()). */
  swapcount(): number;
  /** swap_free() of the faulting entry (once; the fault path does it if the strategy does not). */
  swapFree(): void;
  /** folio_free_swap(): leave the swap cache if no swap entry refers to the slot any more. */
  freeSwap(): boolean;
  /** delete_from_swap_cache() (reuse_swap_page()'s side effect in Linux ≤ 5.17). */
  deleteFromSwapCache(): void;
}

/** A strategy's answer to do_swap_page(). @public */
export interface SwapinDecision {
  /** Map it exclusive (RMAP_EXCLUSIVE). */
  readonly exclusive: boolean;
  /** Map it writable now, when the VMA allows (a write fault, or Linux ≥ 5.19 on any fault). */
  readonly writable: boolean;
  readonly rule: string;
}

/** A knob: a behaviour one kernel commit introduced, on or off. @public */
export interface KnobSpec {
  readonly name: string;
  readonly commit: string;
  readonly kernel: string;
  readonly description: string;
  readonly default: boolean;
  /**
   * A step of a lock-free protocol that every kernel with the feature has: turned off, the
   * protocol is broken on purpose (for stress tests that must find the broken outcome) and the
   * run stands for no released kernel. `kernel` is then "—".
   */
  readonly protocol?: boolean;
}

/** A COW strategy. @public */
export interface CowStrategy {
  readonly id: string;
  readonly title: string;
  /** The kernels it stands for, e.g. "Linux ≤ 5.7". */
  readonly kernels: string;
  /** The commits that define it. */
  readonly commits: readonly string[];
  /** The knobs this run uses, resolved. */
  readonly knobs: Readonly<Record<string, boolean>>;
  /** PAGEVEC_SIZE of its era: how many folios wait in a per-CPU LRU batch. */
  readonly lruBatchSize: number;
  /** Whether the PageAnonExclusive invariants hold under it (Linux ≥ 5.19). */
  readonly tracksAnonExclusive: boolean;

  /** do_wp_page(): may this anonymous page be reused rather than copied? */
  wpReuse(facts: WpFacts, h: WpHelpers): WpDecision;
  /**
   * do_huge_pmd_wp_page(): may this PMD-mapped THP be reused? If not, the kernel splits the PMD
   * (__split_huge_pmd()) and the PTE fault decides for the one subpage (wpReuse()), as Linux
   * does since 5.8 (3917c80280c9). Left out: never reused, always split.
   */
  thpWpReuse?(facts: HugeWpFacts, h: WpHelpers): WpDecision;
  /**
   * copy_page_range(): which possibly pinned anonymous pages fork hands to forkPinned() instead
   * of sharing them: none (≤ 5.8), any (5.9–5.18: page_maybe_dma_pinned()), or only
   * PageAnonExclusive ones (5.19+: folio_try_dup_anon_rmap_pte() fails for them).
   */
  readonly forkDefers: "none" | "pinned" | "pinned-exclusive";
  /** copy_present_page() or share: what fork does with a page it handed back. */
  forkPinned(exclusive: boolean): { copy: boolean; rule: string };
  /** gup_must_unshare(): must GUP unshare (FAULT_FLAG_UNSHARE) before taking this pin? */
  gupMustUnshare(f: GupFacts): boolean;
  /** do_swap_page(): is the page exclusive, and mapped writable at once? */
  swapin(f: SwapinFacts, h: SwapinHelpers): SwapinDecision;
  /** shrink_folio_list(): may reclaim swap out a possibly pinned page (Linux < 5.11: yes)? */
  readonly reclaimsPinned: boolean;
  /**
   * try_to_unmap() of its generation: whether it must share an anonymous page first
   * (folio_try_share_anon_rmap_pte(), which fails on a pin, 5.19+) and whether the swap entry
   * remembers exclusivity (SWP_EXCLUSIVE).
   */
  readonly unmap: { readonly shareAnon: boolean; readonly swpExclusive: boolean };
  /**
   * try_to_migrate_one() of its generation: whether a R/O PageAnonExclusive page gets a
   * readable-exclusive migration entry (SWP_MIGRATION_READ_EXCLUSIVE, 6c287605fd56, 5.19), so
   * remove_migration_pte() maps it back exclusive. Without, a migration has read and write
   * entries only and a R/O exclusive page comes back possibly shared. Default:
   * `tracksAnonExclusive`. (Whether an exclusive page is shared first, refusing a pinned one,
   * is `unmap.shareAnon`, as for swap.)
   */
  readonly migrationReadExclusive?: boolean;
  /**
   * Linux 6.1 (088b8aa537c2): the barriers that order GUP-fast's grab before its re-check and
   * the clearing side's PTE clear before its pin check. Without them (5.19 – 6.0 on a weakly
   * ordered CPU) both sides may miss each other. Default: true.
   */
  readonly gupFastBarriers?: boolean;
  /**
   * The steps of the GUP-fast / PageAnonExclusive protocol the run keeps (all, by default); a
   * false one is left out on purpose, machine-wide, so GUP-fast in every thread breaks alike:
   * `pteRecheck` B4 (GUP-fast re-reads the PMD and PTE after the grab), `unmapClear` A1
   * (try_to_unmap_one() and try_to_migrate_one() clear the PTE before checking pins),
   * `writeProtectSeq` (GUP-fast FOLL_PIN retries when fork's mm->write_protect_seq moved).
   */
  readonly gupFastProtocol?: { readonly pteRecheck: boolean; readonly unmapClear: boolean; readonly writeProtectSeq: boolean };
  /** Linux 5.8 (17839856fd58): every GUP of a COW page breaks COW as a write would. */
  readonly gupBreaksCow: boolean;
  /** Linux 6.2 (64fe24a3e05e): mprotect() maps exclusive anonymous pages writable at once. */
  readonly mprotectWriteUpgrade: boolean;
  /** Linux 6.5 (a7e689dd1c06): O_DIRECT pins its pages (FOLL_PIN); before, plain references (FOLL_GET). */
  readonly directIoPins: boolean;
  /**
   * Linux 5.11 (9348b73c2e1b): clear_refs' soft-dirty reset leaves writable PTEs of possibly
   * pinned pages alone (pte_is_pinned()) instead of write-protecting them.
   */
  readonly clearRefsSkipsPinned: boolean;
  /**
   * Linux 5.14 (f4c4a3f48480): wp_page_copy() frees the old page's swap cache once nothing maps
   * it (free_swap_cache()); before, the idle swap-cache page waited for reclaim.
   */
  readonly freeSwapCacheAfterCow: boolean;
}

/** Kernel releases in order, for naming the range a set of knobs stands for. */
const RELEASES = [
  "4.19", "4.20", "5.0", "5.1", "5.2", "5.3", "5.4", "5.5", "5.6", "5.7", "5.8", "5.9", "5.10", "5.11", "5.12",
  "5.13", "5.14", "5.15", "5.16", "5.17", "5.18", "5.19", "6.0", "6.1", "6.2", "6.3", "6.4", "6.5", "6.6", "6.7",
  "6.8", "6.9", "6.10", "6.11", "6.12",
];

/**
 * The releases a strategy with these knobs stands for: from the newest commit it has (or its
 * own first release) up to the release before the oldest commit it lacks (or its own last):
 * "Linux 5.14 – 5.17", "Linux ≤ 5.7", "Linux ≥ 6.5". A mix no release had says so.
 */
export function kernelRange(first: string | null, last: string | null, specs: readonly KnobSpec[],
  knobs: Readonly<Record<string, boolean>>): string {
  const at = (v: string) => {
    const i = RELEASES.indexOf(v);
    if (i < 0) throw new Error(`cowsim: unknown kernel release ${v}`);
    return i;
  };
  let lo = first === null ? -1 : at(first);
  let hi = last === null ? RELEASES.length : at(last);
  const broken = specs.filter((s) => s.protocol && !knobs[s.name]).map((s) => `${s.name}=false`);
  if (broken.length) return `no released kernel (protocol broken: ${broken.join(", ")})`;
  for (const spec of specs) {
    if (spec.protocol) continue;
    if (knobs[spec.name]) lo = Math.max(lo, at(spec.kernel));
    else hi = Math.min(hi, at(spec.kernel) - 1);
  }
  if (lo > hi) {
    const odd = specs.filter((s) => !s.protocol && (knobs[s.name] ? at(s.kernel) > hi : at(s.kernel) <= lo)).map((s) => `${s.name}=${knobs[s.name]}`);
    return `no released kernel (${odd.join(", ")})`;
  }
  if (lo < 0) return hi >= RELEASES.length ? "Linux (any)" : `Linux ≤ ${RELEASES[hi]}`;
  if (hi >= RELEASES.length) return `Linux ≥ ${RELEASES[lo]}`;
  return lo === hi ? `Linux ${RELEASES[lo]}` : `Linux ${RELEASES[lo]} – ${RELEASES[hi]}`;
}

/** Resolves user knob settings against a strategy's knob table; unknown names are an error. */
export function resolveKnobs(
  id: string, specs: readonly KnobSpec[], given: Readonly<Record<string, boolean>> | undefined,
): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  for (const k of specs) out[k.name] = k.default;
  for (const [name, value] of Object.entries(given ?? {})) {
    if (!specs.some((k) => k.name === name)) {
      const known = specs.map((k) => k.name).join(", ") || "none";
      throw new CowsimError("EINVAL", `strategy ${id} has no knob "${name}" (its knobs: ${known})`);
    }
    if (typeof value !== "boolean") throw new CowsimError("EINVAL", `knob ${name} of strategy ${id} must be true or false, not ${JSON.stringify(value)}`);
    out[name] = value;
  }
  return out;
}
