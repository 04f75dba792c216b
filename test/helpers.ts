import { Core, C, type CoreOptions, type CoreBuild } from "../src/core/index.js";
import { CowsimError } from "../src/errno.js";
import { beforeAll, afterAll } from "vitest";
import { Worker } from "node:worker_threads";
import { existsSync } from "node:fs";

/** Tests run on the debug build (asserts compiled in) unless COWSIM_TEST_BUILD says otherwise. */
export const BUILD = (process.env.COWSIM_TEST_BUILD ?? "debug") as CoreBuild;

export function makeCore(options: CoreOptions = {}): Core {
  return Core.create({ frames: 4096, maxMms: 16, maxThreads: 4, build: BUILD, ...options });
}

const bit = (b: number) => 2 ** b;
export const P = bit(C._PAGE_BIT_PRESENT);
export const W = bit(C._PAGE_BIT_RW);
export const U = bit(C._PAGE_BIT_USER);
export const A = bit(C._PAGE_BIT_ACCESSED);
export const D = bit(C._PAGE_BIT_DIRTY);
export const PROTNONE = bit(C._PAGE_BIT_PROTNONE);
/** vm_page_prot of a readable mapping (private writable mappings too: write comes by fault). */
export const PROT_READ = P | U;
export const PROT_SHARED_RW = P | U | W;

export const MB = 1 << 20;
export const GB = 1 << 30;
/** A typical mmap base, well above 4 GiB so addresses exercise the upper table levels. */
export const BASE = 0x7f00_0000_0000;

export const big = (n: number) => BigInt(n);

/**
 * The state of the machine as bytes: the header's allocator fields and every structure after
 * the per-thread contexts. Leaves out vmstat (statistics) and the contexts (scratch, cursors).
 */
export function snapshot(core: Core): Uint8Array {
  const L = core.layout;
  const head = core.u8.slice(L.base, L.vmstatBase);
  const rest = core.u8.slice(L.mmBase, L.totalBytes);
  const out = new Uint8Array(head.length + rest.length);
  out.set(head, 0);
  out.set(rest, head.length);
  return out;
}

/** Maps fresh exclusive, writable anon pages over [start, start + n pages). */
export function populate(core: Core, mm: number, start: number, n: number, anonVma = 1): number {
  const r = core.x.do_anonymous_pages(core.ctx, mm, start, start + n * 4096, anonVma, start / 4096 >>> 0,
    PROT_READ, C.ANON_WRITE | C.ANON_VM_WRITE);
  if (r < 0) throw new Error(`populate failed: ${r}`);
  return r;
}

export function pfnAt(core: Core, mm: number, va: number): number {
  return core.translate(mm, [va])[0]!;
}

export function pteAt(core: Core, mm: number, va: number): bigint {
  return BigInt.asUintN(64, core.x.ptep_get(mm, va));
}

/** Where two snapshots first differ (null when equal): fast, and says where to look. */
export function stateDiff(a: Uint8Array, b: Uint8Array): string | null {
  if (a.length === b.length && Buffer.compare(a, b) === 0) return null;
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return `state differs at snapshot byte ${i} of ${a.length} (was ${a[i]}, now ${b[i]})`;
}

/** The errno `fn` throws as a CowsimError, or null when it returns; anything else is rethrown. */
export function errnoOf(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (e) {
    if (!(e instanceof CowsimError)) throw e;
    return e.errno;
  }
}

/**
 * `n` worker threads on `url` for the test file, started before its tests and terminated after
 * them. The array is filled in place, so a test reads the workers at run time. The workers import
 * the built library: without dist/ they would fail with a module error, so say what is missing.
 */
export function useWorkerPool(url: URL, n: number): Worker[] {
  const pool: Worker[] = [];
  beforeAll(() => {
    if (!existsSync(new URL("../dist/core/index.js", import.meta.url))) {
      throw new Error("the workers use the built library: run npm run build (npm test does)");
    }
    for (let i = 0; i < n; i++) pool.push(new Worker(url));
  });
  afterAll(async () => {
    await Promise.all(pool.map((w) => w.terminate()));
  });
  return pool;
}

/** What a process reads at each of `pages` pages from `base`: the value, or the errno its read fails with. */
export function readPages(p: { read(addr: number): number }, base: number, pages: number): (number | string)[] {
  return Array.from({ length: pages }, (_, i) => {
    try {
      return p.read(base + i * 4096);
    } catch (e) {
      return (e as { errno?: string }).errno ?? String(e);
    }
  });
}
