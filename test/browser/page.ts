/**
 * What the browser test runs in a page (bundled by esbuild for the browser): the README's
 * library example and the CVE-2020-29374 scenario of the catalog, its YAML embedded in the
 * bundle. The page reports on `window.cowsimResult`; the test checks every value.
 */
import {
  createKernel, loadCore, parseScenarios, runScenario, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS,
} from "../../src/index.js";
// the shared-memory refusal is stubbed below and checked at its source (not a public export)
import { createMemory } from "../../src/core/wasm.js";
import cveYaml from "../../scenarios/cve-2020-29374.yaml";

declare global {
  interface Window { cowsimResult?: unknown }
}

async function main(): Promise<unknown> {
  // createKernel() is synchronous and a browser cannot fetch synchronously: without the core
  // loaded it says so, and what to do
  let notLoaded: string | undefined;
  try {
    createKernel();
  } catch (e) {
    notLoaded = (e as Error).message;
  }
  // so load it first, from its place beside the bundle (new URL("../../build/…", import.meta.url))
  await loadCore();

  // the README's library example
  const k = createKernel({ strategy: "anon-exclusive", memory: "256M" });
  const parent = k.spawn();
  const buf = parent.mmap(null, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  parent.write(buf, 1);
  const child = parent.fork();
  parent.write(buf, 2);
  const readme = {
    childReads: child.read(buf), parentReads: parent.read(buf),
    copies: k.counters().copies, findings: k.findings.length,
  };

  // the catalog's CVE-2020-29374, parsed and run in the page
  const [cve] = parseScenarios("cve-2020-29374.yaml", cveYaml);
  const result = runScenario(cve!);
  const scenario = {
    name: result.name,
    pass: result.pass,
    runs: result.runs.map((r) => ({
      run: r.run, pass: r.pass, findings: r.findings.map((f) => f.kind),
      copies: r.counters.copies, reuses: r.counters.reuses, missedCow: r.counters.missedCow,
      pipe: r.steps.find((s) => s.op === "pipe_read")?.value,
    })),
  };

  // a browser that will not make shared Wasm memory outside cross-origin isolation (as
  // Firefox and Safari do) gets a message saying what the page needs
  let refused: string | undefined;
  if (!crossOriginIsolated) {
    const RealMemory = WebAssembly.Memory;
    WebAssembly.Memory = function (d: WebAssembly.MemoryDescriptor) {
      if (d.shared) throw new TypeError("shared memory is unavailable here");
      return new RealMemory(d);
    } as unknown as typeof WebAssembly.Memory;
    try {
      createMemory(16);
    } catch (e) {
      refused = (e as Error).message;
    } finally {
      WebAssembly.Memory = RealMemory;
    }
  }

  return {
    crossOriginIsolated,
    sharedArrayBuffer: typeof SharedArrayBuffer,
    notLoaded, readme, scenario, refused,
  };
}

main().then(
  (r) => { window.cowsimResult = r; },
  (e: unknown) => { window.cowsimResult = { error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) }; },
);
