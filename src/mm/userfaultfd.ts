/**
 * userfaultfd (fs/userfaultfd.c, mm/userfaultfd.c, include/uapi/linux/userfaultfd.h): a file
 * per mm through which a handler is told of faults in registered ranges — missing pages,
 * writes to uffd-wp-protected pages, minor faults of shmem pages already in the page cache —
 * and resolves them with ioctls (UFFDIO_COPY, ZEROPAGE, CONTINUE, WRITEPROTECT, POISON, MOVE,
 * WAKE). A fault in a registered range blocks on the context's wait queue (handle_userfault())
 * until the handler resolves it and wakes it.
 */
import { C } from "../core/index.js";
import { CowsimError, type ErrnoName, ERRNO } from "../errno.js";
import type { MmKernel } from "./kernel.js";
import type { MmProcess } from "./process.js";
import { type Vma, VM_UFFD_MISSING, VM_UFFD_WP, VM_UFFD_MINOR, VM_UFFD_FLAGS, VM_MAYWRITE, VM_SHARED, VM_WRITE, hex } from "./vma.js";
import type { WaitQueue } from "./wait.js";
import { PAGE_SIZE, TASK_SIZE } from "./uapi.js";
import { anon_vma_prepare } from "./rmap.js";
import { mergeNeighbours, splitAround } from "./mmap.js";
import { Stat } from "./stats.js";
import { shmem_get_folio, shmem_get_entry, shmem_add_to_page_cache, type ShmemFile } from "./shmem.js";
import { UffdRangeError, userfaultfd_move } from "./userfaultfd_move.js";
import { split_huge_pmd } from "./huge_memory.js";
import {
  UFFD_API, UFFD_FEATURE_EVENT_FORK, UFFD_FEATURE_EVENT_REMAP, UFFD_FEATURE_EVENT_REMOVE, UFFD_FEATURE_EVENT_UNMAP,
  UFFD_FEATURE_SIGBUS, UFFD_FEATURE_THREAD_ID, UFFD_FEATURE_EXACT_ADDRESS, UFFD_FEATURE_WP_UNPOPULATED,
  UFFD_FEATURE_WP_ASYNC, UFFD_API_FEATURES, O_NONBLOCK, O_CLOEXEC, UFFD_USER_MODE_ONLY, UFFD_EVENT_FORK,
  UFFD_EVENT_REMAP, UFFD_PAGEFAULT_FLAG_WRITE, UFFD_PAGEFAULT_FLAG_WP, UFFD_PAGEFAULT_FLAG_MINOR,
  UFFDIO_REGISTER_MODE_MISSING, UFFDIO_REGISTER_MODE_WP, UFFDIO_REGISTER_MODE_MINOR, UFFD_API_REGISTER_MODES,
  UFFDIO_COPY_MODE_DONTWAKE, UFFDIO_COPY_MODE_WP, UFFDIO_ZEROPAGE_MODE_DONTWAKE, UFFDIO_WRITEPROTECT_MODE_WP,
  UFFDIO_WRITEPROTECT_MODE_DONTWAKE, UFFDIO_CONTINUE_MODE_DONTWAKE, UFFDIO_CONTINUE_MODE_WP,
  UFFDIO_POISON_MODE_DONTWAKE, UFFD_API_IOCTLS, UFFD_API_RANGE_IOCTLS,
} from "./uapi_userfaultfd.js";
import { pageOffset } from "./align.js";

/** UFFD_FEATURE_INITIALIZED: ctx->features once UFFDIO_API succeeded. */
const UFFD_FEATURE_INITIALIZED = 2 ** 31;

// every constant of the uapi header, for the kernel layer's callers (one definition, re-exported)
export * from "./uapi_userfaultfd.js";
export { UffdRangeError } from "./userfaultfd_move.js";

/** UFFDIO_COPY's source and mode: one value for every page, or the pages at `src`. @public */
export interface UffdioCopyOptions {
  readonly value?: number;
  readonly src?: number;
  readonly mode?: number;
}

/** What tells one mfill ioctl from another: its name, its mfill_atomic() kind and its mode bits. */
interface MfillIoctl {
  readonly name: "UFFDIO_COPY" | "UFFDIO_ZEROPAGE" | "UFFDIO_CONTINUE" | "UFFDIO_POISON";
  /** The argument's start field, for the step's description: uffdio_copy.dst, the others' range.start. */
  readonly startField: "dst" | "start";
  readonly kind: number;
  readonly dontwake: number;
  /** The mode bit that maps the pages uffd-wp-protected (0: the ioctl has none). */
  readonly wp: number;
}
const IOCTL_COPY: MfillIoctl = { name: "UFFDIO_COPY", startField: "dst", kind: C.MFILL_COPY, dontwake: UFFDIO_COPY_MODE_DONTWAKE, wp: UFFDIO_COPY_MODE_WP };
const IOCTL_ZEROPAGE: MfillIoctl = { name: "UFFDIO_ZEROPAGE", startField: "start", kind: C.MFILL_ZEROPAGE, dontwake: UFFDIO_ZEROPAGE_MODE_DONTWAKE, wp: 0 };
const IOCTL_CONTINUE: MfillIoctl = { name: "UFFDIO_CONTINUE", startField: "start", kind: C.MFILL_FILE, dontwake: UFFDIO_CONTINUE_MODE_DONTWAKE, wp: UFFDIO_CONTINUE_MODE_WP };
const IOCTL_POISON: MfillIoctl = { name: "UFFDIO_POISON", startField: "start", kind: C.MFILL_POISON, dontwake: UFFDIO_POISON_MODE_DONTWAKE, wp: 0 };

/** A message read from a userfaultfd (struct uffd_msg). @public */
export type UffdMsg =
  | { readonly event: "pagefault"; readonly address: number; readonly flags: number; readonly ptid?: number }
  | { readonly event: "fork"; readonly ufd: UserfaultfdCtx }
  | { readonly event: "remap"; readonly from: number; readonly to: number; readonly len: number }
  | { readonly event: "remove"; readonly start: number; readonly end: number }
  | { readonly event: "unmap"; readonly start: number; readonly end: number };

/** A userfault that waits (struct userfaultfd_wait_queue): its message and the queue its fault sleeps on. */
interface Uwq {
  readonly msg: Extract<UffdMsg, { event: "pagefault" }>;
  readonly queue: WaitQueue;
}

/** What a handler sees when a message arrives (the library's stand-in for a thread blocked in read()). @public */
export type UffdHandler = (uffd: UserfaultfdCtx) => void;

/**
 * struct userfaultfd_ctx: one userfaultfd of one mm — its features, its queues of faults that
 * wait (fault_pending_wqh: not yet read; fault_wqh: read, not yet woken) and of events
 * (event_wqh), and the ioctls that resolve them. @public
 */
export class UserfaultfdCtx {
  /** The features UFFDIO_API enabled. */
  features = 0;
  /** Released (close()): the registrations are gone, faults no longer wait. */
  released = false;
  /**
   * A handler run when a message is queued — as a thread blocked in read() would wake and run —
   * so a fault it resolves completes within the access. Without one, a fault waits: the access
   * is pending (Process.access()) until an ioctl wakes it.
   */
  onMessage: UffdHandler | null = null;
  /** ctx->mmap_changing: non-cooperative events queued and not yet read. */
  private changing = 0;
  private readonly pending: Uwq[] = [];
  private readonly waiting: Uwq[] = [];
  private readonly events: UffdMsg[] = [];
  /** The fork events' new contexts, by parent ctx, while a fork is under way (dup_userfaultfd()'s fcs list). @internal */
  forkChild: UserfaultfdCtx | null = null;
  private inHandler = false;

  constructor(
    /** ctx->mm: the address space it serves. */
    readonly process: MmProcess,
    readonly id: number,
    /** userfaultfd(2)'s flags: O_NONBLOCK, O_CLOEXEC, UFFD_USER_MODE_ONLY. */
    readonly flags = 0,
  ) {}

  /** UFFDIO_API has been done (UFFD_FEATURE_INITIALIZED). */
  get initialized(): boolean {
    return this.features !== 0;
  }

  /** ctx->mmap_changing: mfill and move ioctls fail with EAGAIN until the events are read. */
  get mmapChanging(): boolean {
    return this.changing > 0;
  }

  /** Messages that read() would return now, oldest first (faults before events). */
  get messages(): readonly UffdMsg[] {
    return [...this.pending.map((u) => u.msg), ...this.events];
  }

  /** Faults waiting for this userfaultfd, read or not. */
  get waitingFaults(): number {
    return this.pending.length + this.waiting.length;
  }

  private get kernel(): MmKernel {
    return this.process.kernel;
  }

  private feature(f: number): boolean {
    return (this.features & f) !== 0;
  }

  // ---- UFFDIO_API, UFFDIO_REGISTER, UFFDIO_UNREGISTER, read(), close() ----------------------

  /**
   * UFFDIO_API (userfaultfd_api()): enables `features` once. Returns what the kernel writes back:
   * every feature it has and the ioctls of the file. EINVAL for another api than UFFD_API, an
   * unknown feature or a second call.
   */
  api(features = 0, api = UFFD_API): { readonly api: number; readonly features: number; readonly ioctls: readonly string[] } {
    return this.call("UFFDIO_API", () => `ioctl(UFFDIO_API, { api: 0x${api.toString(16)}, features: 0x${features.toString(16)} })`, () => {
      if (api !== UFFD_API) throw new CowsimError("EINVAL", `UFFDIO_API: api 0x${api.toString(16)} is not UFFD_API (0xaa)`);
      if (!Number.isInteger(features) || features < 0 || features > 0xffffffff) throw new CowsimError("EINVAL", `UFFDIO_API: features ${features} is no feature mask`);
      // UFFD_FEATURE_WP_ASYNC implies WP_UNPOPULATED (the step's description keeps what was asked)
      const enabled = features & UFFD_FEATURE_WP_ASYNC ? features | UFFD_FEATURE_WP_UNPOPULATED : features;
      const unknown = enabled & ~UFFD_API_FEATURES;
      if (unknown) throw new CowsimError("EINVAL", `UFFDIO_API: feature bits 0x${unknown.toString(16)} are not offered by Linux 6.12`);
      if (this.initialized) throw new CowsimError("EINVAL", `UFFDIO_API: userfaultfd ${this.id} already did its UFFDIO_API handshake`);
      this.features = (enabled | UFFD_FEATURE_INITIALIZED) >>> 0;
      return { api: UFFD_API, features: UFFD_API_FEATURES, ioctls: UFFD_API_IOCTLS };
    }, true);
  }

  /**
   * UFFDIO_REGISTER (userfaultfd_register()): registers every VMA in [start, start+len) with
   * the modes (MISSING, WP, MINOR), splitting and merging VMAs. Returns the range ioctls
   * allowed. Errors: EINVAL (no mode, unknown mode, bad range, no VMA in it, a VMA that cannot
   * take these modes — MINOR outside shmem, a VM_SHARED anonymous… — ), EPERM (a VMA without
   * VM_MAYWRITE), EBUSY (a VMA registered with another userfaultfd), ENOMEM (the mm is gone).
   */
  register(start: number, len: number, mode: number): { readonly ioctls: readonly string[] } {
    return this.call("UFFDIO_REGISTER", ioctlText("UFFDIO_REGISTER", "start", start, len, mode), () => {
      if (!Number.isInteger(mode) || mode === 0) throw new CowsimError("EINVAL", "UFFDIO_REGISTER: no mode given");
      if (mode & ~UFFD_API_REGISTER_MODES) throw new CowsimError("EINVAL", `UFFDIO_REGISTER: mode 0x${mode.toString(16)} has unknown bits`);
      const vmFlags = (mode & UFFDIO_REGISTER_MODE_MISSING ? VM_UFFD_MISSING : 0) |
        (mode & UFFDIO_REGISTER_MODE_WP ? VM_UFFD_WP : 0) | (mode & UFFDIO_REGISTER_MODE_MINOR ? VM_UFFD_MINOR : 0);
      validateRange("UFFDIO_REGISTER", start, len);
      if (!this.process.alive) throw new CowsimError("ENOMEM", `UFFDIO_REGISTER: the mm of pid ${this.process.pid} is gone`);
      const end = start + len;
      const p = this.process;
      const vmas = p.vmas.overlapping(start, end);
      if (vmas.length === 0) throw new CowsimError("EINVAL", `UFFDIO_REGISTER: no VMA in ${hex(start)}-${hex(end)}`);
      const wpAsync = this.feature(UFFD_FEATURE_WP_ASYNC);
      for (const v of vmas) {
        if (!vma_can_userfault(v, vmFlags, wpAsync)) throw new CowsimError("EINVAL", `UFFDIO_REGISTER: ${v.describe()} cannot take ${modeNames(mode)} (vma_can_userfault())`);
        if (!(v.flags & VM_MAYWRITE)) throw new CowsimError("EPERM", `UFFDIO_REGISTER: ${v.describe()} has no VM_MAYWRITE`);
        if (v.uffdCtx && v.uffdCtx !== this) throw new CowsimError("EBUSY", `UFFDIO_REGISTER: ${v.describe()} is registered with userfaultfd ${v.uffdCtx.id}`);
      }
      // userfaultfd_register_range(): the VMAs that change are cut to the range, then merged again
      const k = this.kernel;
      const changes = vmas.filter((v) => !(v.uffdCtx === this && (v.flags & vmFlags) === vmFlags));
      if (changes.length > 0) {
        splitAround(k, p, Math.max(start, changes[0]!.start), Math.min(end, changes[changes.length - 1]!.end));
        for (const v of p.vmas.overlapping(start, end)) {
          if (v.uffdCtx === this && (v.flags & vmFlags) === vmFlags) continue;
          v.flags = (v.flags & ~VM_UFFD_FLAGS) | vmFlags;
          v.uffdCtx = this;
        }
        mergeRange(k, p, start, end);
      }
      let ioctls: readonly string[] = UFFD_API_RANGE_IOCTLS;
      if (!(mode & UFFDIO_REGISTER_MODE_WP)) ioctls = ioctls.filter((n) => n !== "UFFDIO_WRITEPROTECT");
      if (!(mode & UFFDIO_REGISTER_MODE_MINOR)) ioctls = ioctls.filter((n) => n !== "UFFDIO_CONTINUE");
      return { ioctls };
    });
  }

  /**
   * UFFDIO_UNREGISTER (userfaultfd_unregister()): every VMA of the range leaves its userfaultfd
   * (whichever it is, as in Linux); faults waiting in a missing-mode range are woken; uffd-wp
   * bits and markers are cleared (userfaultfd_clear_vma()'s uffd_wp_range(), f369b07c8614).
   */
  unregister(start: number, len: number): void {
    this.call("UFFDIO_UNREGISTER", ioctlText("UFFDIO_UNREGISTER", "start", start, len), () => {
      validateRange("UFFDIO_UNREGISTER", start, len);
      if (!this.process.alive) throw new CowsimError("ENOMEM", `UFFDIO_UNREGISTER: the mm of pid ${this.process.pid} is gone`);
      const end = start + len;
      const p = this.process;
      const vmas = p.vmas.overlapping(start, end);
      if (vmas.length === 0) throw new CowsimError("EINVAL", `UFFDIO_UNREGISTER: no VMA in ${hex(start)}-${hex(end)}`);
      const wpAsync = this.feature(UFFD_FEATURE_WP_ASYNC);
      for (const v of vmas) {
        if (!vma_can_userfault(v, v.flags, wpAsync)) throw new CowsimError("EINVAL", `UFFDIO_UNREGISTER: ${v.describe()} cannot be registered at all`);
      }
      const registered = vmas.filter((v) => v.uffdCtx !== null);
      if (registered.length === 0) return;
      clearRange(this.kernel, p, Math.max(start, registered[0]!.start), Math.min(end, registered[registered.length - 1]!.end));
    });
  }

  /**
   * read(2) of the file (userfaultfd_ctx_read()): the oldest fault not yet read — which then
   * waits on fault_wqh until woken — else the oldest event, which is done once read. EAGAIN when
   * nothing is there (a blocking read would sleep; here no other thread could wake it), EINVAL
   * before UFFDIO_API.
   */
  read(): UffdMsg {
    if (!this.initialized) throw new CowsimError("EINVAL", `read: userfaultfd ${this.id} did no UFFDIO_API handshake yet`);
    const uwq = this.pending.shift();
    if (uwq) {
      this.waiting.push(uwq);
      return uwq.msg;
    }
    const ev = this.events.shift();
    if (!ev) throw new CowsimError("EAGAIN", `read: no message on userfaultfd ${this.id}`);
    // userfaultfd_event_complete(): the event's waiter goes on, mmap_changing drops
    this.changing--;
    return ev;
  }

  /**
   * close() (userfaultfd_release()): every VMA registered with it is unregistered (uffd-wp
   * state cleared), waiting faults are woken and retry without it.
   */
  close(): void {
    if (this.released) return;
    this.released = true;
    const p = this.process;
    const k = this.kernel;
    if (p.alive) {
      k.syscall(p.pid, `close(userfaultfd ${this.id})`, () => {
        for (const v of [...p.vmas]) if (v.uffdCtx === this) clearRange(k, p, v.start, v.end);
      });
    }
    this.wakeRange(0, 0);
    this.events.length = 0;
    this.changing = 0;
    k.userfaultfds.delete(this);
  }

  // ---- resolving faults ---------------------------------------------------------------------

  /**
   * UFFDIO_COPY (userfaultfd_copy(), mfill_atomic_pte_copy(), shmem_mfill_atomic_pte()): fills
   * none (or marker) PTEs of [dst, dst+len) with new pages holding `value` — or, with `src`, the
   * values the handler's process reads at src…src+len — mapped write-protected with
   * UFFDIO_COPY_MODE_WP; wakes the range's faults unless MODE_DONTWAKE. Returns the bytes
   * copied; a partial or failed copy throws UffdRangeError (EEXIST for a page already there,
   * ENOENT for no registered VMA covering the range, EAGAIN while mmap_changing, EINVAL…).
   */
  copy(dst: number, len: number, opts: UffdioCopyOptions = {}): number {
    return this.mfillIoctl(IOCTL_COPY, dst, len, opts.mode ?? 0, opts);
  }

  /** UFFDIO_ZEROPAGE (mfill_atomic_pte_zeropage()): maps the zero page into none PTEs (a marker is not none: EEXIST). */
  zeropage(start: number, len: number, mode = 0): number {
    return this.mfillIoctl(IOCTL_ZEROPAGE, start, len, mode, null);
  }

  /**
   * UFFDIO_CONTINUE (mfill_atomic_pte_continue()): maps the shmem pages already in the page
   * cache (a minor fault's page) into none PTEs; EFAULT where the page cache has none.
   */
  continue(start: number, len: number, mode = 0): number {
    return this.mfillIoctl(IOCTL_CONTINUE, start, len, mode, null);
  }

  /** UFFDIO_POISON (mfill_atomic_pte_poison()): PTE_MARKER_POISONED in none PTEs: any later access is SIGBUS. */
  poison(start: number, len: number, mode = 0): number {
    return this.mfillIoctl(IOCTL_POISON, start, len, mode, null);
  }

  /**
   * What the mfill ioctls share (userfaultfd_copy(), _zeropage(), _continue(), _poison()): EAGAIN
   * while mmap_changing, the range and the mode checked, then mfill_atomic() and the wake of
   * what was done, a short range reported as the kernel reports it. `copy` is UFFDIO_COPY's
   * source (its range is checked first, as copy_from_user() of the argument precedes the rest).
   */
  private mfillIoctl(io: MfillIoctl, start: number, len: number, mode: number, copy: UffdioCopyOptions | null): number {
    const name = io.name;
    return this.call(name, ioctlText(name, io.startField, start, len, mode), () => {
      this.checkChanging(name);
      if (copy?.src !== undefined) validateUnalignedRange(name, copy.src, len);
      validateRange(name, start, len);
      if (mode & ~(io.dontwake | io.wp)) throw new CowsimError("EINVAL", `${name}: mode 0x${mode.toString(16)} has unknown bits`);
      const values = copy === null ? 0 : this.copyValues(copy, len);
      const done = this.mfill(name, start, len, io.kind, (mode & io.wp) !== 0, values);
      return this.finishRange(name, start, len, done, (mode & io.dontwake) !== 0);
    });
  }

  /** What UFFDIO_COPY fills its pages with: one value for all, or those the handler reads at `src`. */
  private copyValues(copy: UffdioCopyOptions, len: number): number | readonly number[] {
    const value = copy.value ?? 0;
    if (!Number.isSafeInteger(value) || value < 0) throw new CowsimError("EINVAL", `UFFDIO_COPY: value ${value} is no page value (a non-negative integer)`);
    return copy.src !== undefined ? this.readSource(copy.src, len) : value;
  }

  /**
   * UFFDIO_MOVE (userfaultfd_move(), move_pages(), Linux 6.8): moves the exclusive anonymous
   * pages (swap entries, zero pages, whole PMD THPs where both sides allow) of [src, src+len)
   * to the none PTEs of [dst, dst+len) in the same mm, rewriting their anon_vma and index; wakes
   * the destination's faults unless MODE_DONTWAKE. Returns the bytes moved; a short or failed
   * move throws UffdRangeError (EBUSY for a page another process or a pin can see, EEXIST for a
   * destination that is not none, ENOENT for a source hole without ALLOW_SRC_HOLES, EAGAIN while
   * mmap_changing …). As in Linux, pages moved before an error stay moved.
   */
  move(dst: number, src: number, len: number, mode = 0): number {
    return this.call("UFFDIO_MOVE", moveText(dst, src, len, mode),
      () => userfaultfd_move(this.kernel, this, { dst, src, len, mode, caller: this.process }, (s, l) => { this.wakeRange(s, l); }));
  }

  /**
   * UFFDIO_WRITEPROTECT (mwriteprotect_range(), uffd_wp_range()): sets (MODE_WP) or clears the
   * uffd-wp bit of the range's entries through change_protection(); clearing wakes the range's
   * faults unless MODE_DONTWAKE. ENOENT when a VMA of the range is not registered for WP.
   */
  writeprotect(start: number, len: number, mode: number): void {
    this.call("UFFDIO_WRITEPROTECT", ioctlText("UFFDIO_WRITEPROTECT", "start", start, len, mode), () => {
      if (this.mmapChanging) throw new CowsimError("EAGAIN", "UFFDIO_WRITEPROTECT: the address space is changing (an event waits to be read)");
      validateRange("UFFDIO_WRITEPROTECT", start, len);
      if (mode & ~(UFFDIO_WRITEPROTECT_MODE_DONTWAKE | UFFDIO_WRITEPROTECT_MODE_WP)) throw new CowsimError("EINVAL", `UFFDIO_WRITEPROTECT: mode 0x${mode.toString(16)} has unknown bits`);
      const wp = (mode & UFFDIO_WRITEPROTECT_MODE_WP) !== 0;
      const dontwake = (mode & UFFDIO_WRITEPROTECT_MODE_DONTWAKE) !== 0;
      if (wp && dontwake) throw new CowsimError("EINVAL", "UFFDIO_WRITEPROTECT: MODE_WP with MODE_DONTWAKE");
      this.assertMm("UFFDIO_WRITEPROTECT");
      const end = start + len;
      const vmas = this.process.vmas.overlapping(start, end);
      if (vmas.length === 0) throw new CowsimError("ENOENT", `UFFDIO_WRITEPROTECT: no VMA in ${hex(start)}-${hex(end)}`);
      for (const v of vmas) {
        if (!(v.flags & VM_UFFD_WP)) throw new CowsimError("ENOENT", `UFFDIO_WRITEPROTECT: ${v.describe()} is not registered for write-protection`);
        uffd_wp_range(this.kernel, this.process, v, Math.max(start, v.start), Math.min(end, v.end), wp);
      }
      if (!wp && !dontwake) this.wakeRange(start, len);
    });
  }

  /** UFFDIO_WAKE (userfaultfd_wake()): the faults of the range retry. */
  wake(start: number, len: number): void {
    this.call("UFFDIO_WAKE", ioctlText("UFFDIO_WAKE", "start", start, len), () => {
      validateRange("UFFDIO_WAKE", start, len);
      this.wakeRange(start, len);
    });
  }

  /**
   * wake_userfault() / userfaultfd_wake_function(): every waiting fault whose address lies in
   * [start, start+len) — all of them for len 0 — leaves the queues and may retry.
   */
  wakeRange(start: number, len: number): number {
    return wakeList(this.pending, start, len) + wakeList(this.waiting, start, len);
  }

  // ---- the fault side -------------------------------------------------------------------------

  /**
   * handle_userfault(): the fault at `addr` is told to the handler and waits. With a handler
   * (onMessage), it runs at once; if it resolved the fault (woke it), the fault is retried —
   * this returns undefined. Otherwise returns the fault's own wait queue, which the access
   * waits on. With UFFD_FEATURE_SIGBUS the fault is SIGBUS (EFAULT) instead.
   * @internal
   */
  handleFault(p: MmProcess, addr: number, write: boolean, reason: number): WaitQueue | undefined {
    const k = this.kernel;
    if (this.feature(UFFD_FEATURE_SIGBUS)) {
      throw new CowsimError("EFAULT", `SIGBUS: pid ${p.pid}'s fault at ${hex(addr)} in a range of userfaultfd ${this.id}, which has UFFD_FEATURE_SIGBUS`);
    }
    if (this.released) return undefined; // a concurrent release: the fault retries without it
    const page = addr - pageOffset(addr);
    const flags = (write ? UFFD_PAGEFAULT_FLAG_WRITE : 0) | (reason === VM_UFFD_WP ? UFFD_PAGEFAULT_FLAG_WP : 0) |
      (reason === VM_UFFD_MINOR ? UFFD_PAGEFAULT_FLAG_MINOR : 0);
    const address = this.feature(UFFD_FEATURE_EXACT_ADDRESS) ? addr : page;
    const msg: Uwq["msg"] = this.feature(UFFD_FEATURE_THREAD_ID) ? { event: "pagefault", address, flags, ptid: p.pid } : { event: "pagefault", address, flags };
    const queue = k.waits.userfaultfd(() => `userfaultfd ${this.id}'s handler (a ${reasonName(reason)} fault at ${hex(addr)})`);
    const uwq: Uwq = { msg, queue };
    this.pending.push(uwq);
    k.stats.inc(Stat.userfaults);
    if (k.trace.points.handle_userfault.listening) k.trace.points.handle_userfault.emit({ pid: p.pid, address: addr, write, reason: reasonName(reason), uffd: this.id });
    if (this.runHandler() && queue.wakeups > 0) return undefined;
    return queue;
  }

  /** Runs the handler, once at a time; whether one ran. */
  private runHandler(): boolean {
    if (this.onMessage === null || this.inHandler) return false;
    this.inHandler = true;
    try {
      this.onMessage(this);
    } finally {
      this.inHandler = false;
    }
    return true;
  }

  /** A non-cooperative event is queued: mfill and move ioctls fail with EAGAIN until it is read. @internal */
  queueEvent(msg: UffdMsg): void {
    this.events.push(msg);
    this.changing++;
    this.runHandler();
  }

  // ---- helpers ----------------------------------------------------------------------------------

  /**
   * One ioctl as a step. Its description (`ioctl(NAME, { args })`, from ioctlText()) is written
   * only when someone reads it — a journal, an invariant failure — never on the success path.
   */
  private call<T>(name: string, describe: () => string, fn: () => T, beforeApi = false): T {
    if (!beforeApi && !this.initialized) throw new CowsimError("EINVAL", `${name}: userfaultfd ${this.id} did no UFFDIO_API handshake yet`);
    if (this.released) throw new CowsimError("EBADF", `userfaultfd ${this.id} is closed`);
    const p = this.process;
    if (!p.alive) return fn();
    return this.kernel.syscall(p.pid, describe, fn);
  }

  private checkChanging(call: string): void {
    if (this.mmapChanging) throw new UffdRangeError("EAGAIN", `${call}: the address space is changing (an event waits to be read)`, -ERRNO.EAGAIN);
  }

  private assertMm(call: string): void {
    if (!this.process.alive) throw new CowsimError("ESRCH", `${call}: the mm of pid ${this.process.pid} is gone`);
  }

  /** copy_from_user() of the source range, in the handler's process (its mm, which faults as usual). */
  private readSource(src: number, len: number): number[] {
    const out: number[] = [];
    try {
      for (let a = src; a < src + len; a += PAGE_SIZE) out.push(this.process.read(a));
    } catch (e) {
      if (e instanceof CowsimError && e.errno === "EFAULT") throw new UffdRangeError("EFAULT", `UFFDIO_COPY: the source ${hex(src)} cannot be read`, -ERRNO.EFAULT);
      throw e;
    }
    return out;
  }

  /** mfill_atomic(): the checks of the destination VMA, then the pages; returns the pages done. */
  private mfill(call: string, dst: number, len: number, kind: number, wp: boolean, value: number | readonly number[]): { done: number; errno: number } {
    this.assertMm(call);
    const k = this.kernel;
    const p = this.process;
    const vma = p.vmas.lookup(dst);
    // uffd_mfill_lock(): find_vma_and_prepare_anon(), validate_dst_vma()
    if (vma === null || dst + len > vma.end || vma.uffdCtx === null) {
      throw new UffdRangeError("ENOENT", `${call}: no VMA registered with a userfaultfd covers ${hex(dst)}-${hex(dst + len)}`, -ERRNO.ENOENT);
    }
    if (wp && !(vma.flags & VM_UFFD_WP)) throw new UffdRangeError("EINVAL", `${call}: MODE_WP in ${vma.describe()}, which is not registered for write-protection`, -ERRNO.EINVAL);
    const shmem = vma.shmem;
    if (kind === C.MFILL_FILE && !shmem) throw new UffdRangeError("EINVAL", `${call}: ${vma.describe()} is not shmem`, -ERRNO.EINVAL);
    // find_vma_and_prepare_anon(): a private mapping (of shmem too) gets its anon_vma first
    if (vma.isCow && !vma.anonVma) anon_vma_prepare(k.anonVmas, vma, p.vmas, p.mm);
    const flags = (wp ? C.MFILL_WP : 0) | (vma.flags & VM_WRITE ? C.MFILL_VM_WRITE : 0) | (vma.flags & VM_SHARED ? C.MFILL_VM_SHARED : 0);
    const pages = len / PAGE_SIZE;
    const ops = k.ops;
    let done = 0;
    let errno = 0;
    // mfill_atomic_pte(): CONTINUE maps the page cache's page; COPY and ZEROPAGE into a shared
    // mapping fill the page cache (shmem_mfill_atomic_pte()), into a private one anonymous memory
    if (shmem && (kind === C.MFILL_FILE || (kind === C.MFILL_COPY && vma.flags & VM_SHARED) || (kind === C.MFILL_ZEROPAGE && vma.flags & VM_SHARED))) {
      for (; done < pages && errno === 0; done++) {
        const addr = dst + done * PAGE_SIZE;
        const r = this.fillShmemPage(vma, shmem, addr, kind, typeof value === "number" ? value : value[done]!, flags);
        if (r !== 0) { errno = r; break; }
      }
    } else if (typeof value === "number") {
      const lo = value >>> 0;
      const hi = Math.floor(value / 2 ** 32) >>> 0;
      const r = ops.mfillAtomicRange(p.mm, dst, pages, kind, vma.anonVma?.id ?? 0, vma.index(dst), vma.pageProt, lo, hi, flags);
      done = r.done;
      errno = r.errno;
      if (done > 0) this.told(p, dst, done, kindName(kind), vma, kind === C.MFILL_COPY ? value : null);
    } else {
      for (; done < pages; done++) {
        const addr = dst + done * PAGE_SIZE;
        const v = value[done]!;
        const r = ops.mfillAtomicRange(p.mm, addr, 1, kind, vma.anonVma?.id ?? 0, vma.index(addr), vma.pageProt, v >>> 0, Math.floor(v / 2 ** 32) >>> 0, flags);
        if (r.done === 0) { errno = r.errno; break; }
        this.told(p, addr, 1, kindName(kind), vma, v);
      }
    }
    if (errno !== 0 && done === 0) {
      const name = errnoOf(errno);
      throw new UffdRangeError(name, `${call}: ${describeMfillError(name, dst)}`, -errno);
    }
    k.stats.inc(Stat.uffdFilled, done);
    return { done, errno };
  }

  /**
   * One page of shmem_mfill_atomic_pte() (a new page-cache page holding `value`, or zeroed for
   * ZEROPAGE; EEXIST when the page cache has one) or mfill_atomic_pte_continue() (the page
   * cache's page, swapped in if need be; EFAULT when it has none), then mapped. Returns 0 or the
   * errno number.
   */
  private fillShmemPage(vma: Vma, shmem: ShmemFile, addr: number, kind: number, value: number, flags: number): number {
    const k = this.kernel;
    const ops = k.ops;
    const p = this.process;
    const index = vma.index(addr);
    let pfn: number;
    let fresh = false;
    if (kind === C.MFILL_FILE) {
      const got = shmem_get_folio(k, shmem, index, "noalloc", vma);
      if (got === null) return ERRNO.EFAULT;
      pfn = got;
    } else {
      if (index >= shmem.sizePages) return ERRNO.EFAULT;
      if (shmem_get_entry(shmem, index) !== null) return ERRNO.EEXIST;
      const got = ops.tryAllocPage(C.GFP_ZERO);
      if (got === null) return ERRNO.ENOMEM;
      pfn = got;
      fresh = true;
      if (kind === C.MFILL_COPY) ops.setPageTag(pfn, value);
      shmem_add_to_page_cache(ops, shmem, index, pfn);
      ops.folioAddLru(pfn);
    }
    const r = ops.mfillAtomicRange(p.mm, addr, 1, C.MFILL_FILE, 0, 0, vma.pageProt, pfn, 0, flags);
    // the allocation's reference: the page cache holds its own now
    if (fresh) ops.folioPutRefs(pfn, 1);
    if (r.done === 0) return r.errno;
    this.told(p, addr, 1, kind === C.MFILL_FILE ? "continue" : kind === C.MFILL_ZEROPAGE ? "zeropage" : "copy", vma, kind === C.MFILL_COPY ? value : null);
    return 0;
  }

  /** The mfill tracepoint (the oracle learns what the handler put there). */
  private told(p: MmProcess, start: number, pages: number, mode: "copy" | "zeropage" | "poison" | "continue", vma: Vma, value: number | null): void {
    const k = this.kernel;
    if (!k.trace.points.mfill_atomic.listening) return;
    k.trace.points.mfill_atomic.emit({
      pid: p.pid, start, pages, mode, value, objId: vma.shmem ? vma.shmem.id : 0, index: vma.shmem ? vma.index(start) : 0,
    });
  }

  /** userfaultfd_copy()'s tail: wake the range done, and report a short one as the kernel does. */
  private finishRange(call: string, start: number, len: number, r: { done: number; errno: number }, dontwake: boolean): number {
    const bytes = r.done * PAGE_SIZE;
    if (!dontwake) this.wakeRange(start, bytes);
    if (bytes !== len) {
      const name = errnoOf(r.errno);
      throw new UffdRangeError("EAGAIN", `${call}: ${r.done} of ${len / PAGE_SIZE} pages done, then ${name} (${describeMfillError(name, start + bytes)})`, bytes);
    }
    return bytes;
  }
}

/**
 * A range ioctl's step text, written when read. Made here, the closure's scope holds these few
 * values and nothing else of the call: a journal keeps one per ioctl for a long time.
 */
function ioctlText(name: string, field: string, start: number, len: number, mode?: number): () => string {
  return mode === undefined ? () => `ioctl(${name}, { ${field}: ${hex(start)}, len: ${hex(len)} })`
    : () => `ioctl(${name}, { ${field}: ${hex(start)}, len: ${hex(len)}, mode: ${mode} })`;
}

/** UFFDIO_MOVE's step text, as ioctlText(). */
function moveText(dst: number, src: number, len: number, mode: number): () => string {
  return () => `ioctl(UFFDIO_MOVE, { dst: ${hex(dst)}, src: ${hex(src)}, len: ${hex(len)}, mode: ${mode} })`;
}

/** The faults of `list` in [start, start+len) (all for len 0) leave it and are woken; how many. */
function wakeList(list: Uwq[], start: number, len: number): number {
  let n = 0;
  for (let i = list.length - 1; i >= 0; i--) {
    const u = list[i]!;
    if (len && (start > u.msg.address || start + len <= u.msg.address)) continue;
    list.splice(i, 1);
    u.queue.wake();
    n++;
  }
  return n;
}

function errnoOf(n: number): ErrnoName {
  const e = (Object.keys(ERRNO) as ErrnoName[]).find((name) => ERRNO[name] === n);
  if (!e) throw new Error(`cowsim: mfill stopped with errno ${n}`);
  return e;
}

function describeMfillError(name: ErrnoName, addr: number): string {
  return name === "EEXIST" ? `the page at ${hex(addr)} is already mapped`
    : name === "ENOMEM" ? `no frame or page table for ${hex(addr)}`
      : name === "EFAULT" ? `the page cache has no page for ${hex(addr)}`
        : `${hex(addr)} failed`;
}

function kindName(kind: number): "copy" | "zeropage" | "poison" | "continue" {
  return kind === C.MFILL_COPY ? "copy" : kind === C.MFILL_ZEROPAGE ? "zeropage" : kind === C.MFILL_POISON ? "poison" : "continue";
}

function reasonName(reason: number): "missing" | "wp" | "minor" {
  return reason === VM_UFFD_WP ? "wp" : reason === VM_UFFD_MINOR ? "minor" : "missing";
}

function modeNames(mode: number): string {
  return [mode & UFFDIO_REGISTER_MODE_MISSING ? "MISSING" : "", mode & UFFDIO_REGISTER_MODE_WP ? "WP" : "", mode & UFFDIO_REGISTER_MODE_MINOR ? "MINOR" : ""]
    .filter(Boolean).join("|");
}

/** validate_unaligned_range(): a length of whole pages, inside the user address space. */
function validateUnalignedRange(call: string, start: number, len: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(len) || start < 0) throw new CowsimError("EINVAL", `${call}: ${hex(start)}+${hex(len)} is no range`);
  // (a safe integer's low bits survive `&`; `%` of an address above 2^31 is a float remainder)
  if (len & (PAGE_SIZE - 1)) throw new CowsimError("EINVAL", `${call}: length ${hex(len)} is not a multiple of the page size`);
  if (len === 0) throw new CowsimError("EINVAL", `${call}: empty range`);
  if (start >= TASK_SIZE || len > TASK_SIZE - start) throw new CowsimError("EINVAL", `${call}: ${hex(start)}+${hex(len)} leaves the user address space`);
}

/** validate_range(): validate_unaligned_range() of a page-aligned start. */
function validateRange(call: string, start: number, len: number): void {
  if (Number.isSafeInteger(start) && start & (PAGE_SIZE - 1)) throw new CowsimError("EINVAL", `${call}: ${hex(start)} is not page-aligned`);
  validateUnalignedRange(call, start, len);
}

/**
 * vma_can_userfault(): MINOR only on shmem; uffd-wp alone with WP_ASYNC anywhere; otherwise
 * anonymous memory and shmem (MAP_SHARED anonymous memory is shmem).
 */
export function vma_can_userfault(vma: Vma, vmFlags: number, wpAsync: boolean): boolean {
  vmFlags &= VM_UFFD_FLAGS;
  if ((vmFlags & VM_UFFD_MINOR) && vma.shmem === null) return false;
  if (wpAsync && vmFlags === VM_UFFD_WP) return true;
  return vma.isPrivateAnon || vma.shmem !== null;
}

/** userfaultfd_wp_use_markers(): uffd-wp markers for none PTEs — always on shmem, on anonymous memory with WP_UNPOPULATED. */
export function userfaultfd_wp_use_markers(vma: Vma): boolean {
  if (!(vma.flags & VM_UFFD_WP)) return false;
  if (vma.shmem !== null) return true;
  return vma.uffdCtx !== null && (vma.uffdCtx.features & UFFD_FEATURE_WP_UNPOPULATED) !== 0;
}

/**
 * uffd_wp_range(): change_protection() with MM_CP_UFFD_WP (set, and markers where
 * userfaultfd_wp_use_markers()) or MM_CP_UFFD_WP_RESOLVE (clear, markers dropped; with
 * MM_CP_TRY_CHANGE_WRITABLE under the 6.2 write-upgrade rule).
 */
export function uffd_wp_range(k: MmKernel, p: MmProcess, vma: Vma, start: number, end: number, enable: boolean): void {
  let cp = enable ? C.MM_CP_UFFD_WP : C.MM_CP_UFFD_WP_RESOLVE;
  if (enable && userfaultfd_wp_use_markers(vma)) cp |= C.CP_UFFD_USE_MARKERS;
  const tryWritable = !enable && k.strategy.mprotectWriteUpgrade && !(vma.flags & VM_SHARED) && (vma.flags & VM_WRITE) !== 0;
  if (tryWritable) cp |= C.MM_CP_TRY_CHANGE_WRITABLE;
  cp |= (vma.flags & VM_WRITE ? C.CP_VM_WRITE : 0) | (vma.flags & VM_SHARED ? C.CP_VM_SHARED : 0);
  const { records } = k.core.changeProtection(p.mm, start, end, vma.pageProt, cp);
  for (const r of records) {
    split_huge_pmd(k, p, vma, r.address, "change_pmd_range(): partial");
    const to = Math.min(end, r.address - (r.address % (512 * PAGE_SIZE)) + 512 * PAGE_SIZE);
    k.core.changeProtection(p.mm, r.address, to, vma.pageProt, cp);
  }
  k.stats.inc(enable ? Stat.uffdWpProtects : Stat.uffdWpResolves);
}

/** userfaultfd_clear_vma() over [start, end): VMAs leave their userfaultfd, uffd-wp state is cleared, missing faults are woken. */
function clearRange(k: MmKernel, p: MmProcess, start: number, end: number): void {
  splitAround(k, p, start, end);
  for (const v of p.vmas.overlapping(start, end)) {
    const ctx = v.uffdCtx;
    if (ctx === null) continue;
    if (v.flags & VM_UFFD_MISSING) ctx.wakeRange(v.start, v.end - v.start);
    if (v.flags & VM_UFFD_WP) uffd_wp_range(k, p, v, v.start, v.end, false);
    v.flags &= ~VM_UFFD_FLAGS;
    v.uffdCtx = null;
  }
  mergeRange(k, p, start, end);
}

/** vma_merge() over the VMAs of [start, end) and their neighbours, each survivor once. */
function mergeRange(k: MmKernel, p: MmProcess, start: number, end: number): void {
  let v = p.vmas.overlapping(start, end)[0] ?? null;
  while (v !== null && v.start <= end) {
    v = mergeNeighbours(k, p, v);
    v = p.vmas.next(v);
  }
  p.vmas.invalidate();
}

// ---- hooks of the fault path and of the non-cooperative events ------------------------------------

/**
 * The userfaultfd of `vma` and whether a fault of `reason` is its to handle
 * (userfaultfd_missing(), userfaultfd_wp(), userfaultfd_minor()).
 */
export function userfaultfdFor(vma: Vma, reason: number): UserfaultfdCtx | null {
  return vma.flags & reason ? vma.uffdCtx : null;
}

/** userfaultfd_wp_async(): uffd-wp faults resolve themselves (UFFD_FEATURE_WP_ASYNC): the bit is just cleared. */
export function userfaultfd_wp_async(vma: Vma): boolean {
  return vma.uffdCtx !== null && (vma.uffdCtx.features & UFFD_FEATURE_WP_ASYNC) !== 0;
}

/**
 * dup_userfaultfd(): a VMA copied by fork keeps its registration only when its userfaultfd has
 * UFFD_FEATURE_EVENT_FORK — then with a new userfaultfd of the child (one per parent's), which
 * the parent's reads as a UFFD_EVENT_FORK message once the fork is done
 * (dup_userfaultfd_complete()). Otherwise the child's VMA is plain memory, and fork drops its
 * uffd-wp bits (the copy sees no VM_UFFD_WP).
 */
export function dup_userfaultfd(k: MmKernel, child: MmProcess, vma: Vma, made: UserfaultfdCtx[]): void {
  const octx = vma.uffdCtx;
  if (octx === null) return;
  if (!(octx.features & UFFD_FEATURE_EVENT_FORK) || octx.released) {
    vma.flags &= ~VM_UFFD_FLAGS;
    vma.uffdCtx = null;
    return;
  }
  if (octx.forkChild === null) {
    const nctx = newUserfaultfd(k, child, octx.flags);
    nctx.features = octx.features;
    octx.forkChild = nctx;
    made.push(octx);
  }
  vma.uffdCtx = octx.forkChild;
}

/** dup_userfaultfd_complete(): each parent userfaultfd gets its UFFD_EVENT_FORK. */
export function dup_userfaultfd_complete(made: readonly UserfaultfdCtx[], failed: boolean): void {
  for (const octx of made) {
    const nctx = octx.forkChild!;
    octx.forkChild = null;
    if (failed) nctx.close();
    else octx.queueEvent({ event: "fork", ufd: nctx });
  }
}

/**
 * mremap_userfaultfd_prep() / _complete(): a moved VMA stays registered when its userfaultfd
 * has UFFD_FEATURE_EVENT_REMAP, which then reads a UFFD_EVENT_REMAP; otherwise the new VMA is
 * plain memory.
 */
export function mremap_userfaultfd(moved: Vma, from: number, to: number, len: number): void {
  const ctx = moved.uffdCtx;
  if (ctx === null) return;
  if (!(ctx.features & UFFD_FEATURE_EVENT_REMAP)) {
    moved.flags &= ~VM_UFFD_FLAGS;
    moved.uffdCtx = null;
    return;
  }
  ctx.queueEvent({ event: "remap", from, to, len });
}

/** userfaultfd_remove(): MADV_DONTNEED / MADV_REMOVE of a range of a VMA whose userfaultfd has UFFD_FEATURE_EVENT_REMOVE. */
export function userfaultfd_remove(vma: Vma, start: number, end: number): void {
  const ctx = vma.uffdCtx;
  if (ctx === null || !(ctx.features & UFFD_FEATURE_EVENT_REMOVE)) return;
  ctx.queueEvent({ event: "remove", start, end });
}

/**
 * userfaultfd_unmap_prep() / userfaultfd_unmap_complete(): munmap of [start, end) tells each
 * userfaultfd with UFFD_FEATURE_EVENT_UNMAP that has a VMA there, once.
 */
export function userfaultfd_unmap_prep(vmas: readonly Vma[]): UserfaultfdCtx[] {
  const out: UserfaultfdCtx[] = [];
  for (const v of vmas) {
    const ctx = v.uffdCtx;
    if (ctx !== null && ctx.features & UFFD_FEATURE_EVENT_UNMAP && !out.includes(ctx)) out.push(ctx);
  }
  return out;
}

export function userfaultfd_unmap_complete(ctxs: readonly UserfaultfdCtx[], start: number, end: number): void {
  for (const ctx of ctxs) ctx.queueEvent({ event: "unmap", start, end });
}

/**
 * userfaultfd(2) (new_userfaultfd()): a userfaultfd for the mm of `p`. EINVAL for flags other
 * than O_CLOEXEC, O_NONBLOCK and UFFD_USER_MODE_ONLY. (Processes are privileged here:
 * vm.unprivileged_userfaultfd and CAP_SYS_PTRACE are not modelled.)
 */
export function newUserfaultfd(k: MmKernel, p: MmProcess, flags = 0): UserfaultfdCtx {
  if (!Number.isInteger(flags) || (flags & ~(O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY)) !== 0) {
    throw new CowsimError("EINVAL", `userfaultfd: flags 0x${(flags >>> 0).toString(16)} has bits other than O_CLOEXEC, O_NONBLOCK and UFFD_USER_MODE_ONLY`);
  }
  const ctx = new UserfaultfdCtx(p, k.nextUserfaultfdId(), flags);
  k.userfaultfds.add(ctx);
  return ctx;
}
