/**
 * Faults that can wait (include/linux/wait.h, mm/filemap.c folio_wait_bit()): a fault may end
 * handled, to be retried, or blocked on something another actor holds — a locked folio today;
 * a page under migration and a userfaultfd handler are the same mechanism. The access then
 * stands pending on that wait queue until the holder wakes it and the caller resumes it:
 * deterministically, in the order the caller chooses (scenarios, the library), or — with real
 * threads — as the holder lets go.
 */
import { CowsimError } from "../errno.js";

/** Why a fault waits. @public */
export type WaitReason = "folio-lock" | "migration" | "userfaultfd";

/** A wait queue: what faults block on, and who wakes them (wait_queue_head_t). @public */
export class WaitQueue {
  /** How many times it was woken: a waiter that saw a smaller number may retry. */
  private generation = 0;
  private sleepers = 0;
  private described: string | (() => string);

  constructor(
    readonly reason: WaitReason,
    /** What is waited for, e.g. "the lock of pfn 12" — or how to say it, when it is asked. */
    what: string | (() => string),
    /** Where the sleepers of short-lived queues (one per userfault) are counted, so none is kept after its fault. */
    private readonly tally: { sleepers: number } | null = null,
  ) {
    this.described = what;
  }

  /** What is waited for, e.g. "the lock of pfn 12". */
  get what(): string {
    const d = this.described;
    return typeof d === "string" ? d : (this.described = d());
  }

  /** Accesses waiting here now. */
  get waiters(): number {
    return this.sleepers;
  }

  /** wake_up_all(): every access waiting here may retry; returns how many wait. */
  wake(): number {
    this.generation++;
    return this.sleepers;
  }

  /** The wake count a waiter compares against. @internal */
  get wakeups(): number {
    return this.generation;
  }

  /** A waiter joins (prepare_to_wait()); returns the wake count it saw. @internal */
  enqueue(): number {
    this.sleepers++;
    if (this.tally !== null) this.tally.sleepers++;
    return this.generation;
  }

  /** A waiter leaves (finish_wait()). @internal */
  dequeue(): void {
    this.sleepers--;
    if (this.tally !== null) this.tally.sleepers--;
  }
}

/** Thrown inside the fault path to unwind to the access that must wait. @internal */
export class FaultBlocked extends Error {
  readonly queue: WaitQueue;

  constructor(queue: WaitQueue) {
    // control flow, not a failure: a stack trace would cost more than the whole fault
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`the fault waits for ${queue.what}`);
    Error.stackTraceLimit = limit;
    this.queue = queue;
  }
}

/**
 * A synchronous access whose fault blocked: nothing else can wake it in this thread, so it is
 * EDEADLK ("resource deadlock would occur"); `Process.access()` returns a pending access to
 * resume instead.
 */
export function wouldDeadlock(queue: WaitQueue, pid: number, addr: number): CowsimError {
  return new CowsimError("EDEADLK", `pid ${pid}'s fault at 0x${addr.toString(16)} waits for ${queue.what}, which only another actor can give up: ` +
    "use Process.access() and resume() it once woken");
}

/** The wait queues of one kernel, made on first use. */
export class WaitQueues {
  private readonly folios = new Map<number, WaitQueue>();
  private readonly migrations = new Map<number, WaitQueue>();

  /** The accesses asleep on userfault queues (each queue serves one fault and is not kept). */
  private readonly userfaults = { sleepers: 0 };

  /** Accesses waiting on any queue. */
  waiting(): number {
    let n = this.userfaults.sleepers;
    for (const q of this.folios.values()) n += q.waiters;
    for (const q of this.migrations.values()) n += q.waiters;
    return n;
  }

  /**
   * The queue of a folio under migration: migration_entry_wait_on_locked() sleeps on the
   * folio's lock bit, which the migration holds until remove_migration_ptes() is done.
   */
  migration(pfn: number): WaitQueue {
    let q = this.migrations.get(pfn);
    if (!q) this.migrations.set(pfn, (q = new WaitQueue("migration", `the migration of pfn ${pfn}`)));
    return q;
  }

  /** A queue of one userfault (handle_userfault()'s uwq): woken by the ioctl that resolves it. */
  userfaultfd(what: () => string): WaitQueue {
    return new WaitQueue("userfaultfd", what, this.userfaults);
  }

  /** The queue of a folio's lock (folio_wait_table()). */
  folio(pfn: number): WaitQueue {
    let q = this.folios.get(pfn);
    if (!q) this.folios.set(pfn, (q = new WaitQueue("folio-lock", `the lock of pfn ${pfn}`)));
    return q;
  }
}
