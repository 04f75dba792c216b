/**
 * npm run bench:core [-- --json]
 *
 * The hot core, release build, in one run: random translations over a populated 1 GiB range
 * (Wasm batched vs the TypeScript walk), fork copy and zap of that range, GUP-fast pin + unpin,
 * and the simulator memory spent per simulated 4 KiB page.
 */
import Benchmark from "benchmark";
import { Core, C, tsTranslate } from "../dist/core/index.js";

const json = process.argv.includes("--json");
const log = (...a: unknown[]) => { if (!json) console.log(...a); };

const GiB = 2 ** 30;
const PAGES = GiB / 4096;
const BASE = 0x7f00_0000_0000;
const core = Core.create({ frames: PAGES + 32768, build: "release" });
const parent = core.mmAlloc();
const populated = core.x.do_anonymous_pages(core.ctx, parent, BASE, BASE + GiB, 1, BASE / 4096 >>> 0,
  (1 << C._PAGE_BIT_PRESENT) | (1 << C._PAGE_BIT_USER), C.ANON_WRITE | C.ANON_VM_WRITE);
if (populated !== PAGES) throw new Error(`populate mapped ${populated} pages`);

// random addresses inside the populated gigabyte, one batch reused by both walkers
const BATCH = 4096;
let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
const addrs = new Float64Array(BATCH);
for (let i = 0; i < BATCH; i++) addrs[i] = BASE + Math.floor(rand() * PAGES) * 4096 + Math.floor(rand() * 4096);
const out = new Uint32Array(BATCH);
const pgd = core.x.mm_pgd_addr(parent) >>> 0;
// both walkers must agree before either is timed
core.translateInto(parent, addrs, out);
for (let i = 0; i < BATCH; i++) {
  if (tsTranslate(core, pgd, addrs[i]!) !== out[i]) throw new Error("walkers disagree");
}

let forkNs = 0, zapNs = 0, forkRuns = 0;
function forkAndZap(): void {
  const child = core.mmAlloc();
  const t0 = process.hrtime.bigint();
  const n = core.x.copy_page_range(core.ctx, child, parent, BASE, BASE + GiB, C.COPY_COW);
  const t1 = process.hrtime.bigint();
  core.x.zap_page_range(core.ctx, child, BASE, BASE + GiB, 0);
  const t2 = process.hrtime.bigint();
  if (n !== 0) throw new Error(`fork copy returned ${n}`);
  core.x.free_pgd_range(child, 0, 2 ** 47);
  core.mmFree(child);
  forkNs += Number(t1 - t0);
  zapNs += Number(t2 - t1);
  forkRuns++;
}

// GUP-fast gets its own process: after a fork the parent's pages are no longer exclusive,
// and a R/O FOLL_PIN of those backs off (B5), as it must
const GUP_BATCH = 512;
const GUP_PAGES = 16384;
const pinner = core.mmAlloc();
core.x.do_anonymous_pages(core.ctx, pinner, BASE, BASE + GUP_PAGES * 4096, 2, 0,
  (1 << C._PAGE_BIT_PRESENT) | (1 << C._PAGE_BIT_USER), C.ANON_WRITE | C.ANON_VM_WRITE);
let gupAt = 0;
function gupFastBatch(): void {
  const va = BASE + gupAt * 4096;
  gupAt = (gupAt + GUP_BATCH) % GUP_PAGES;
  const got = core.x.gup_fast(core.ctx, pinner, va, GUP_BATCH, C.FOLL_PIN);
  if (got !== GUP_BATCH) throw new Error(`gup_fast took ${got}`);
  core.x.gup_put_scratch(core.ctx, GUP_BATCH, C.FOLL_PIN);
}

const results: Record<string, number> = {};
const suite = new Benchmark.Suite();
suite
  .add("translate: Wasm, batched", () => core.translateInto(parent, addrs, out), { minSamples: 20 })
  .add("translate: TypeScript walk", () => {
    let s = 0;
    for (let i = 0; i < BATCH; i++) s += tsTranslate(core, pgd, addrs[i]!);
    if (s === -1) throw new Error();
  }, { minSamples: 10 })
  .add("fork copy + zap of 1 GiB", forkAndZap, { minSamples: 8, maxTime: 3 })
  .add("GUP-fast pin + unpin", gupFastBatch, { minSamples: 20 })
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
results.forkNsPerPte = forkNs / forkRuns / PAGES;
results.zapNsPerPte = zapNs / forkRuns / PAGES;
results.gupFastNsPerPage = perOp("GUP-fast pin + unpin") / GUP_BATCH;

// memory: what the populated gigabyte costs, metadata only and with 64 data bytes per page
const tables = core.x.mm_nr_ptes(parent) + 1;
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
  console.log(`| metadata per 4 KiB page | ${f(results.metadataBytesPerPage, 2)} B | ≤ 40 B |`);
  console.log(`| with 64 data bytes per page | ${f(results.bytesPerPageWith64Data, 2)} B | |`);
}
