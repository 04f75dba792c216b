/**
 * Loading the core module: compiled once per build flavour, instantiated once per thread over
 * the one shared memory.
 */
import { readFileSync } from "node:fs";
import { DEBUG_CHECKS, type CoreExports } from "./abi.generated.js";

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

/**
 * A debug-build check of the core failed (assembly/page_table_check.ts): the state it found is
 * one Linux forbids, so cowsim itself (or a caller of the raw core API) has a bug. The machine
 * is left mid-operation: discard it. @public
 */
export class CoreCheckError extends Error {
  override readonly name = "CoreCheckError";
  constructor(
    /** The check, by its short name (`anon_exclusive`, `anon_shared`, `uffd_wp_write`, `refcount`). */
    readonly check: string,
    /** The frame (the folio's head for `refcount`). */
    readonly pfn: number,
    /** The virtual address of the entry being installed. */
    readonly address: number,
    message: string,
  ) {
    super(message);
  }
}

const hexAddress = (a: number) => "0x" + a.toString(16);

/** The message of a failed check, from its template in assembly/page_table_check.ts. */
export function checkMessage(check: number, level: number, pfn: number, va: number, a: number, b: number): string {
  const c = DEBUG_CHECKS.find((d) => d.value === check);
  const text = (c?.description ?? `unknown check ${check} on pfn {pfn} at {addr}`)
    .replace("{entry}", level === 1 ? "PMD" : "PTE")
    .replace("{pfn}", String(pfn >>> 0))
    .replace("{addr}", hexAddress(va))
    .replace("{a}", String(a))
    .replace("{b}", String(b));
  return `cowsim debug check failed: ${text}`;
}

/** An AssemblyScript string in the module's static data: UTF-16, its byte length just before it. */
function readString(memory: WebAssembly.Memory, ptr: number): string | null {
  ptr >>>= 0;
  const view = new DataView(memory.buffer);
  if (ptr < 4 || ptr + 4 > view.byteLength) return null;
  const bytes = view.getUint32(ptr - 4, true);
  if (bytes > 4096 || ptr + bytes > view.byteLength) return null;
  let s = "";
  for (let i = 0; i + 1 < bytes; i += 2) s += String.fromCharCode(view.getUint16(ptr + i, true));
  return s;
}

/** The imports every instance gets: the memory, abort() and the debug checks' report. */
export function hostImports(memory: WebAssembly.Memory): WebAssembly.Imports {
  return {
    env: {
      memory,
      /** A Wasm trap inside the core is a bug in cowsim, never an expected failure. */
      abort(msg: number, file: number, line: number, col: number): never {
        const m = readString(memory, msg);
        const f = readString(memory, file) ?? "the core";
        throw new Error(`cowsim core: assertion failed${m ? `: ${m}` : ""} at ${f}:${line >>> 0}:${col >>> 0}`);
      },
      /** Imported by the debug build only (assembly/page_table_check.ts). */
      cowsim_check_failed(check: number, level: number, pfn: number, va: number, a: number, b: number): never {
        const c = DEBUG_CHECKS.find((d) => d.value === check);
        throw new CoreCheckError(c?.short ?? String(check), pfn >>> 0, va, checkMessage(check, level, pfn, va, a, b));
      },
    },
  };
}

/** One instance over `memory`: each thread makes its own. */
export function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory): CoreExports {
  const instance = new WebAssembly.Instance(module, hostImports(memory));
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
