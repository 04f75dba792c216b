/**
 * Runs a workload program on a simulated kernel, step by step, through the public facade only —
 * the same calls an embedding program makes. A step that fails with an errno is counted and the
 * program goes on, as a real program that checks return values would; anything else is a bug
 * and propagates.
 */
import { CowsimError } from "../errno.js";
import {
  MADV_COLLAPSE, MADV_DONTFORK, MADV_DONTNEED, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_PAGEOUT, MADV_POPULATE_WRITE, MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE, MAP_PRIVATE, MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE, UFFD_FEATURE_MOVE,
  UFFD_USER_MODE_ONLY, UFFDIO_REGISTER_MODE_MISSING, UFFDIO_REGISTER_MODE_WP, UFFDIO_WRITEPROTECT_MODE_WP,
} from "../kernel.js";
import type { FixedBuffers, Kernel, MemoryRegion, Pipe, Process, Userfaultfd } from "../kernel.js";
import { forEachPage, pageCount, type Program, type Step } from "./program.js";

/** Where region r lives: fixed, 2 MiB aligned addresses with a 2 MiB gap, the same on the host. */
export const REGION_BASE = 0x7e00_0000_0000;
const HPAGE_BYTES = 2 << 20;

/** The address of every region of a program, by region number. */
export function regionAddresses(program: Program): number[] {
  const out: number[] = [];
  let at = REGION_BASE;
  for (const r of program.regions) {
    out.push(at);
    at += Math.ceil((r.pages * PAGE_SIZE) / HPAGE_BYTES) * HPAGE_BYTES + HPAGE_BYTES;
  }
  return out;
}

/**
 * Kernel sizes that fit a program: frames for every region twice over (a fork's copies) and
 * 16 MiB for page tables and the rest, swap as large; a workload's own kernelOptions() go on top.
 */
export function programKernelSizes(program: Program): { memory: number; swap: number } {
  const pages = program.regions.reduce((n, r) => n + Math.ceil(r.pages / 512) * 512, 0);
  const memory = 2 * pages * PAGE_SIZE + (16 << 20);
  return { memory, swap: memory };
}

const ADVICE = { dontneed: MADV_DONTNEED, pageout: MADV_PAGEOUT, collapse: MADV_COLLAPSE, populate_write: MADV_POPULATE_WRITE, dontfork: MADV_DONTFORK } as const;

export interface ExecuteResult {
  /** steps run */
  readonly steps: number;
  /** page accesses made (loads and stores) */
  readonly accesses: number;
  /** steps that failed, by "op:ERRNO" */
  readonly failures: Readonly<Record<string, number>>;
  /** pinned pages a device read while the owner mapped another page there (a wrong COW made visible) */
  readonly incoherentPins: number;
}

export interface ExecuteHooks {
  /** called after each step with its index */
  afterStep?(index: number, step: Step): void;
}

/** Runs `program` on `k` (a fresh kernel: the program spawns its first process). */
export function execute(k: Kernel, program: Program, hooks: ExecuteHooks = {}): ExecuteResult {
  return new Executor(k, program).run(hooks);
}

type Pinned = { user: FixedBuffers | MemoryRegion; kind: "rdma" | "io_uring"; proc: number; base: number; count: number };

class Executor {
  private readonly procs: (Process | undefined)[] = [];
  private readonly addr: number[];
  private readonly pins = new Map<number, Pinned>();
  private readonly pipes = new Map<number, Pipe>();
  private readonly uffds = new Map<number, Userfaultfd>();
  private readonly failures: Record<string, number> = {};
  private accesses = 0;
  private incoherentPins = 0;

  constructor(
    private readonly k: Kernel,
    private readonly program: Program,
  ) {
    this.addr = regionAddresses(program);
  }

  run(hooks: ExecuteHooks): ExecuteResult {
    this.procs[0] = this.k.spawn();
    const steps = this.program.steps;
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i]!;
      try {
        this.step(step);
      } catch (e) {
        if (!(e instanceof CowsimError)) throw e;
        const key = `${step.op}:${e.errno}`;
        this.failures[key] = (this.failures[key] ?? 0) + 1;
      }
      hooks.afterStep?.(i, step);
    }
    return { steps: steps.length, accesses: this.accesses, failures: this.failures, incoherentPins: this.incoherentPins };
  }

  private proc(n: number): Process {
    const p = this.procs[n];
    if (!p) throw new CowsimError("ESRCH", `workload ${this.program.workload}: process ${n} does not exist (yet, or any more)`);
    return p;
  }

  private page(region: number, page: number): number {
    return this.addr[region]! + page * PAGE_SIZE;
  }

  private step(s: Step): void {
    switch (s.op) {
      case "mmap": {
        const p = this.proc(s.proc);
        const flags = (s.shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
        p.mmap(this.addr[s.region]!, s.pages * PAGE_SIZE, PROT_READ | PROT_WRITE, flags);
        if (s.huge !== undefined) p.madvise(this.addr[s.region]!, s.pages * PAGE_SIZE, s.huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
        return;
      }
      case "munmap":
        this.proc(s.proc).munmap(this.addr[s.region]!, this.program.regions[s.region]!.pages * PAGE_SIZE);
        return;
      case "write": {
        const p = this.proc(s.proc);
        const base = this.addr[s.region]!;
        const set = s.pages;
        // page n gets value + n: a strided run's values step by its stride
        if ("list" in set) p.accessList(set.list.map((page) => base + page * PAGE_SIZE), true, set.list.map((page) => s.value + page));
        else if ((set.stride ?? 1) >= 1) p.writeRange(base + set.first * PAGE_SIZE, set.count, s.value + set.first, set.stride ?? 1, set.stride ?? 1);
        else forEachPage(set, (page) => p.write(base + page * PAGE_SIZE, s.value + page));
        this.accesses += pageCount(s.pages);
        return;
      }
      case "read": {
        const p = this.proc(s.proc);
        const base = this.addr[s.region]!;
        const set = s.pages;
        if ("list" in set) p.accessList(set.list.map((page) => base + page * PAGE_SIZE), false);
        else if ((set.stride ?? 1) >= 1) p.touchRange(base + set.first * PAGE_SIZE, set.count, set.stride ?? 1);
        else forEachPage(set, (page) => p.read(base + page * PAGE_SIZE));
        this.accesses += pageCount(s.pages);
        return;
      }
      case "fork":
        this.procs[s.child] = this.proc(s.proc).fork();
        return;
      case "exit":
        this.proc(s.proc).exit();
        this.procs[s.proc] = undefined;
        return;
      case "madvise":
        this.proc(s.proc).madvise(this.page(s.region, s.first), s.count * PAGE_SIZE, ADVICE[s.advice]);
        return;
      case "mprotect":
        this.proc(s.proc).mprotect(this.page(s.region, s.first), s.count * PAGE_SIZE, PROT_READ | (s.write ? PROT_WRITE : 0));
        return;
      case "pin": {
        const p = this.proc(s.proc);
        const at = this.page(s.region, s.first);
        const user = s.kind === "rdma" ? p.rdmaRegister(at, s.count * PAGE_SIZE, s.writable) : p.ioUringRegisterBuffers(at, s.count * PAGE_SIZE);
        this.pins.set(s.pin, { user, kind: s.kind, proc: s.proc, base: at, count: s.count });
        return;
      }
      case "unpin": {
        const pin = this.pins.get(s.pin);
        if (!pin) throw new CowsimError("EINVAL", `workload ${this.program.workload}: pin ${s.pin} is not held`);
        this.pins.delete(s.pin);
        pin.user.release();
        return;
      }
      case "dma_read": {
        const pin = this.pins.get(s.pin);
        if (!pin) throw new CowsimError("EINVAL", `workload ${this.program.workload}: pin ${s.pin} is not held`);
        const p = this.procs[pin.proc];
        const pfns = pin.user.pin.pfns;
        for (let i = 0; i < pin.user.pages; i++) {
          if (pin.kind === "rdma") (pin.user as MemoryRegion).remoteRead(i);
          else (pin.user as FixedBuffers).readFixed(i);
          // a long-term pin must stay on the page its owner maps (looked at without faulting)
          const mapped = p?.alive ? p.pfnAt(pin.base + i * PAGE_SIZE) : null;
          if (mapped !== null && mapped !== pfns[i]) this.incoherentPins++;
        }
        return;
      }
      case "vmsplice":
        this.pipes.set(s.pipe, this.proc(s.proc).vmsplice(this.page(s.region, s.first), s.count * PAGE_SIZE));
        return;
      case "pipe_read": {
        const pipe = this.pipes.get(s.pipe);
        if (!pipe) throw new CowsimError("EINVAL", `workload ${this.program.workload}: pipe ${s.pipe} does not exist`);
        this.pipes.delete(s.pipe);
        pipe.read();
        return;
      }
      case "reclaim":
        this.k.reclaim(s.pages);
        return;
      case "uffd_open": {
        const uffd = this.proc(s.proc).userfaultfd(UFFD_USER_MODE_ONLY);
        uffd.api(s.features.includes("MOVE") ? UFFD_FEATURE_MOVE : 0);
        this.uffds.set(s.uffd, uffd);
        return;
      }
      case "uffd_register": {
        const mode = (s.modes.includes("MISSING") ? UFFDIO_REGISTER_MODE_MISSING : 0) | (s.modes.includes("WP") ? UFFDIO_REGISTER_MODE_WP : 0);
        this.uffd(s.uffd).register(this.page(s.region, s.first), s.count * PAGE_SIZE, mode);
        return;
      }
      case "uffd_wp":
        this.uffd(s.uffd).writeprotect(this.page(s.region, s.first), s.count * PAGE_SIZE, s.on ? UFFDIO_WRITEPROTECT_MODE_WP : 0);
        return;
      case "uffd_move":
        this.uffd(s.uffd).move(this.page(s.dst, s.dstFirst), this.page(s.src, s.srcFirst), s.count * PAGE_SIZE);
        return;
      case "write_wp": {
        const p = this.proc(s.proc);
        const uffd = this.uffd(s.uffd);
        const base = this.addr[s.region]!;
        forEachPage(s.pages, (page) => {
          const at = base + page * PAGE_SIZE;
          const access = p.access(true, at, s.value + page);
          if (access.state === "blocked") {
            // the snapshotter thread: read the event, save the page (a copy outside the simulated
            // mm), lift the protection, which wakes the writer
            uffd.read();
            uffd.writeprotect(at, PAGE_SIZE, 0);
            access.resume();
          }
        });
        this.accesses += pageCount(s.pages);
        return;
      }
    }
  }

  private uffd(n: number): Userfaultfd {
    const u = this.uffds.get(n);
    if (!u) throw new CowsimError("EBADF", `workload ${this.program.workload}: userfaultfd ${n} is not open`);
    return u;
  }
}
