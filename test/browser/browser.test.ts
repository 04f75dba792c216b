// The library in a browser: one bundle of test/browser/page.ts for the browser (esbuild), served
// on 127.0.0.1 and run in headless Chromium, once cross-origin isolated (COOP/COEP: the page
// has SharedArrayBuffer) and once not (it has none, and the library still runs, on the page's
// thread). The page reports its results; every value is checked, and the console must stay clean.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { chromium } from "playwright-core";

const root = fileURLToPath(new URL("../../", import.meta.url));
const CHROMIUM = process.env["CHROMIUM"] ?? "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
/** Without Chromium the test is skipped, except in CI (.ci/run installs it): there it must run. */
const skip = !haveChromium && process.env["CI"] !== "true";

/** The bundle sits two levels below the root, as dist/core/wasm.js does in the package, so the
 * core's default place, new URL("../../build/cowsim.release.wasm", import.meta.url), is served. */
const BUNDLE = "/dist/browser/page.js";
const PAGE = `<!doctype html><meta charset="utf-8"><title>cowsim</title><link rel="icon" href="data:,"><script type="module" src="${BUNDLE}"></script>`;

let bundle = "";
let server: Server;
let base = "";
/** Whether responses carry COOP/COEP: switched per mode, on one server. */
let isolate = true;

beforeAll(async () => {
  if (skip) return;
  const out = await build({
    entryPoints: [join(root, "test/browser/page.ts")],
    bundle: true, platform: "browser", format: "esm", target: "es2022", write: false,
    loader: { ".yaml": "text" }, logLevel: "silent",
  }).catch((e: Error) => {
    throw new Error(`the library does not bundle for a browser (no node:* module may be reachable from src/index.ts):\n${e.message}`);
  });
  bundle = out.outputFiles[0]!.text;
  server = createServer((req, res) => {
    const headers: Record<string, string> = isolate
      ? { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" } : {};
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const wasm = /^\/build\/(cowsim\.(?:release|debug)\.wasm)$/.exec(path);
    if (path === "/") res.writeHead(200, { ...headers, "Content-Type": "text/html; charset=utf-8" }).end(PAGE);
    else if (path === BUNDLE) res.writeHead(200, { ...headers, "Content-Type": "text/javascript; charset=utf-8" }).end(bundle);
    else if (wasm) res.writeHead(200, { ...headers, "Content-Type": "application/wasm" }).end(readFileSync(join(root, "build", wasm[1]!)));
    else res.writeHead(404, headers).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}/`;
}, 60_000);

afterAll(async () => {
  if (server) await new Promise((resolve) => server.close(resolve));
});

/** Opens the page in a fresh headless Chromium and returns what it reports and what its console said. */
async function runPage(): Promise<{ result: unknown; problems: string[] }> {
  const profile = mkdtempSync(join(tmpdir(), "cowsim-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--no-first-run",
    ],
  });
  const problems: string[] = [];
  try {
    const page = context.pages()[0] ?? await context.newPage();
    page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") problems.push(`console.${m.type()}: ${m.text()}`); });
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()} (${r.failure()?.errorText ?? "?"})`));
    await page.goto(base);
    await page.waitForFunction(() => (window as { cowsimResult?: unknown }).cowsimResult !== undefined, undefined, { timeout: 30_000 });
    const result = await page.evaluate(() => (window as { cowsimResult?: unknown }).cowsimResult);
    return { result, problems };
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

const README = { childReads: 1, parentReads: 2, copies: 1, findings: 0 };
const CVE = {
  name: "CVE-2020-29374: vmsplice() in the child, unmap, the parent writes",
  pass: true,
  runs: [
    { run: "mapcount", pass: true, findings: ["missed-cow"], copies: 0, reuses: 1, missedCow: 1, pipe: [2] },
    { run: "pagecount", pass: true, findings: [], copies: 1, reuses: 0, missedCow: 0, pipe: [1] },
    { run: "anon-exclusive", pass: true, findings: [], copies: 1, reuses: 0, missedCow: 0, pipe: [1] },
  ],
};

/** What createKernel() says before loadCore() has loaded the core. */
const notLoaded = () => `cowsim: the release core (${base}build/cowsim.release.wasm) is not loaded yet, and it cannot be read synchronously here: ` +
  "await loadCore() once before creating a machine, or pass the core as a WebAssembly.Module or its bytes";

describe.skipIf(skip)(`in headless Chromium (${CHROMIUM})`, () => {
  it("runs the README's example and CVE-2020-29374 cross-origin isolated (COOP/COEP)", async () => {
    isolate = true;
    const { result, problems } = await runPage();
    expect(result).toEqual({ crossOriginIsolated: true, sharedArrayBuffer: "function", notLoaded: notLoaded(), readme: README, scenario: CVE });
    expect(problems).toEqual([]);
  });

  it("runs them without COOP/COEP too, on the page's thread, without SharedArrayBuffer", async () => {
    isolate = false;
    const { result, problems } = await runPage();
    expect(result).toEqual({
      crossOriginIsolated: false, sharedArrayBuffer: "undefined", notLoaded: notLoaded(), readme: README, scenario: CVE,
      refused: "cowsim: this page cannot make the shared WebAssembly memory the core needs (shared memory is unavailable here): " +
        "serve it cross-origin isolated, with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp",
    });
    expect(problems).toEqual([]);
  });
});
