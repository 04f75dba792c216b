/**
 * Loading the core module: compiled once per build flavour, instantiated once per thread over
 * the one shared memory.
 */
import { readFileSync } from "node:fs";
import type { CoreExports } from "./abi.generated.js";

/** Which compilation of the core: `release` (-O3, no asserts) or `debug` (asserts on). @public */
export type CoreBuild = "release" | "debug";

const modules = new Map<CoreBuild, WebAssembly.Module>();

/** The URL of a build's .wasm file (build/ sits next to src/ and dist/). */
export function wasmUrl(build: CoreBuild): URL {
  return new URL(`../../build/cowsim.${build}.wasm`, import.meta.url);
}

/** The compiled module of a build, compiled on first use. */
export function coreModule(build: CoreBuild): WebAssembly.Module {
  let m = modules.get(build);
  if (!m) {
    let file: Buffer;
    try {
      file = readFileSync(wasmUrl(build));
    } catch (e) {
      throw new Error(`cowsim: the ${build} core is not built (${(e as Error).message}); run npm run build`);
    }
    m = new WebAssembly.Module(new Uint8Array(file).buffer);
    modules.set(build, m);
  }
  return m;
}

/** A Wasm trap inside the core is a bug in cowsim, never an expected failure. */
function abort(msg: number, file: number, line: number, col: number): never {
  throw new Error(`cowsim core: assertion failed at line ${line}:${col} (message @${msg}, file @${file})`);
}

/** One instance over `memory`: each thread makes its own. */
export function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory): CoreExports {
  const instance = new WebAssembly.Instance(module, { env: { memory, abort } });
  return instance.exports as unknown as CoreExports;
}

const WASM_PAGE = 65536;
/** The largest memory a wasm32 module can address: 65536 pages of 64 KiB. */
export const MAX_MEMORY_BYTES = 65536 * WASM_PAGE;

const planners = new Map<WebAssembly.Module, CoreExports>();

/** layout_plan() of the module, run in a small private instance (it touches no memory). */
export function planBytes(module: WebAssembly.Module, args: readonly number[]): number {
  let p = planners.get(module);
  if (!p) {
    p = instantiate(module, new WebAssembly.Memory({ initial: 16, maximum: 16, shared: true }));
    planners.set(module, p);
  }
  const [nframes, ntables, nslots, maxMms, maxThreads, dataBytes, scratchBytes] = args;
  return p.layout_plan(nframes!, ntables!, nslots!, maxMms!, maxThreads!, dataBytes!, scratchBytes!);
}

export function wasmPages(bytes: number): number {
  return Math.max(16, Math.ceil(bytes / WASM_PAGE));
}
