/**
 * npm run bench:loader [-- --json]
 *
 * Why cowsim loads its core with a plain WebAssembly.Instance rather than the (deprecated)
 * @assemblyscript/loader: the cost of one hot call through each, side by side in one run, over
 * the same shared memory.
 */
import Benchmark from "benchmark";
import { instantiateSync } from "@assemblyscript/loader";
import { Core } from "../dist/core/index.js";

const json = process.argv.includes("--json");
const core = Core.create({ frames: 4096, build: "release" });
const pfn = core.allocPages(0);
const { exports: viaLoader } = instantiateSync(core.module, {
  env: { memory: core.memory, abort: () => { throw new Error("abort"); } },
}) as unknown as { exports: typeof core.x };
const raw = core.x;
const N = 10_000;

const suite = new Benchmark.Suite();
suite
  .add("raw WebAssembly.Instance", () => { let s = 0; for (let i = 0; i < N; i++) s += raw.folio_ref_count(pfn); if (s < 0) throw new Error(); })
  .add("@assemblyscript/loader", () => { let s = 0; for (let i = 0; i < N; i++) s += viaLoader.folio_ref_count(pfn); if (s < 0) throw new Error(); })
  .on("cycle", (e: Benchmark.Event) => { if (!json) console.log("  " + String(e.target)); })
  .run();
const ns = (name: string) => (suite.filter((b: Benchmark) => b.name === name) as unknown as Benchmark[])[0]!.stats.mean * 1e9 / N;
const result = { rawCallNs: ns("raw WebAssembly.Instance"), loaderCallNs: ns("@assemblyscript/loader") };
if (json) console.log(JSON.stringify(result));
else console.log(`\none call: raw ${result.rawCallNs.toFixed(2)} ns, loader ${result.loaderCallNs.toFixed(2)} ns (${(result.loaderCallNs / result.rawCallNs).toFixed(1)}×)`);
