/**
 * What `cowsim bench` measures and prints, as data: one row per workload × strategy (× knob
 * variant × parameter point × seed), and the report that holds them. JSON output, the Markdown
 * and HTML reports, shard files and their merge all use these shapes.
 */

/** Counts from the event stream and the counters, for one run of one program. */
export interface BenchMetrics {
  /** COW copies (wp_page_copy() of a real page, fork's early copies, unshare copies) */
  readonly copies: number;
  /** write faults that kept the page (wp_page_reuse()) */
  readonly reuses: number;
  /** the oracle's verdicts on copies and reads */
  readonly necessaryCow: number;
  readonly unnecessaryCow: number;
  readonly missedCow: number;
  readonly wrongCow: number;
  /** faults by kind: anon, zeroPage, wp, swap, uffd, thp, … (the fault tracepoints' kinds) */
  readonly faults: Readonly<Record<string, number>>;
  /** most frames in use at once */
  readonly framesPeak: number;
  readonly swapOuts: number;
  readonly swapIns: number;
  /** pages pinned or referenced by GUP, and GUP calls that failed */
  readonly gupPages: number;
  readonly gupFailures: number;
  /** page loads and stores the program made */
  readonly accesses: number;
  /** steps that failed with an errno, by "op:ERRNO" */
  readonly failures: Readonly<Record<string, number>>;
  /** pinned pages a device read while the owner mapped another page (a wrong COW made visible) */
  readonly incoherentPins: number;
  /** copies fork made of possibly pinned pages (part of copies: the forkCopies counter), for the cost model */
  readonly forkCopies?: number;
  /** PTEs fork shared with a child (copy_page_range(): the ptesSharedAtFork counter), for the cost model */
  readonly ptesSharedAtFork?: number;
  /** present PTEs zapped (munmap, exit, MADV_DONTNEED: the ptesZapped counter), for the cost model */
  readonly ptesZapped?: number;
}

/** One point of the timeline: cumulative counts after a step. */
export interface TimelinePoint {
  readonly step: number;
  /** seconds since the run began */
  readonly t: number;
  readonly copies: number;
  readonly findings: number;
}

export interface BenchRow {
  readonly workload: string;
  readonly size: string;
  readonly params: Readonly<Record<string, number>>;
  readonly seed: number;
  readonly strategy: string;
  /** knobs set on top of the strategy's defaults (empty: its defaults) */
  readonly knobs: Readonly<Record<string, boolean>>;
  /** the knob variant of a sweep this row belongs to (absent: none named) */
  readonly variant?: string;
  /** transparent_hugepage/enabled when not the bench's default "madvise" */
  readonly thp?: string;
  readonly oracle: boolean;
  readonly metrics: BenchMetrics;
  /** simulated wall time of the run (kernel creation included), seconds */
  readonly seconds: number;
  /** steps per second and accesses per second of simulated work */
  readonly stepsPerSecond: number;
  readonly accessesPerSecond: number;
  readonly timeline: readonly TimelinePoint[];
  /** the cost model's estimate of the kernel time of this run, when a cost model was given */
  readonly estimate?: KernelEstimate;
  /** the same program timed on the host kernel (--vs-kernel) */
  readonly kernel?: KernelMeasurement;
}

/** The cost model's estimate: Σ count × measured cost per event. */
export interface KernelEstimate {
  readonly seconds: number;
  /** seconds by event kind */
  readonly byEvent: Readonly<Record<string, number>>;
  /** events the run had that the model has no cost for (not measurable on its machine), by kind */
  readonly unmodelled?: Readonly<Record<string, number>>;
}

/** A program run on the host kernel by the native companion. */
export interface KernelMeasurement {
  readonly seconds: number;
  /** host kernel seconds / simulated seconds (above 1: the simulator is faster) */
  readonly ratio: number;
  /** the estimate's error against this measurement: (estimate - measured) / measured */
  readonly estimateError?: number;
  /** steps that failed on the host, by "op:ERRNO" */
  readonly failures?: Readonly<Record<string, number>>;
  /** what the host does not support or allow, in words (no swap, userfaultfd not allowed …) */
  readonly notes?: readonly string[];
}

/** Per-event costs measured on the host kernel, in seconds per event. */
export interface CostModel {
  readonly machine: string;
  readonly costs: Readonly<Record<string, number>>;
  /** the host kernel release it was measured on */
  readonly kernel?: string;
  /** pages of each micro-program, and rounds (the median is kept) */
  readonly pages?: number;
  readonly rounds?: number;
  /** what could not be measured there, and why (no swap …) */
  readonly notes?: readonly string[];
  /** the version of the micro-programs (a cached model of another version is measured again) */
  readonly version?: number;
}

export interface BenchReport {
  readonly version: 1;
  /** describeMachine() of the machine that ran it */
  readonly machine: string;
  /** how it was asked for: the command line or the sweep spec */
  readonly command: string;
  readonly rows: readonly BenchRow[];
  readonly costModel?: CostModel;
  /** the ids of the jobs run, in order: rows[i] is the run of jobs[i] */
  readonly jobs?: readonly string[];
}
