/**
 * npm run bench:core [-- --json] [-- --baseline OTHER.wasm [--rounds N] [--build THIS.wasm]]
 *
 * The hot core, release build, in one run: random translations over a populated 1 GiB range
 * (Wasm batched vs the TypeScript walk), fork copy and zap of that range, GUP-fast pin + unpin,
 * the frame allocator (alloc_pages() then free_pages() of a batch of folios: order 0, an order-4
 * mTHP and the order-9 THP, one call each), and the simulator memory spent per simulated 4 KiB
 * page.
 *
 * With --baseline, a second core module (another build of assembly/, e.g. the release .wasm of
 * an earlier commit) is loaded beside this one, each over a machine of its own with the same
 * sizes, and the same cases run on both, interleaved round by round (the order alternating, so
 * drift of the host's clock or caches falls on both alike). It prints each figure for both
 * modules, the ratio this/baseline of their medians, and the spread of the per-round ratios —
 * the noise a ratio must be judged against. `--baseline build/cowsim.release.wasm` compares the
 * build with itself: the noise alone. --build names another module to stand for this build.
 */
import Benchmark from "benchmark";
import { readFileSync } from "node:fs";
import { Core, C, tsTranslate } from "../dist/core/index.js";
import { instantiate, planBytes, wasmPages } from "../dist/core/wasm.js";

const json = process.argv.includes("--json");
const log = (...a: unknown[]) => { if (!json) console.log(...a); };
const argValue = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};

const GiB = 2 ** 30;
const PAGES = GiB / 4096;
const BASE = 0x7f00_0000_0000;
const FRAMES = PAGES + 32768;
const BATCH = 4096;
const GUP_BATCH = 512;
const GUP_PAGES = 16384;
/** Frames a batch of the allocator cases takes (of the 16383 the populated machine has free). */
const ALLOC_FRAMES = 4096;
/** The allocator cases' orders: a frame, a 64 KiB mTHP, a 2 MiB THP. */
const ALLOC_ORDERS = [0, 4, 9] as const;

/**
 * A machine over the module in `file`, sized as Core.create sizes one of FRAMES frames (its
 * defaults), initialised by the module's own cowsim_init() over a memory of its own
 * layout_plan(): so a module of another commit runs with the TypeScript binding of this one.
 */
function coreFromFile(file: string): Core {
  const module = new WebAssembly.Module(new Uint8Array(readFileSync(file)).buffer);
  const maxMms = 256;
  const args = [FRAMES, Math.min(1 << 20, Math.ceil(FRAMES / 512) * 4 + 4 * maxMms + 64), FRAMES, maxMms, 8, 0, 64 * 1024];
  const pages = wasmPages(planBytes(module, args));
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const r = instantiate(module, memory).cowsim_init(args[0]!, args[1]!, args[2]!, args[3]!, args[4]!, args[5]!, args[6]!);
  if (r !== 0) throw new Error(`${file}: cowsim_init returned ${r}`);
  return Core.attach({ module, memory, build: "release" });
}

/** One machine with the bench's state: a populated gigabyte, random addresses, a pinner. */
class Machine {
  readonly parent: number;
  readonly pinner: number;
  readonly addrs = new Float64Array(BATCH);
  readonly out = new Uint32Array(BATCH);
  readonly pgd: number;
  readonly pfns = new Uint32Array(ALLOC_FRAMES);
  forkNs = 0;
  zapNs = 0;
  forkRuns = 0;
  /** Mean zap time of the compare mode's last round. */
  zapNsLast = 0;
  private gupAt = 0;

  constructor(readonly core: Core) {
    this.parent = core.mmAlloc();
    const populated = core.x.do_anonymous_pages(core.ctx, this.parent, BASE, BASE + GiB, 1, BASE / 4096 >>> 0,
      (1 << C._PAGE_BIT_PRESENT) | (1 << C._PAGE_BIT_USER), C.ANON_WRITE | C.ANON_VM_WRITE);
    if (populated !== PAGES) throw new Error(`populate mapped ${populated} pages`);
    // random addresses inside the populated gigabyte, one batch reused by both walkers
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (let i = 0; i < BATCH; i++) this.addrs[i] = BASE + Math.floor(rand() * PAGES) * 4096 + Math.floor(rand() * 4096);
    this.pgd = core.x.mm_pgd_addr(this.parent) >>> 0;
    // both walkers must agree before either is timed
    core.translateInto(this.parent, this.addrs, this.out);
    for (let i = 0; i < BATCH; i++) {
      if (tsTranslate(core, this.pgd, this.addrs[i]!) !== this.out[i]) throw new Error("walkers disagree");
    }
    // GUP-fast gets its own process: after a fork the parent's pages are no longer exclusive,
    // and a R/O FOLL_PIN of those backs off (B5), as it must
    this.pinner = core.mmAlloc();
    core.x.do_anonymous_pages(core.ctx, this.pinner, BASE, BASE + GUP_PAGES * 4096, 2, 0,
      (1 << C._PAGE_BIT_PRESENT) | (1 << C._PAGE_BIT_USER), C.ANON_WRITE | C.ANON_VM_WRITE);
  }

  translate(): void {
    this.core.translateInto(this.parent, this.addrs, this.out);
  }

  tsWalk(): void {
    let s = 0;
    for (let i = 0; i < BATCH; i++) s += tsTranslate(this.core, this.pgd, this.addrs[i]!);
    if (s === -1) throw new Error();
  }

  forkAndZap(): void {
    const core = this.core;
    const child = core.mmAlloc();
    const t0 = process.hrtime.bigint();
    const n = core.x.copy_page_range(core.ctx, child, this.parent, BASE, BASE + GiB, C.COPY_COW, 0, 0);
    const t1 = process.hrtime.bigint();
    core.x.zap_page_range(core.ctx, child, BASE, BASE + GiB, 0);
    const t2 = process.hrtime.bigint();
    if (n !== 0) throw new Error(`fork copy returned ${n}`);
    core.x.free_pgd_range(child, 0, 2 ** 47);
    core.mmFree(child);
    this.forkNs += Number(t1 - t0);
    this.zapNs += Number(t2 - t1);
    this.forkRuns++;
  }

  gupFastBatch(): void {
    const core = this.core;
    const va = BASE + this.gupAt * 4096;
    this.gupAt = (this.gupAt + GUP_BATCH) % GUP_PAGES;
    const got = core.x.gup_fast(core.ctx, this.pinner, va, GUP_BATCH, C.FOLL_PIN);
    if (got !== GUP_BATCH) throw new Error(`gup_fast took ${got}`);
    core.x.gup_put_scratch(core.ctx, GUP_BATCH, C.FOLL_PIN);
  }

  /** Whether this machine's module allocates folios of `order` (an older core may not). */
  allocates(order: number): boolean {
    const pfn = this.core.x.alloc_pages(this.core.ctx, order, 0) >>> 0;
    if (pfn === C.NO_PFN) return false;
    this.core.x.free_pages(pfn, order);
    return true;
  }

  /** alloc_pages() of ALLOC_FRAMES >> order folios of `order`, then free_pages() of each. */
  allocFree(order: number): void {
    const x = this.core.x;
    const ctx = this.core.ctx;
    const n = ALLOC_FRAMES >> order;
    for (let i = 0; i < n; i++) this.pfns[i] = x.alloc_pages(ctx, order, 0);
    for (let i = 0; i < n; i++) {
      if (this.pfns[i] === C.NO_PFN) throw new Error(`alloc_pages(${order}) failed`);
      x.free_pages(this.pfns[i]!, order);
    }
  }
}

function single(): void {
  const m = new Machine(Core.create({ frames: FRAMES, build: "release" }));
  const core = m.core;
  const results: Record<string, number> = {};
  const suite = new Benchmark.Suite();
  suite
    .add("translate: Wasm, batched", () => m.translate(), { minSamples: 20 })
    .add("translate: TypeScript walk", () => m.tsWalk(), { minSamples: 10 })
    .add("fork copy + zap of 1 GiB", () => m.forkAndZap(), { minSamples: 8, maxTime: 3 })
    .add("GUP-fast pin + unpin", () => m.gupFastBatch(), { minSamples: 20 });
  for (const order of ALLOC_ORDERS) suite.add(`alloc + free, order ${order}`, () => m.allocFree(order), { minSamples: 20 });
  suite
    .on("cycle", (e: Benchmark.Event) => {
      const b = e.target as unknown as Benchmark & { error?: Error };
      if (b.error) throw b.error;
      log("  " + String(b));
    })
    .run();

  const byName = (name: string) => (suite.filter((b: Benchmark) => b.name === name) as unknown as Benchmark[])[0]!;
  const perOp = (name: string) => byName(name).stats.mean * 1e9;
  results.translateNsWasm = perOp("translate: Wasm, batched") / BATCH;
  results.translateNsTs = perOp("translate: TypeScript walk") / BATCH;
  results.translateRatio = results.translateNsTs / results.translateNsWasm;
  results.forkNsPerPte = m.forkNs / m.forkRuns / PAGES;
  results.zapNsPerPte = m.zapNs / m.forkRuns / PAGES;
  results.gupFastNsPerPage = perOp("GUP-fast pin + unpin") / GUP_BATCH;
  for (const order of ALLOC_ORDERS) results[`allocFreeNsOrder${order}`] = perOp(`alloc + free, order ${order}`) / (ALLOC_FRAMES >> order);

  // memory: what the populated gigabyte costs, metadata only and with 64 data bytes per page
  const tables = core.x.mm_nr_ptes(m.parent) + 1;
  const metadata = (core.layout.pageStructBytes * PAGES + tables * 4096) / PAGES;
  const with64 = Core.create({ frames: 1024, dataBytes: 64, build: "release" });
  results.metadataBytesPerPage = metadata;
  results.bytesPerPageWith64Data = metadata + with64.layout.contentStride;
  results.tagBytesPerPage = core.layout.contentStride;
  results.simulatorBytesPerPage = core.layout.totalBytes / core.layout.nframes;

  if (json) {
    console.log(JSON.stringify(results));
  } else {
    const f = (x: number, d = 1) => x.toFixed(d);
    console.log("");
    console.log("| measure | value | target |");
    console.log("| --- | --- | --- |");
    console.log(`| random translation, Wasm batched | ${f(results.translateNsWasm)} ns | |`);
    console.log(`| random translation, TypeScript walk (BigInt atomics) | ${f(results.translateNsTs)} ns | |`);
    console.log(`| translation speed-up | ${f(results.translateRatio)}× | ≥ 10× |`);
    console.log(`| fork copy of 1 GiB | ${f(results.forkNsPerPte)} ns/PTE (${f(results.forkNsPerPte * PAGES / 1e6)} ms) | ≤ 20 ns/PTE |`);
    console.log(`| zap of 1 GiB | ${f(results.zapNsPerPte)} ns/PTE | |`);
    console.log(`| GUP-fast pin + unpin | ${f(results.gupFastNsPerPage)} ns/page | |`);
    for (const order of ALLOC_ORDERS) {
      console.log(`| alloc_pages + free_pages, order ${order} | ${f(results[`allocFreeNsOrder${order}`]!)} ns/folio | |`);
    }
    console.log(`| metadata per 4 KiB page | ${f(results.metadataBytesPerPage, 2)} B | ≤ 40 B |`);
    console.log(`| with 64 data bytes per page | ${f(results.bytesPerPageWith64Data, 2)} B | |`);
  }
}

/** Times `fn` run `reps` times; ns per unit. */
function time(fn: () => void, reps: number, units: number): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < reps; i++) fn();
  return Number(process.hrtime.bigint() - t0) / reps / units;
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
};

function compare(file: string, rounds: number): void {
  const self = argValue("--build") ?? new URL("../build/cowsim.release.wasm", import.meta.url).pathname;
  const machines = { this: new Machine(coreFromFile(self)), baseline: new Machine(coreFromFile(file)) };
  type Side = keyof typeof machines;
  // each case: a measurement of one round on one machine, in ns per unit
  const cases: { key: string; label: string; unit: string; run: (m: Machine) => number }[] = [
    { key: "translateNsWasm", label: "random translation, Wasm batched", unit: "ns", run: (m) => time(() => m.translate(), 200, BATCH) },
    {
      key: "forkNsPerPte", label: "fork copy of 1 GiB", unit: "ns/PTE", run: (m) => {
        const fork = m.forkNs, zap = m.zapNs;
        for (let i = 0; i < 3; i++) m.forkAndZap();
        m.zapNsLast = (m.zapNs - zap) / 3;
        return (m.forkNs - fork) / 3 / PAGES;
      },
    },
    // the zaps of the fork case's children, measured in the same runs
    { key: "zapNsPerPte", label: "zap of 1 GiB", unit: "ns/PTE", run: (m) => m.zapNsLast / PAGES },
    { key: "gupFastNsPerPage", label: "GUP-fast pin + unpin", unit: "ns/page", run: (m) => time(() => m.gupFastBatch(), 400, GUP_BATCH) },
    // the allocator, at the orders both modules serve (a core before mTHP has only 0 and 9)
    ...ALLOC_ORDERS.filter((order) => machines.this.allocates(order) && machines.baseline.allocates(order)).map((order) => ({
      key: `allocFreeNsOrder${order}`, label: `alloc_pages + free_pages, order ${order}`, unit: "ns/folio",
      run: (m: Machine) => time(() => m.allocFree(order), order === 9 ? 400 : 40, ALLOC_FRAMES >> order),
    })),
  ];
  const samples: Record<string, Record<Side, number[]>> = {};
  for (const c of cases) samples[c.key] = { this: [], baseline: [] };
  // warm-up: one untimed round on each, so both modules are compiled by the optimising tier
  for (const side of ["this", "baseline"] as Side[]) for (const c of cases) c.run(machines[side]);
  for (let r = 0; r < rounds; r++) {
    const order: Side[] = r % 2 ? ["baseline", "this"] : ["this", "baseline"];
    for (const side of order) for (const c of cases) samples[c.key]![side].push(c.run(machines[side]));
    if (!json) process.stderr.write(`\r  round ${r + 1}/${rounds}`);
  }
  if (!json) process.stderr.write("\n");
  const results: Record<string, number> = {};
  const rows: string[] = [];
  for (const c of cases) {
    const s = samples[c.key]!;
    const a = median(s.this);
    const b = median(s.baseline);
    // the ratio of each round's pair: the two ran back to back, so what disturbs one round
    // disturbs both of its measurements
    const perRound = s.this.map((x, i) => x / s.baseline[i]!).sort((x, y) => x - y);
    const ratio = median(perRound);
    const lo = perRound[Math.floor(perRound.length / 4)]!;
    const hi = perRound[Math.ceil(perRound.length * 3 / 4) - 1]!;
    // the best round of each: what a quiet machine gives, when other load comes and goes
    const bestA = Math.min(...s.this);
    const bestB = Math.min(...s.baseline);
    results[c.key] = a;
    results[c.key + "Baseline"] = b;
    results[c.key + "Ratio"] = ratio;
    results[c.key + "Best"] = bestA;
    results[c.key + "BaselineBest"] = bestB;
    rows.push(`| ${c.label} | ${a.toFixed(2)} ${c.unit} | ${b.toFixed(2)} ${c.unit} | ${ratio.toFixed(3)} | ${lo.toFixed(3)} – ${hi.toFixed(3)} | ${bestA.toFixed(2)} / ${bestB.toFixed(2)} = ${(bestA / bestB).toFixed(3)} |`);
  }
  if (json) {
    console.log(JSON.stringify(results));
    return;
  }
  console.log(`\nthis build: ${self}; baseline: ${file}; ${rounds} rounds\n`);
  console.log("| measure | this build (median) | baseline (median) | this / baseline (median of the rounds' ratios) | rounds' ratios, middle half | best rounds: this / baseline |");
  console.log("| --- | --- | --- | --- | --- | --- |");
  for (const r of rows) console.log(r);
}

const baseline = argValue("--baseline");
if (baseline) compare(baseline, Number(argValue("--rounds") ?? 15));
else single();
