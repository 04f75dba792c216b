/**
 * Loading the core module: compiled once per build flavour (or once per module an embedder
 * gives), instantiated once per thread over the one shared memory.
 *
 * Nothing here imports a Node built-in, so the library bundles for a browser. The core comes
 * from one of:
 * - the embedder: a compiled `WebAssembly.Module`, its bytes, or a URL ({@link loadCore}, or the
 *   `wasm` option of a machine);
 * - by default `build/cowsim.<build>.wasm` of the package, located with
 *   `new URL("../../build/cowsim.<build>.wasm", import.meta.url)` (a literal per build: the form
 *   bundlers such as Vite and webpack find and copy as an asset). A browser fetches it, which is
 *   asynchronous while creating a machine is not: `await loadCore()` once first. Node reads it
 *   synchronously on first use, through `process.getBuiltinModule("node:fs")` (Node 20.16 and
 *   later; Deno and Bun have it too): a call, not an import, so no bundler follows it, and
 *   `import { createKernel } from "cowsim"` keeps working in Node with nothing registered first.
 */
import { DEBUG_CHECKS, type CoreExports } from "./abi.generated.js";
import { CowsimError } from "../errno.js";
import { SizedPool } from "../util/sized-pool.js";

/** Which compilation of the core: `release` (-O3, no asserts) or `debug` (asserts on). @public */
export type CoreBuild = "release" | "debug";

/**
 * The Wasm core as an embedder hands it over: compiled, as bytes (an `ArrayBuffer` or a view
 * such as `Uint8Array`), or where to find it. A URL other than `file:` must be loaded with
 * {@link loadCore} first: a browser cannot fetch synchronously. @public
 */
export type CoreWasm = WebAssembly.Module | ArrayBuffer | ArrayBufferView | URL;

/** Where {@link loadCore} takes the core from: at most one of `url`, `bytes`, `module`. @public */
export interface LoadCoreOptions {
  /** The compilation it is (default `release`); machines of this build use it from then on. */
  readonly build?: CoreBuild;
  /** Fetch it from here (a string resolves against the page's URL). Default: the package's own file. */
  readonly url?: URL | string;
  /** Compile these bytes. */
  readonly bytes?: ArrayBuffer | ArrayBufferView;
  /** Use this compiled module. */
  readonly module?: WebAssembly.Module;
}

/** The module machines of each build use when they are given none. */
const modules = new Map<CoreBuild, WebAssembly.Module>();
/** loadCore() calls of the default file still under way, so that two calls fetch once. */
const pending = new Map<CoreBuild, Promise<WebAssembly.Module>>();
/** Modules compiled from an embedder's bytes and URLs, so that each is compiled once. */
const byBytes = new WeakMap<object, WebAssembly.Module>();
const byUrl = new Map<string, WebAssembly.Module>();

/** The URL of a build's .wasm file (build/ sits next to src/ and dist/). */
export function wasmUrl(build: CoreBuild): URL {
  return build === "debug"
    ? new URL("../../build/cowsim.debug.wasm", import.meta.url)
    : new URL("../../build/cowsim.release.wasm", import.meta.url);
}

/** What of node:fs is used here, when the runtime has it. */
interface NodeFs {
  readFileSync(path: URL): Uint8Array;
  readonly promises: { readFile(path: URL): Promise<Uint8Array> };
}

/** node:fs where the runtime offers built-in modules without an import (Node ≥ 20.16), else undefined. */
function nodeFs(): NodeFs | undefined {
  const p = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  return typeof p?.getBuiltinModule === "function" ? (p.getBuiltinModule("node:fs") as NodeFs | undefined) : undefined;
}

const isBytes = (w: unknown): w is ArrayBuffer | ArrayBufferView => w instanceof ArrayBuffer || ArrayBuffer.isView(w);
const hint = (build: CoreBuild) => (build === "debug" ? `{ build: "debug" }` : "");

/**
 * Checks that `module` is a cowsim core of `build`: it imports its memory and exports
 * cowsim_init(); the debug build alone imports the debug checks' report.
 */
function checked(module: WebAssembly.Module, build: CoreBuild, what: string): WebAssembly.Module {
  const imports = WebAssembly.Module.imports(module);
  const exports = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
  const memory = imports.some((i) => i.module === "env" && i.name === "memory" && i.kind === "memory");
  if (!memory || !exports.has("cowsim_init") || !exports.has("layout_plan")) {
    throw new CowsimError("EINVAL", `${what} is not a cowsim core: it must import env.memory and export cowsim_init and layout_plan`);
  }
  const debug = imports.some((i) => i.module === "env" && i.name === "cowsim_check_failed");
  if (debug !== (build === "debug")) {
    throw new CowsimError("EINVAL", `${what} is the ${debug ? "debug" : "release"} core, given as the ${build} one: say build: "${debug ? "debug" : "release"}"`);
  }
  return module;
}

function compileSync(bytes: ArrayBuffer | ArrayBufferView, build: CoreBuild, what: string): WebAssembly.Module {
  let m: WebAssembly.Module;
  try {
    m = new WebAssembly.Module(bytes as BufferSource);
  } catch (e) {
    throw new CowsimError("EINVAL", `${what} does not compile as WebAssembly (${(e as Error).message})`);
  }
  return checked(m, build, what);
}

/** Reads a file: URL synchronously, or says why it cannot be done here. */
function readSync(url: URL, build: CoreBuild, isDefault: boolean): Uint8Array {
  const fs = url.protocol === "file:" ? nodeFs() : undefined;
  if (!fs) {
    throw new Error(`cowsim: the ${build} core (${url.href}) is not loaded yet, and it cannot be read synchronously here: ` +
      `await loadCore(${isDefault ? hint(build) : "{ url }"}) once before creating a machine, or pass the core as a WebAssembly.Module or its bytes`);
  }
  try {
    return fs.readFileSync(url);
  } catch (e) {
    const why = (e as Error).message;
    throw new Error(isDefault
      ? `cowsim: the ${build} core is not built (${why}); run npm run build`
      : `cowsim: cannot read the core at ${url.href} (${why})`);
  }
}

/**
 * The compiled module of a build, synchronously: the one `wasm` names (a Module, bytes, or a URL
 * already loaded or readable as a file), else the build's module, compiled on first use from the
 * package's file where it can be read synchronously (Node). In a browser, {@link loadCore} must
 * have loaded it first; otherwise this throws, saying so.
 * @throws CowsimError EINVAL when `wasm` is of no kind the core can be made from, or not a cowsim core of `build`.
 */
export function coreModule(build: CoreBuild, wasm?: CoreWasm): WebAssembly.Module {
  if (wasm === undefined) {
    let m = modules.get(build);
    if (!m) {
      m = compileSync(readSync(wasmUrl(build), build, true), build, `build/cowsim.${build}.wasm`);
      modules.set(build, m);
    }
    return m;
  }
  if (wasm instanceof WebAssembly.Module) return checked(wasm, build, "the module given");
  if (isBytes(wasm)) {
    let m = byBytes.get(wasm);
    if (!m) {
      m = compileSync(wasm, build, "the bytes given");
      byBytes.set(wasm, m);
    }
    return checked(m, build, "the bytes given");
  }
  if (wasm instanceof URL) {
    let m = byUrl.get(wasm.href);
    if (!m) {
      m = compileSync(readSync(wasm, build, false), build, wasm.href);
      byUrl.set(wasm.href, m);
    }
    return checked(m, build, wasm.href);
  }
  throw new CowsimError("EINVAL", `wasm must be a WebAssembly.Module, an ArrayBuffer, a typed array or a URL, not ${describe(wasm)}`);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "object") return `a ${(v as object).constructor?.name ?? "object"}`;
  return typeof v === "string" ? `the string ${JSON.stringify(v.length > 60 ? v.slice(0, 57) + "…" : v)}` : String(v);
}

/** Fetches and compiles a URL (a file: URL is read where the runtime has node:fs). */
async function fetchModule(url: URL, build: CoreBuild): Promise<WebAssembly.Module> {
  const fs = url.protocol === "file:" ? nodeFs() : undefined;
  if (fs) {
    let bytes: Uint8Array;
    try {
      bytes = await fs.promises.readFile(url);
    } catch (e) {
      throw new Error(`cowsim: cannot read the core at ${url.href} (${(e as Error).message})`);
    }
    return compileAsync(bytes, build, url.href);
  }
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new Error(`cowsim: cannot fetch the core from ${url.href} (${(e as Error).message})`);
  }
  if (!res.ok) throw new Error(`cowsim: cannot fetch the core from ${url.href} (HTTP ${res.status} ${res.statusText})`);
  // compileStreaming compiles while the bytes arrive, and needs the server to say application/wasm
  if (typeof WebAssembly.compileStreaming === "function" && res.headers.get("content-type")?.split(";")[0]?.trim() === "application/wasm") {
    try {
      return checked(await WebAssembly.compileStreaming(res), build, url.href);
    } catch (e) {
      if (e instanceof CowsimError) throw e;
      throw new CowsimError("EINVAL", `${url.href} does not compile as WebAssembly (${(e as Error).message})`);
    }
  }
  return compileAsync(new Uint8Array(await res.arrayBuffer()), build, url.href);
}

async function compileAsync(bytes: ArrayBuffer | ArrayBufferView, build: CoreBuild, what: string): Promise<WebAssembly.Module> {
  let m: WebAssembly.Module;
  try {
    m = await WebAssembly.compile(bytes as BufferSource);
  } catch (e) {
    throw new CowsimError("EINVAL", `${what} does not compile as WebAssembly (${(e as Error).message})`);
  }
  return checked(m, build, what);
}

/**
 * Loads and compiles the core of a build, and makes it the one every machine of that build uses
 * when it is given none. In a browser, await it once before `createKernel()`, which is
 * synchronous and cannot fetch:
 *
 * ```ts
 * await loadCore();                                   // the package's build/cowsim.release.wasm
 * await loadCore({ url: "/assets/cowsim.release.wasm" }); // or wherever the page serves it
 * const k = createKernel({ strategy: "anon-exclusive" });
 * ```
 *
 * Without `url`, `bytes` or `module` it loads the package's own file, once however often it is
 * called; with one, that core replaces the build's (machines already made keep theirs). Node
 * needs no call (the file is read on first use), but may make one.
 * @returns the compiled module, which may also be passed as a machine's `wasm` option.
 * @throws CowsimError EINVAL for options that name more than one source, or a module that is not a cowsim core of the build; Error when the core cannot be fetched or read.
 * @public
 */
export async function loadCore(options: LoadCoreOptions = {}): Promise<WebAssembly.Module> {
  const build = options.build ?? "release";
  if (build !== "release" && build !== "debug") {
    throw new CowsimError("EINVAL", `build must be "release" or "debug", not ${describe(build)}`);
  }
  const given = (["url", "bytes", "module"] as const).filter((k) => options[k] !== undefined);
  if (given.length > 1) throw new CowsimError("EINVAL", `loadCore takes one of url, bytes and module, not ${given.join(" and ")}`);
  let m: WebAssembly.Module;
  if (options.module !== undefined) {
    if (!(options.module instanceof WebAssembly.Module)) throw new CowsimError("EINVAL", `module must be a WebAssembly.Module, not ${describe(options.module)}`);
    m = checked(options.module, build, "the module given");
  } else if (options.bytes !== undefined) {
    if (!isBytes(options.bytes)) throw new CowsimError("EINVAL", `bytes must be an ArrayBuffer or a typed array, not ${describe(options.bytes)}`);
    m = await compileAsync(options.bytes, build, "the bytes given");
  } else if (options.url !== undefined) {
    let url: URL;
    try {
      url = new URL(options.url, globalThis.location?.href);
    } catch {
      throw new CowsimError("EINVAL", `url must be a URL, or a string a URL can be made of here, not ${describe(options.url)}`);
    }
    m = await fetchModule(url, build);
    byUrl.set(url.href, m);
  } else {
    const known = modules.get(build);
    if (known) return known;
    let p = pending.get(build);
    if (!p) {
      p = fetchModule(wasmUrl(build), build).finally(() => pending.delete(build));
      pending.set(build, p);
    }
    m = await p;
  }
  modules.set(build, m);
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

/** A machine's memory and the instance that initialised it. */
export interface Machine {
  readonly memory: WebAssembly.Memory;
  readonly exports: CoreExports;
}

/**
 * Machines given back (Core.release()), by module and size, for the next Core.create() of the
 * same: instantiating costs more than a small run of the machine (the catalog makes over a
 * thousand). The core keeps all its state in the memory — no mutable globals — so a memory
 * made as instantiation left it is a new machine.
 */
const pools = new WeakMap<WebAssembly.Module, SizedPool<Machine>>();
/** The bytes below layout_base() as instantiation leaves them (the data segments), per module. */
const pristine = new WeakMap<WebAssembly.Module, Uint8Array>();
const POOLED_PER_SIZE = 2;
/** Only machines up to this size are kept: zeroing a big one costs what instantiating it does not. */
const POOLED_MAX_BYTES = 64 << 20;

/** A fresh machine of `pages`: one given back, made as new, or a new memory and instance. */
export function machine(module: WebAssembly.Module, pages: number): Machine {
  const m = pools.get(module)?.take(pages);
  const low = pristine.get(module);
  if (m !== undefined && low !== undefined) {
    new Uint8Array(m.memory.buffer).set(low, 0);
    m.exports.memory_reset(low.length);
    return m;
  }
  const memory = createMemory(pages);
  const exports = instantiate(module, memory);
  if (low === undefined) pristine.set(module, new Uint8Array(memory.buffer, 0, exports.layout_base() >>> 0).slice());
  return { memory, exports };
}

/** Gives a machine back for machine() to make new; nothing may use it afterwards. */
export function giveBack(module: WebAssembly.Module, m: Machine): void {
  const pages = m.memory.buffer.byteLength / WASM_PAGE;
  if (pages * WASM_PAGE > POOLED_MAX_BYTES) return;
  let pool = pools.get(module);
  if (pool === undefined) pools.set(module, (pool = new SizedPool(POOLED_PER_SIZE)));
  pool.give(pages, m);
}

const WASM_PAGE = 65536;
/** The largest memory a wasm32 module can address: 65536 pages of 64 KiB. */
export const MAX_MEMORY_BYTES = 65536 * WASM_PAGE;

const planners = new Map<WebAssembly.Module, CoreExports>();

/** layout_plan() of the module, run in a small private instance (it touches no memory). */
export function planBytes(module: WebAssembly.Module, args: readonly number[]): number {
  let p = planners.get(module);
  if (!p) {
    p = instantiate(module, createMemory(16));
    planners.set(module, p);
  }
  const [nframes, ntables, nslots, maxMms, maxThreads, dataBytes, scratchBytes] = args;
  return p.layout_plan(nframes!, ntables!, nslots!, maxMms!, maxThreads!, dataBytes!, scratchBytes!);
}

/**
 * A machine's memory of `pages` 64 KiB pages: shared, as the core declares it, so that worker
 * threads can attach to the machine. A page that is not cross-origin isolated has no
 * SharedArrayBuffer; Chromium still makes shared Wasm memories there (the machine then runs on
 * the creating thread only, as it cannot be posted to a worker), other browsers may refuse, and
 * then this says what the page needs.
 */
export function createMemory(pages: number): WebAssembly.Memory {
  try {
    return new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  } catch (e) {
    if ((globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated !== false) throw e;
    throw new Error(`cowsim: this page cannot make the shared WebAssembly memory the core needs (${(e as Error).message}): ` +
      "serve it cross-origin isolated, with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp");
  }
}

export function wasmPages(bytes: number): number {
  return Math.max(16, Math.ceil(bytes / WASM_PAGE));
}
