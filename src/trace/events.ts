/**
 * Tracepoints: the typed events the kernel layer emits at each of its decisions, named after
 * the kernel functions that make them (include/trace/events/*.h does the same), for subscribers
 * that must not reach into the kernel layer — the oracle, the journal, the reference judge,
 * trace export, embedders.
 *
 * An event object is valid during the call only: an emitter may reuse it for the next event of
 * its kind (the hot paths do), so a subscriber copies what it keeps. Emitting costs one property
 * test when nobody listens; build an event only after {@link TraceBus.has}.
 * @packageDocumentation
 */

/** Where the values of a holder's pages live for its owner (see {@link PinView}). @public */
export interface PinnedPages {
  /** Page i is at virtual page `vpn0 + i` of the owner. */
  readonly vpn0: number;
  /** In a shmem mapping, objId[i] names the object and index[i] the page there (0 otherwise); null: all private. */
  readonly objId: readonly number[] | null;
  readonly index: readonly number[] | null;
}

/** What promise a holder of GUP references made (the oracle's pin contracts). @public */
export type PinContract = "coherent" | "snapshot" | "none";

/** One holder of GUP references, as its events show it. @public */
export interface PinView {
  readonly id: number;
  /** Who holds it: "pipe", "io_uring", "o_direct", "rdma", "pin". */
  readonly owner: string;
  readonly pid: number;
  readonly flags: number;
  readonly contract: PinContract;
  /** The user address of each page when it was taken. */
  readonly addresses: readonly number[];
  /** The frame each reference holds. */
  readonly pfns: readonly number[];
}

/** The facts a copy is judged on, read just before the copy changed them. @public */
export interface CopyFacts {
  /** Mappings of the old folio (of a large folio: of the page copied), the copier's included. */
  readonly mapcount: number;
  /** Swap entries that name its slot (when it is in the swap cache). */
  readonly swapcount: number;
  /** Snapshot references (pipe buffers …) that hold it. */
  readonly snapshotRefs: number;
  readonly refcount: number;
  readonly ksm: boolean;
}

/** A range of virtual pages of one process. @public */
export interface VpnRange {
  readonly vpnStart: number;
  readonly vpnEnd: number;
}

/** Every tracepoint by name, with its event. @public */
export interface TraceEvents {
  /** A user-level step begins: a syscall (`call`), or a load or store (`code` 1 or 2 with its address and value). */
  step: { pid: number; call: string | (() => string) | null; code: number; addr: number; value: number };
  /** A load or store by the simulated CPU completed: what it read or wrote, in which frame and object. */
  access: {
    pid: number; address: number; write: boolean; value: number; pfn: number; objId: number; index: number;
    /** A private mapping of object `objId`: the page is the file's until the process writes it (copy-on-write). */
    cow?: boolean;
  };
  /** spawn(): a new address space. */
  mm_alloc: { pid: number };
  /** fork(): the child, and the private ranges it received. */
  dup_mmap: { pid: number; child: number; ranges: readonly VpnRange[] };
  /** exit(): every VMA unmapped. */
  exit_mmap: { pid: number };
  do_mmap: { pid: number; start: number; end: number; shared: boolean };
  do_vmi_munmap: { pid: number; start: number; end: number };
  /** Page-table entries of [start, end) gone: for private memory, its contents read zero now. */
  zap_page_range: { pid: number; start: number; end: number; private: boolean };
  mprotect_fixup: { pid: number; start: number; end: number; prot: number; upgraded: number };
  /** clear_refs 4: soft-dirty tracking over; `skipped` writable pinned PTEs were left alone. */
  clear_refs: { pid: number; skipped: number };
  /** mremap() in place: shrink or vma_expand(). */
  mremap: { pid: number; addr: number; oldLen: number; newLen: number };
  /** move_vma(): pages moved with their page-table entries. */
  move_vma: { pid: number; from: number; to: number; len: number; dontunmap: boolean; private: boolean };
  /**
   * move_pages() (UFFDIO_MOVE): `pages` pages moved from `src` to `dst` in one mm, each with its
   * entry (holes moved as holes); `thp` of them as whole PMD leaves (move_pages_huge_pmd()).
   */
  uffd_move: { pid: number; src: number; dst: number; pages: number; thp: number };
  madvise: { pid: number; start: number; end: number; advice: string };
  /** do_anonymous_page(): a fresh exclusive page, or the shared zero page (pfn 0). */
  do_anonymous_page: { pid: number; address: number; pfn: number; zero: boolean };
  shmem_fault: { pid: number; address: number; index: number; pfn: number };
  /** do_cow_fault() (`mapped` false) or wp_page_copy() of a mapped page-cache page: a private mapping's own copy of page `index` of object `objId`. */
  do_cow_fault: { pid: number; address: number; objId: number; index: number; pfn: number; newPfn: number; mapped: boolean };
  /** shmem_undo_range(): the pages [start, end) of shmem object `objId` left its page cache; it reads zero there. */
  shmem_undo_range: { objId: number; start: number; end: number };
  /** wp_page_shared(): a write-protect fault in a shared mapping, nothing to copy. */
  wp_page_shared: { pid: number; address: number; pfn: number };
  /** do_huge_pmd_anonymous_page(): a PMD maps a fresh THP (head `pfn`) or, `zero`, the huge zero page. */
  do_huge_pmd_anonymous_page: { pid: number; address: number; pfn: number; zero: boolean };
  /** do_huge_pmd_wp_page(): the strategy's verdict on a PMD-mapped THP; not reused, the PMD is split. */
  do_huge_pmd_wp_page: { pid: number; address: number; pfn: number; unshare: boolean; reuse: boolean; rule: string };
  /** __split_huge_pmd(): the PMD over `address` became a PTE table (`frozen`: of migration entries). */
  split_huge_pmd: { pid: number; address: number; pfn: number; frozen: boolean; why: string };
  /** hpage_collapse_scan_pmd() / collapse_huge_page() of the 2 MiB at `address`: its scan_result. */
  collapse_huge_page: { pid: number; address: number; result: string; khugepaged: boolean };
  /** do_wp_page() on an anonymous page: the strategy's verdict and the rule that gave it. */
  do_wp_page: { pid: number; address: number; pfn: number; unshare: boolean; reuse: boolean; rule: string };
  /** wp_page_copy() succeeded: `pid` now maps `newPfn`, a copy of `pfn` (0: the zero page). */
  wp_page_copy: {
    pid: number; address: number; pfn: number; newPfn: number; zeroPage: boolean; unshare: boolean; rule: string;
    /** Read before the copy (null for the zero page). */
    facts: CopyFacts | null;
  };
  /** free_swap_cache() after a copy (f4c4a3f48480). */
  free_swap_cache: { pfn: number };
  /** isolate_lru_page(): by hand, or (transient) by a compaction scan during a fault. */
  isolate_lru_page: { pfn: number; transient: boolean };
  putback_lru_page: { pfn: number };
  do_swap_page: { pid: number; address: number; slot: number; pfn: number; fromCache: boolean; rule: string };
  /** Fork handed back a possibly pinned page: copied for the child (copy_present_page()) or shared. */
  copy_present_page: { pid: number; child: number; address: number; pfn: number; newPfn: number; rule: string };
  copy_present_pte: { pid: number; child: number; address: number; pfn: number; rule: string };
  copy_nonpresent_pte: { pid: number; child: number; address: number; slot: number };
  try_to_unmap: { pfn: number; refused: boolean };
  shrink_folio_list: { pfn: number; slot: number; freed: boolean };
  try_to_free_pages: { freed: number };
  /** split_huge_page(): a large folio split into order-0 folios, or why not ("busy": extra references). */
  split_huge_page: { pfn: number; order: number; outcome: "split" | "busy" | "pmd-mapped" | "not-large"; freed: number };
  /** deferred_split_scan(): the shrinker split partially mapped folios, freeing `freed` frames. */
  deferred_split_scan: { freed: number };
  /** A GUP user took references: `call` is its kernel entry (vmsplice, io_uring_register …). */
  gup: { pid: number; call: string; pin: PinView; pages: PinnedPages };
  unpin_user_pages: { pid: number; pin: PinView };
  /** The device (or the pipe's reader) read page `i` through its reference. */
  pin_read: { pid: number; pin: PinView; i: number; value: number; pfn: number; reader: number };
  /** The device wrote page `i` (DMA); `holders`: where its owner still maps that page. */
  pin_write: { pid: number; pin: PinView; i: number; value: number; pfn: number; holders: readonly number[] };
  /**
   * A fault must wait (folio_lock_or_retry() returning VM_FAULT_RETRY): the access stands
   * pending on `what` until the holder wakes it and the caller resumes it.
   */
  fault_wait: { pid: number; address: number; write: boolean; reason: "folio-lock" | "migration" | "userfaultfd"; what: string };
  /** A pending access was resumed after its wait queue was woken: its fault is retried. */
  fault_resume: { pid: number; address: number; write: boolean; what: string };
  /** folio_lock() by an actor outside the processes (I/O, migration, a device). */
  folio_lock: { pfn: number };
  /** folio_unlock(): `waiters` pending accesses may now be resumed. */
  folio_unlock: { pfn: number; waiters: number };
  /**
   * memory_failure() dealt with a poisoned page (trace_memory_failure_event()): `type` is the
   * kernel's action_page_types[] name, `result` its action_name[]; `killed`, the processes sent
   * SIGBUS (BUS_MCEERR_AR) at once.
   */
  memory_failure_event: { pfn: number; type: string; result: "Ignored" | "Failed" | "Delayed" | "Recovered"; killed: readonly number[] };
  /** try_to_migrate_one() replaced the PTE at `address` with a migration entry for `pfn`. */
  set_migration_pte: { pid: number; address: number; pfn: number; entry: "read" | "read-exclusive" | "write" };
  /**
   * remove_migration_pte(): the migration entry at `address` maps a page again — `newPfn` after
   * a migration, `pfn` itself after a failed one; `exclusive` when RMAP_EXCLUSIVE restored
   * PageAnonExclusive.
   */
  remove_migration_pte: { pid: number; address: number; pfn: number; newPfn: number; exclusive: boolean };
  /** handle_userfault(): a fault in a registered range was told to userfaultfd `uffd` and waits for it. */
  handle_userfault: { pid: number; address: number; write: boolean; reason: "missing" | "wp" | "minor"; uffd: number };
  /**
   * mfill_atomic(): a userfaultfd ioctl filled `pages` pages from `start` — with `value`
   * (UFFDIO_COPY), the zero page, a poison marker, or the shmem page already in the page cache
   * (UFFDIO_CONTINUE); `objId`/`index` name the shmem object and page index of a shared mapping.
   */
  mfill_atomic: { pid: number; start: number; pages: number; mode: "copy" | "zeropage" | "poison" | "continue"; value: number | null; objId: number; index: number };
  /** migrate_pages() ended: folios moved and folios that stayed where they were. */
  mm_migrate_pages: { succeeded: number; failed: number; reason: string };
  /** The oracle judged something: a missed, unnecessary or wrong COW (explained in its findings). */
  finding: { kind: "missed-cow" | "unnecessary-cow" | "wrong-cow"; pid: number; address: number; pfn: number; summary: string };
}

/** A tracepoint's name. @public */
export type TraceName = keyof TraceEvents;

/** Every tracepoint, in the order of the catalog above. @public */
export const TRACE_NAMES = [
  "step", "access", "mm_alloc", "dup_mmap", "exit_mmap", "do_mmap", "do_vmi_munmap", "zap_page_range",
  "mprotect_fixup", "clear_refs", "mremap", "move_vma", "uffd_move", "madvise", "do_anonymous_page", "shmem_fault",
  "do_cow_fault", "shmem_undo_range", "wp_page_shared", "do_huge_pmd_anonymous_page", "do_huge_pmd_wp_page",
  "split_huge_pmd", "collapse_huge_page", "do_wp_page", "wp_page_copy", "free_swap_cache", "isolate_lru_page",
  "putback_lru_page", "do_swap_page", "copy_present_page", "copy_present_pte", "copy_nonpresent_pte", "try_to_unmap",
  "shrink_folio_list", "try_to_free_pages", "split_huge_page", "deferred_split_scan", "gup", "unpin_user_pages",
  "pin_read", "pin_write", "fault_wait", "fault_resume", "folio_lock", "folio_unlock", "memory_failure_event",
  "set_migration_pte", "remove_migration_pte", "handle_userfault", "mfill_atomic", "mm_migrate_pages", "finding",
] as const satisfies readonly TraceName[];
// the list names every tracepoint: a name added to TraceEvents and not here fails to compile
// (and each once: test/events.test.ts)
const everyName: Exclude<TraceName, (typeof TRACE_NAMES)[number]> extends never ? true : never = true;
void everyName;
/** wp_page_copy's event (the reference judge's input). @public */
export type WpPageCopyEvent = TraceEvents["wp_page_copy"];
type Listener<K extends TraceName> = (event: TraceEvents[K]) => void;
/** A subscriber of every tracepoint. @public */
export type AnyListener = <K extends TraceName>(name: K, event: TraceEvents[K]) => void;

/**
 * The subscribers of one kernel's tracepoints. Subscribing and unsubscribing replace the lists
 * rather than edit them, so a listener may unsubscribe itself (or another) while an event is
 * being delivered, and that delivery still reaches everyone who was subscribed when it began.
 * @public
 */
const NO_STAR: { fns: readonly AnyListener[] } = { fns: [] };

/**
 * How a subscriber takes its events. @public
 */
export interface SubscribeOptions {
  /**
   * The subscriber reads nothing but each event and its own state, so the events one call into
   * the core made may reach it after that call, in their order (the core's trace log) — the
   * kernel then keeps a batched run of accesses and faults in the core rather than going page
   * by page for it. Without it, every event reaches the subscriber while the kernel's state is
   * the one the event describes. (The oracle and the journal subscribe so.)
   */
  readonly deferred?: boolean;
}

/**
 * The tracepoints whose events a core call's trace log holds (src/mm/trace_log.ts delivers them
 * after the call): a run's steps, its accesses, and the faults the core took for them.
 */
export const TRACE_LOG_POINTS = ["step", "access", "do_anonymous_page", "do_wp_page", "wp_page_copy"] as const;

/**
 * A deferred subscriber that takes the events of a core call's trace log through methods of its
 * own, with the events' fields as arguments — as a trace_pipe_raw reader takes the ring buffer's
 * records rather than formatted events: the same events in the same order, without an event
 * object to fill and a listener list to walk per event. It stands for listeners it subscribed
 * itself ({@link TraceBus.readLog}); while the log's tracepoints have no other listener, the log
 * goes to it instead of to them. @public
 */
export interface TraceLogReader {
  /** step: a run's load (`code` 1) or store (2) begins. */
  step(pid: number, code: number, addr: number, value: number): void;
  /** access (see {@link TraceEvents.access}). */
  access(pid: number, address: number, write: boolean, value: number, pfn: number, objId: number, index: number, cow: boolean): void;
  /** do_anonymous_page. */
  doAnonymousPage(pid: number, address: number, pfn: number, zero: boolean): void;
  /** do_wp_page of a write fault (a log holds no unshare fault). */
  doWpPage(pid: number, address: number, pfn: number, reuse: boolean, rule: string): void;
  /** wp_page_copy of a page (`facts` valid during the call only). */
  wpPageCopy(pid: number, address: number, pfn: number, newPfn: number, rule: string, facts: CopyFacts): void;
  /** wp_page_copy of the shared zero page. */
  wpPageCopyZero(pid: number, address: number, newPfn: number, rule: string): void;
  /**
   * True when the reader needs no access event per store of a run, nor the first-touch faults
   * of its pages: a run of stores to private anonymous memory then comes to {@link storeRun}
   * in one call, after the run's other events (its write-protect faults).
   */
  readonly storeRuns?: boolean;
  /** `n` stores of `pid`, page i at `address` + i·stride pages storing `value` + i·step (see {@link storeRuns}). */
  storeRun?(pid: number, address: number, n: number, stride: number, value: number, step: number): void;
}

/** One tracepoint: whether anyone listens (a plain field, read on every access), and who. @public */
export class TracePoint<K extends TraceName> {
  /** Someone listens: a subscriber of this tracepoint, or of every one. */
  listening = false;
  /** Someone listens who must see each event while the state it describes holds (see {@link SubscribeOptions}). */
  immediate = false;
  /** @internal */
  fns: readonly Listener<K>[] = [];
  /** The subscribers (of `fns`) that take events after the call that made them. @internal */
  deferred: readonly Listener<K>[] = [];

  /** The "*" subscribers, shared by every point of one bus. @internal */
  star: { fns: readonly AnyListener[] } = NO_STAR;

  /** @internal */
  constructor(readonly name: K) {}

  /** Delivers `event` to this tracepoint's subscribers, then to those of every one. */
  emit(event: TraceEvents[K]): void {
    const fns = this.fns;
    for (let i = 0; i < fns.length; i++) fns[i]!(event);
    const all = this.star.fns;
    for (let i = 0; i < all.length; i++) all[i]!(this.name, event);
  }
}

/**
 * Every tracepoint as its own field: a fixed shape, so the hot paths' test is a property load
 * (`trace.points.access.listening`), never a lookup by name. @public
 */
export class TracePoints {
  readonly step = new TracePoint("step");
  readonly access = new TracePoint("access");
  readonly mm_alloc = new TracePoint("mm_alloc");
  readonly dup_mmap = new TracePoint("dup_mmap");
  readonly exit_mmap = new TracePoint("exit_mmap");
  readonly do_mmap = new TracePoint("do_mmap");
  readonly do_vmi_munmap = new TracePoint("do_vmi_munmap");
  readonly zap_page_range = new TracePoint("zap_page_range");
  readonly mprotect_fixup = new TracePoint("mprotect_fixup");
  readonly clear_refs = new TracePoint("clear_refs");
  readonly mremap = new TracePoint("mremap");
  readonly move_vma = new TracePoint("move_vma");
  readonly uffd_move = new TracePoint("uffd_move");
  readonly madvise = new TracePoint("madvise");
  readonly do_anonymous_page = new TracePoint("do_anonymous_page");
  readonly shmem_fault = new TracePoint("shmem_fault");
  readonly do_cow_fault = new TracePoint("do_cow_fault");
  readonly shmem_undo_range = new TracePoint("shmem_undo_range");
  readonly wp_page_shared = new TracePoint("wp_page_shared");
  readonly do_huge_pmd_anonymous_page = new TracePoint("do_huge_pmd_anonymous_page");
  readonly do_huge_pmd_wp_page = new TracePoint("do_huge_pmd_wp_page");
  readonly split_huge_pmd = new TracePoint("split_huge_pmd");
  readonly collapse_huge_page = new TracePoint("collapse_huge_page");
  readonly do_wp_page = new TracePoint("do_wp_page");
  readonly wp_page_copy = new TracePoint("wp_page_copy");
  readonly free_swap_cache = new TracePoint("free_swap_cache");
  readonly isolate_lru_page = new TracePoint("isolate_lru_page");
  readonly putback_lru_page = new TracePoint("putback_lru_page");
  readonly do_swap_page = new TracePoint("do_swap_page");
  readonly copy_present_page = new TracePoint("copy_present_page");
  readonly copy_present_pte = new TracePoint("copy_present_pte");
  readonly copy_nonpresent_pte = new TracePoint("copy_nonpresent_pte");
  readonly try_to_unmap = new TracePoint("try_to_unmap");
  readonly shrink_folio_list = new TracePoint("shrink_folio_list");
  readonly try_to_free_pages = new TracePoint("try_to_free_pages");
  readonly split_huge_page = new TracePoint("split_huge_page");
  readonly deferred_split_scan = new TracePoint("deferred_split_scan");
  readonly gup = new TracePoint("gup");
  readonly unpin_user_pages = new TracePoint("unpin_user_pages");
  readonly pin_read = new TracePoint("pin_read");
  readonly pin_write = new TracePoint("pin_write");
  readonly fault_wait = new TracePoint("fault_wait");
  readonly memory_failure_event = new TracePoint("memory_failure_event");
  readonly fault_resume = new TracePoint("fault_resume");
  readonly folio_lock = new TracePoint("folio_lock");
  readonly folio_unlock = new TracePoint("folio_unlock");
  readonly set_migration_pte = new TracePoint("set_migration_pte");
  readonly remove_migration_pte = new TracePoint("remove_migration_pte");
  readonly mm_migrate_pages = new TracePoint("mm_migrate_pages");
  readonly handle_userfault = new TracePoint("handle_userfault");
  readonly mfill_atomic = new TracePoint("mfill_atomic");
  readonly finding = new TracePoint("finding");
}
// every tracepoint has its field: a name added to TraceEvents and not here fails to compile
type EveryPoint = { [K in TraceName]: TracePoint<K> };
const everyPoint: (p: TracePoints) => EveryPoint = (p) => p;
void everyPoint;

/**
 * The subscribers of one kernel's tracepoints. Subscribing and unsubscribing replace the lists
 * rather than edit them, so a listener may unsubscribe itself (or another) while an event is
 * being delivered, and that delivery still reaches everyone who was subscribed when it began.
 * @public
 */
export class TraceBus {
  /** The tracepoints; the hot paths test `points.<name>.listening` before building an event. */
  readonly points = new TracePoints();
  /** The "*" subscribers, which every point reads when it emits. */
  private readonly star: { fns: readonly AnyListener[] } = { fns: [] };

  constructor() {
    for (const n of TRACE_NAMES) this.points[n].star = this.star;
  }

  private get all(): readonly AnyListener[] {
    return this.star.fns;
  }

  private set all(fns: readonly AnyListener[]) {
    this.star.fns = fns;
  }

  private point<K extends TraceName>(name: K): TracePoint<K> {
    const pt = (this.points as unknown as Record<string, TracePoint<K> | undefined>)[name];
    if (pt === undefined || !Object.hasOwn(this.points, name)) throw new TypeError(`no tracepoint "${String(name)}"`);
    return pt;
  }

  /** Whether anything listens to `name` (a "*" subscriber listens to everything). */
  has(name: TraceName): boolean {
    return this.points[name].listening;
  }

  /** How many subscribers `name` has, counting "*" subscribers. */
  listenerCount(name: TraceName | "*"): number {
    if (name === "*") return this.all.length;
    return this.all.length + this.point(name).fns.length;
  }

  /** Subscribes to one tracepoint, or to every one with "*" (whose subscribers are never deferred). */
  on<K extends TraceName>(name: K, fn: Listener<K>, options?: SubscribeOptions): void;
  on(name: "*", fn: AnyListener): void;
  on(name: TraceName | "*", fn: Listener<TraceName> | AnyListener, options?: SubscribeOptions): void {
    if (name === "*") {
      this.all = [...this.all, fn as AnyListener];
      for (const n of TRACE_NAMES) this.refresh(this.points[n]);
      return;
    }
    const pt = this.point(name);
    pt.fns = [...pt.fns, fn as Listener<TraceName>];
    if (options?.deferred === true) pt.deferred = [...pt.deferred, fn as Listener<TraceName>];
    this.refresh(pt);
  }

  private refresh(pt: { readonly fns: readonly unknown[]; readonly deferred: readonly unknown[]; listening: boolean; immediate: boolean }): void {
    pt.listening = pt.fns.length > 0 || this.all.length > 0;
    pt.immediate = pt.fns.length > pt.deferred.length || this.all.length > 0;
    this.refreshReader();
  }

  /** Unsubscribes `fn` (once, if it subscribed more than once). */
  off<K extends TraceName>(name: K, fn: Listener<K>): void;
  off(name: "*", fn: AnyListener): void;
  off(name: TraceName | "*", fn: Listener<TraceName> | AnyListener): void {
    if (name === "*") {
      this.all = without(this.all, fn as AnyListener);
      for (const n of TRACE_NAMES) this.refresh(this.points[n]);
      return;
    }
    const pt = this.point(name);
    const before = pt.fns;
    pt.fns = without(pt.fns, fn as Listener<TraceName>);
    // the copy that goes is a deferred one only when no immediate copy of it remains
    if (pt.fns !== before && pt.fns.filter((f) => f === fn).length < pt.deferred.filter((f) => f === fn).length) {
      pt.deferred = without(pt.deferred, fn as Listener<TraceName>);
    }
    this.refresh(pt);
  }

  /**
   * The reader the trace log goes to (src/mm/trace_log.ts), or null: the log's events go to
   * their tracepoints' listeners. Kept up to date by every subscription.
   */
  logReader: TraceLogReader | null = null;
  private reader: TraceLogReader | null = null;
  private readerStandsFor: ReadonlySet<unknown> = new Set();

  /**
   * Hands the trace log to `reader`, which stands for `listeners` (its own, already subscribed
   * deferred to the log's tracepoints): while those are all the log's tracepoints have, the
   * log's events reach the reader's methods instead of them. `null` gives the log back to the
   * listeners.
   */
  readLog(reader: TraceLogReader | null, listeners: readonly unknown[] = []): void {
    this.reader = reader;
    this.readerStandsFor = new Set(listeners);
    this.refreshReader();
  }

  private refreshReader(): void {
    const r = this.reader;
    const stands = this.readerStandsFor;
    this.logReader = r !== null && this.all.length === 0 &&
      TRACE_LOG_POINTS.every((n) => this.points[n].fns.every((f) => stands.has(f))) ? r : null;
  }

  /** Delivers an event (the hot paths call `points.<name>.emit(event)`, the same without the lookup). */
  emit<K extends TraceName>(name: K, event: TraceEvents[K]): void {
    (this.points[name] as unknown as TracePoint<K>).emit(event);
  }
}

function without<T>(list: readonly T[], item: T): readonly T[] {
  const i = list.indexOf(item);
  return i < 0 ? list : [...list.slice(0, i), ...list.slice(i + 1)];
}
