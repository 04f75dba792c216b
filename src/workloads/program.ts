/**
 * A workload is a program: a flat list of steps over numbered processes and named regions,
 * generated once from its parameters and seed. The same program runs on the simulator
 * (execute.ts) and, serialised by `programToText()`, on the host kernel (the native companion in
 * bench/kernel reads that text), so both sides do exactly the same work and the counts and times
 * compare. Everything random is drawn while generating; a program has no randomness left.
 *
 * Processes are numbered in creation order: 0 is the first, `fork` names the child's number.
 * Regions are numbered too; a region is an address range fixed at its `mmap` and inherited by
 * a fork, so a step names (process, region, pages) and means the same address in both.
 */

/** A set of page indices inside a region: a strided run, or an explicit list (drawn at generation). */
export type PageSet =
  | { readonly first: number; readonly count: number; readonly stride?: number }
  | { readonly list: readonly number[] };

/** How a region is mapped. */
export interface MapSpec {
  /** MAP_SHARED | MAP_ANONYMOUS instead of MAP_PRIVATE | MAP_ANONYMOUS */
  readonly shared?: boolean;
  /** MADV_HUGEPAGE after the mmap (the region is then 2 MiB aligned), or MADV_NOHUGEPAGE when false */
  readonly huge?: boolean;
}

export type Step =
  | ({ readonly op: "mmap"; readonly proc: number; readonly region: number; readonly pages: number } & MapSpec)
  | { readonly op: "munmap"; readonly proc: number; readonly region: number }
  /** one store per page: the page's first word becomes `value + page index` */
  | { readonly op: "write"; readonly proc: number; readonly region: number; readonly pages: PageSet; readonly value: number }
  /** one load per page */
  | { readonly op: "read"; readonly proc: number; readonly region: number; readonly pages: PageSet }
  | { readonly op: "fork"; readonly proc: number; readonly child: number }
  | { readonly op: "exit"; readonly proc: number }
  /** madvise() over a run of pages */
  | {
      readonly op: "madvise";
      readonly proc: number;
      readonly region: number;
      readonly first: number;
      readonly count: number;
      readonly advice: "dontneed" | "pageout" | "collapse" | "populate_write" | "dontfork";
    }
  /** mprotect() over a run of pages (a GC's or snapshotter's write-protect by the classic means) */
  | {
      readonly op: "mprotect";
      readonly proc: number;
      readonly region: number;
      readonly first: number;
      readonly count: number;
      readonly write: boolean;
    }
  /**
   * A long-term FOLL_PIN of a run of pages, as an RDMA memory region (ibv_reg_mr(): pin_user_pages
   * with FOLL_LONGTERM, FOLL_WRITE when writable) or io_uring's fixed buffers
   * (io_sqe_buffers_register(): FOLL_WRITE | FOLL_LONGTERM). The host side uses io_uring for both:
   * it pins the same way and needs no RDMA device.
   */
  | {
      readonly op: "pin";
      readonly proc: number;
      readonly region: number;
      readonly first: number;
      readonly count: number;
      readonly pin: number;
      readonly kind: "rdma" | "io_uring";
      readonly writable: boolean;
    }
  | { readonly op: "unpin"; readonly pin: number }
  /** DMA through a pin: the device reads every pinned page (and checks what it sees) */
  | { readonly op: "dma_read"; readonly pin: number }
  /** vmsplice() of a run of pages into a new pipe (FOLL_GET snapshot references) */
  | { readonly op: "vmsplice"; readonly proc: number; readonly region: number; readonly first: number; readonly count: number; readonly pipe: number }
  /** read the pipe to its end (the reader sees what was spliced), releasing its references */
  | { readonly op: "pipe_read"; readonly pipe: number }
  /** memory pressure: reclaim (swap out) up to `pages` pages of whatever is on the LRU */
  | { readonly op: "reclaim"; readonly pages: number }
  /** userfaultfd(UFFD_USER_MODE_ONLY) + UFFDIO_API with the features the steps need */
  | { readonly op: "uffd_open"; readonly proc: number; readonly uffd: number; readonly features: readonly ("MOVE" | "WP")[] }
  | {
      readonly op: "uffd_register";
      readonly uffd: number;
      readonly region: number;
      readonly first: number;
      readonly count: number;
      readonly modes: readonly ("MISSING" | "WP")[];
    }
  /** UFFDIO_WRITEPROTECT on (MODE_WP) or off over a run of pages */
  | { readonly op: "uffd_wp"; readonly uffd: number; readonly region: number; readonly first: number; readonly count: number; readonly on: boolean }
  /** UFFDIO_MOVE of a run of pages from one region to another (same mm) */
  | {
      readonly op: "uffd_move";
      readonly uffd: number;
      readonly src: number;
      readonly srcFirst: number;
      readonly dst: number;
      readonly dstFirst: number;
      readonly count: number;
    }
  /**
   * Writes to pages that may be write-protected by uffd-wp: each blocked write is resolved as a
   * snapshotter does (read the message, copy the old contents aside, UFFDIO_WRITEPROTECT off for
   * that page, let the write go on).
   */
  | { readonly op: "write_wp"; readonly proc: number; readonly uffd: number; readonly region: number; readonly pages: PageSet; readonly value: number };

export type StepOp = Step["op"];

/** A generated workload: its steps and what the generator chose. */
export interface Program {
  readonly workload: string;
  readonly seed: number;
  readonly params: Readonly<Record<string, number | string | boolean>>;
  readonly steps: readonly Step[];
  /** largest process number + 1 */
  readonly processes: number;
  /** pages of every region, by region number */
  readonly regions: readonly { readonly pages: number; readonly huge?: boolean; readonly shared?: boolean }[];
}

/** The page indices of a set, in order. */
export function pagesOf(set: PageSet): readonly number[] {
  if ("list" in set) return set.list;
  const stride = set.stride ?? 1;
  const out = new Array<number>(set.count);
  for (let i = 0; i < set.count; i++) out[i] = set.first + i * stride;
  return out;
}

/** How many pages a set holds. */
export function pageCount(set: PageSet): number {
  return "list" in set ? set.list.length : set.count;
}

/** Calls `fn` for each page of a set without building the list. */
export function forEachPage(set: PageSet, fn: (page: number) => void): void {
  if ("list" in set) {
    for (const p of set.list) fn(p);
    return;
  }
  const stride = set.stride ?? 1;
  for (let i = 0, p = set.first; i < set.count; i++, p += stride) fn(p);
}

/** Builds a program step by step, numbering processes, regions, pins, pipes and userfaultfds. */
export class ProgramBuilder {
  private readonly steps: Step[] = [];
  private readonly regions: { pages: number; huge?: boolean; shared?: boolean }[] = [];
  private procs = 1;
  private pins = 0;
  private pipes = 0;
  private uffds = 0;

  constructor(
    private readonly workload: string,
    private readonly seed: number,
    private readonly params: Readonly<Record<string, number | string | boolean>>,
  ) {}

  mmap(proc: number, pages: number, spec: MapSpec = {}): number {
    const region = this.regions.length;
    this.regions.push({ pages, ...spec });
    this.steps.push({ op: "mmap", proc, region, pages, ...spec });
    return region;
  }

  fork(proc: number): number {
    const child = this.procs++;
    this.steps.push({ op: "fork", proc, child });
    return child;
  }

  pin(proc: number, region: number, first: number, count: number, kind: "rdma" | "io_uring", writable: boolean): number {
    const pin = this.pins++;
    this.steps.push({ op: "pin", proc, region, first, count, pin, kind, writable });
    return pin;
  }

  vmsplice(proc: number, region: number, first: number, count: number): number {
    const pipe = this.pipes++;
    this.steps.push({ op: "vmsplice", proc, region, first, count, pipe });
    return pipe;
  }

  uffdOpen(proc: number, features: readonly ("MOVE" | "WP")[]): number {
    const uffd = this.uffds++;
    this.steps.push({ op: "uffd_open", proc, uffd, features });
    return uffd;
  }

  /** Any other step. */
  add(step: Step): this {
    this.steps.push(step);
    return this;
  }

  build(): Program {
    return {
      workload: this.workload,
      seed: this.seed,
      params: this.params,
      steps: this.steps,
      processes: this.procs,
      regions: this.regions,
    };
  }
}

/**
 * The program as text, one step per line (`op key=value …`; a page list as `list=3,17,…`), the
 * format the native companion reads. Lines are stable: the same program gives the same text.
 */
export function programToText(program: Program): string {
  const lines = [`# cowsim workload ${program.workload} seed=${program.seed}`, `processes ${program.processes}`];
  for (const step of program.steps) {
    const fields: string[] = [step.op];
    for (const [key, value] of Object.entries(step)) {
      if (key === "op") continue;
      if (key === "pages" && typeof value === "object") {
        const set = value as PageSet;
        if ("list" in set) fields.push(`list=${set.list.join(",")}`);
        else fields.push(`first=${set.first}`, `count=${set.count}`, `stride=${set.stride ?? 1}`);
      } else if (Array.isArray(value)) fields.push(`${key}=${value.join(",")}`);
      else if (typeof value === "boolean") fields.push(`${key}=${value ? 1 : 0}`);
      else fields.push(`${key}=${String(value)}`);
    }
    lines.push(fields.join(" "));
  }
  return lines.join("\n") + "\n";
}
