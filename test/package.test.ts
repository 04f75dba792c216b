// The package as npm would publish it: exactly the files it should ship (and nothing else),
// source maps that name only files it ships, an exports map whose every target is shipped,
// the API docs' entry points the exports' sources, and the entries working from outside —
// import and require, cowsim/node, cowsim/core, `cowsim --version`.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, existsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, posix, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../", import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  version: string; files: string[]; exports: Record<string, string | Record<string, string>>;
  bin: Record<string, string>; sideEffects: boolean; license: string; scripts: Record<string, string>;
};

/** Every file under `dir` (relative to the root, with forward slashes). */
function walk(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => posix.join(relative(root, e.parentPath).split("\\").join("/"), e.name));
}

const sources = walk("src").filter((f) => f.endsWith(".ts"));
/** What tsc makes of each source (tsconfig.build.json: rootDir src, outDir dist, maps of both). */
const built = sources.flatMap((f) => {
  const base = "dist/" + f.slice("src/".length, -".ts".length);
  return [`${base}.js`, `${base}.js.map`, `${base}.d.ts`, `${base}.d.ts.map`];
});

/**
 * What scripts/bundle.mjs makes of tsc's output: an entry per package entry, worker and the CLI,
 * and the chunks they share (named by their contents' hash), each with its source map.
 */
const BUNDLE_ENTRIES = ["cowsim", "node", "core", "cli", "scenario-worker", "bench-worker", "gup-worker"];
const bundled = walk("dist/bundle");
built.push(...bundled.filter((f) => /^dist\/bundle\/chunk-[A-Z0-9]+\.js(\.map)?$/.test(f)),
  ...BUNDLE_ENTRIES.flatMap((e) => [`dist/bundle/${e}.js`, `dist/bundle/${e}.js.map`]));

/**
 * What `npm pack` would ship. prepack empties dist/ before it builds; here dist/ is what the
 * last build left (pretest built it), perhaps with the output of a source since renamed, which a
 * real pack would not have: that is left out.
 */
let packed: string[] = [];
beforeAll(() => {
  // --ignore-scripts: prepack would clean and rebuild dist/ under the other tests' feet
  const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  packed = (JSON.parse(out) as [{ files: { path: string }[] }])[0].files.map((f) => f.path)
    .filter((f) => !f.startsWith("dist/") || built.includes(f)).sort();
}, 60_000);

describe("npm pack", () => {
  it("ships the library, its sources, the core, the catalog, the examples, README and LICENSE — and nothing else", () => {
    const expected = [
      "package.json", "README.md", "LICENSE", "build/cowsim.release.wasm", "build/cowsim.debug.wasm",
      ...walk("scenarios"), ...walk("litmus"), ...walk("examples"), ...sources, ...built,
    ].sort();
    expect(pkg.scripts["prepack"]).toBe("npm run clean && npm run build");
    expect(pkg.scripts["clean"]).toContain("rmSync('dist'");
    expect(packed).toEqual(expected);
    for (const dir of ["test/", "assembly/", "bench/", "scripts/", "docs/", "node_modules/", ".ci/"]) {
      expect(packed.filter((f) => f.startsWith(dir)), dir).toEqual([]);
    }
  });

  it("has source maps and declaration maps that name only files it ships", () => {
    const maps = packed.filter((f) => f.endsWith(".map"));
    expect(maps.length).toBeGreaterThan(0);
    for (const map of maps) {
      const { sources } = JSON.parse(readFileSync(join(root, map), "utf8")) as { sources: string[] };
      for (const s of sources) expect(packed, `${map} names ${s}`).toContain(posix.join(posix.dirname(map), s));
    }
  });

  it("ships every target of its exports map and its bin, and says it has no side effects", () => {
    const targets = Object.values(pkg.exports).flatMap((t) => (typeof t === "string" ? [t] : Object.values(t)));
    for (const t of targets) expect(packed, t).toContain(t.replace(/^\.\//, ""));
    for (const [name, entry] of Object.entries(pkg.exports)) {
      if (typeof entry !== "string") expect(Object.keys(entry), name).toEqual(["types", "default"]);
    }
    const bin = pkg.bin["cowsim"]!.replace(/^\.\//, "");
    expect(packed).toContain(bin);
    expect(readFileSync(join(root, bin), "utf8").startsWith("#!/usr/bin/env node\n")).toBe(true);
    expect(pkg.sideEffects).toBe(false);
    expect(pkg.license).toBe("MIT");
    expect(readFileSync(join(root, "LICENSE"), "utf8")).toMatch(/^MIT License\n\nCopyright \(c\) 2026 cowsim contributors\n/);
  });

  it("documents with TypeDoc exactly the modules it exports", () => {
    const typedoc = JSON.parse(readFileSync(join(root, "typedoc.json"), "utf8")) as { entryPoints: string[] };
    const fromExports = Object.values(pkg.exports).flatMap((t) => (typeof t === "string" || !t["types"] ? [] : [t["types"]]))
      .map((t) => t.replace(/^\.\/dist\//, "src/").replace(/\.d\.ts$/, ".ts"));
    expect([...typedoc.entryPoints].sort()).toEqual(fromExports.sort());
  });
});

describe("the bundle", () => {
  it("is every entry and chunk scripts/bundle.mjs makes, and nothing stale", () => {
    expect(bundled.filter((f) => !built.includes(f))).toEqual([]);
    for (const e of BUNDLE_ENTRIES) expect(bundled, e).toContain(`dist/bundle/${e}.js`);
  });

  it("exports from each package entry exactly what tsc's module of it exports, the same things", async () => {
    for (const [entry, dist] of [["cowsim", "index"], ["node", "node"], ["core", "core/index"]] as const) {
      const fromBundle = (await import(join(root, `dist/bundle/${entry}.js`))) as Record<string, unknown>;
      const fromTsc = (await import(join(root, `dist/${dist}.js`))) as Record<string, unknown>;
      expect(Object.keys(fromBundle).sort(), entry).toEqual(Object.keys(fromTsc).sort());
      for (const name of Object.keys(fromTsc)) expect(typeof fromBundle[name], `${entry}: ${name}`).toBe(typeof fromTsc[name]);
    }
  });

  it("shares one copy of each module between the entries: a strategy registered through cowsim is known to cowsim/node's runner", async () => {
    const lib = (await import(join(root, "dist/bundle/cowsim.js"))) as typeof import("../src/index.js");
    const core = (await import(join(root, "dist/bundle/core.js"))) as typeof import("../src/core/index.js");
    const node = (await import(join(root, "dist/bundle/node.js"))) as typeof import("../src/node.js");
    expect(node.createKernel).toBe(lib.createKernel);
    expect(core.loadCore).toBe(lib.loadCore);
    lib.registerStrategy({ ...lib.makeStrategy("mapcount"), id: "bundle-test" });
    try {
      expect(node.strategies().map((s) => s.id)).toContain("bundle-test");
      expect(node.createKernel({ memory: "4M", strategy: "bundle-test" }).strategy.id).toBe("bundle-test");
    } finally {
      lib.unregisterStrategy("bundle-test");
    }
  });
});

describe("the package from outside", () => {
  let dir = "";
  beforeAll(() => {
    // a project that depends on cowsim: node_modules/cowsim is this checkout
    dir = mkdtempSync(join(tmpdir(), "cowsim-user-"));
    mkdirSync(join(dir, "node_modules"));
    symlinkSync(root, join(dir, "node_modules", "cowsim"), "dir");
  });
  afterAll(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

  const node = (args: string[], input: string) => spawnSync(process.execPath, [...args, "-e", input], { cwd: dir, encoding: "utf8" });
  const README = `
    const k = createKernel({ strategy: "anon-exclusive", memory: "16M" });
    const parent = k.spawn();
    const buf = parent.mmap(null, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    parent.write(buf, 1);
    const child = parent.fork();
    parent.write(buf, 2);
    console.log(child.read(buf), k.counters().copies);`;

  it("imports cowsim, cowsim/node and cowsim/core", () => {
    const r = node(["--input-type=module"], `
      import { createKernel, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from "cowsim";
      import { catalogNames, runScenario } from "cowsim/node";
      import { Core } from "cowsim/core";
      ${README}
      console.log(catalogNames().includes("cve-2020-29374"), typeof runScenario, typeof Core.create);`);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("1 1\ntrue function function\n");
  });

  it("require()s them too (Node loads the ES modules synchronously)", () => {
    const r = node([], `
      const { createKernel, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } = require("cowsim");
      const { catalogNames } = require("cowsim/node");
      ${README}
      console.log(catalogNames().length > 0, require("cowsim") === require("cowsim"));`);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("1 1\ntrue true\n");
  });

  it("where require() of ES modules is off, says to import() instead", () => {
    const r = node(["--no-experimental-require-module"], `require("cowsim")`);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("ERR_REQUIRE_ESM");
    expect(r.stderr).toContain("dynamic import()");
  });

  it("its published types compile in a TypeScript project that checks them (skipLibCheck off), internals left out", () => {
    writeFileSync(join(dir, "use.ts"), `
      import { createKernel, registerStrategy, makeStrategy, type Kernel, type TraceEvents } from "cowsim";
      import { loadCatalogScenario, runScenario } from "cowsim/node";
      import { Core } from "cowsim/core";
      const k: Kernel = createKernel({ memory: "8M" });
      k.spawn().access(false, 0x1000).resume;
      k.on("wp_page_copy", (e: TraceEvents["wp_page_copy"]) => e.newPfn);
      registerStrategy({ ...makeStrategy("mapcount"), id: "mine" });
      createKernel({ snapshot: k.snapshot() });
      runScenario(loadCatalogScenario("cve-2020-29374")[0]!);
      Core.create({ frames: 16 });
      // @ts-expect-error the step bookkeeping of the kernel layer is internal
      k.beginAccess(1, 1, 0, 0);
    `);
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({
      compilerOptions: { strict: true, module: "NodeNext", moduleResolution: "NodeNext", target: "ES2022", noEmit: true, skipLibCheck: false, lib: ["ES2022", "DOM"], types: [] },
      files: ["use.ts"],
    }));
    const r = spawnSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", dir], { cwd: dir, encoding: "utf8" });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("keeps its insides to itself", () => {
    const r = node(["--input-type=module"], `await import("cowsim/dist/mm/kernel.js")`);
    expect(r.stderr).toContain("ERR_PACKAGE_PATH_NOT_EXPORTED");
  });

  it("cowsim --version prints the package's version", () => {
    const bin = join(dir, "node_modules", "cowsim", pkg.bin["cowsim"]!);
    expect(existsSync(bin)).toBe(true);
    for (const flag of ["--version", "-V"]) {
      const r = spawnSync(process.execPath, [bin, flag], { cwd: dir, encoding: "utf8" });
      expect([r.status, r.stdout, r.stderr]).toEqual([0, `${pkg.version}\n`, ""]);
    }
    expect(dirname(bin)).toBe(join(dir, "node_modules", "cowsim", "dist", "bundle"));
  });
});
