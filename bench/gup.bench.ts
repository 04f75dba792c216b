/**
 * npm run bench:gup [-- --json] [-- --kernel] [-- --tree DIR] [-- --rounds N]
 *
 * GUP and its users, and the swap paths, through the public API in one run: pin_user_pages()
 * + unpin through GUP-fast and the slow path alone (ns per page), vmsplice() into a pipe (ns
 * per page), io_uring fixed-buffer registration (µs per MiB), MADV_PAGEOUT and swap-in read
 * faults (ns per page) — each with the oracle off and on, beside the real kernel's figures
 * (the development machine's; with --kernel, this machine's where it can measure them, by
 * bench/kernel/gup.c in the same run — pageout and swap-in need an active swap device).
 *
 * With --tree DIR the same cases run against the cowsim checkout in DIR (built) too,
 * interleaved run by run for --rounds N rounds (default 15), as bench:mm's --tree does.
 */
import { resolve, basename } from "node:path";
import * as here from "../dist/index.js";
import type { Pipe, FixedBuffers, UserPages } from "../dist/index.js";
import { argValues, json, runCases, kernelFigures, addLinux, printTable, spec, timedSpecs, compareTrees, treeApi, type Spec } from "./harness.js";

type Api = typeof here;

const PAGE = 4096;
const N = 8192; // pages per round (32 MiB)
const MiB = 2 ** 20;
const PIN_BATCH = 512; // pages per pin_user_pages() call
const VMSPLICE_BATCH = 256; // pages per vmsplice(): a 1 MiB pipe, as bench/kernel/gup.c uses

/** The cases, through `api` (this checkout's or another's). */
function casesOf(api: Api): Spec[] {
  const RW = api.PROT_READ | api.PROT_WRITE;
  const PRIV = api.MAP_PRIVATE | api.MAP_ANONYMOUS;
  const cases: Spec[] = [];
  for (const oracle of [false, true]) {
    const k = api.createKernel({ strategy: "anon-exclusive", memory: "160M", swap: "64M", oracle, build: "release" });
    const p = k.spawn();
    const suffix = oracle ? "Oracle" : "";
    const on = oracle ? ", oracle on" : "";
    const resident = p.mmap(null, N * PAGE, RW, PRIV);
    for (let i = 0; i < N; i++) p.write(resident + i * PAGE, i + 1);
    k.drainLru();

    cases.push(spec(`gupFastPinUnpinNsPerPage${suffix}`, `GUP-fast pin + unpin${on}`, N,
      () => null,
      () => {
        for (let i = 0; i < N; i += PIN_BATCH) p.pinUserPages(resident + i * PAGE, PIN_BATCH, api.FOLL_PIN, true).release();
      },
      () => {},
    ));
    cases.push(spec(`gupSlowPinNsPerPage${suffix}`, `slow-path pin${on}`, N,
      () => [] as UserPages[],
      (pins) => {
        for (let i = 0; i < N; i += PIN_BATCH) pins.push(p.pinUserPages(resident + i * PAGE, PIN_BATCH, api.FOLL_PIN, false));
      },
      (pins) => { for (const u of pins) u.release(); },
    ));
    cases.push(spec(`vmspliceNsPerPage${suffix}`, `vmsplice${on}`, N,
      () => [] as Pipe[],
      (pipes) => {
        for (let i = 0; i < N; i += VMSPLICE_BATCH) pipes.push(p.vmsplice(resident + i * PAGE, VMSPLICE_BATCH * PAGE));
      },
      (pipes) => { for (const pipe of pipes) pipe.release(); },
    ));
    cases.push(spec(`ioUringRegisterUsPerMiB${suffix}`, `io_uring buffer registration${on}`, (N * PAGE) / MiB,
      () => [] as FixedBuffers[],
      (bufs) => {
        for (let off = 0; off < N * PAGE; off += MiB) bufs.push(p.ioUringRegisterBuffers(resident + off, MiB));
      },
      (bufs) => { for (const b of bufs) b.unregister(); },
      "us",
    ));
    const populate = () => {
      const a = p.mmap(null, N * PAGE, RW, PRIV);
      for (let i = 0; i < N; i++) p.write(a + i * PAGE, i + 1);
      return a;
    };
    cases.push(spec(`pageoutNsPerPage${suffix}`, `MADV_PAGEOUT${on}`, N,
      populate,
      (a) => p.madvise(a, N * PAGE, api.MADV_PAGEOUT),
      (a) => p.munmap(a, N * PAGE),
    ));
    cases.push(spec(`swapinNsPerPage${suffix}`, `swap-in read fault${on}`, N,
      () => { const a = populate(); p.madvise(a, N * PAGE, api.MADV_PAGEOUT); return a; },
      (a) => { for (let i = 0; i < N; i++) p.read(a + i * PAGE); },
      (a) => p.munmap(a, N * PAGE),
    ));
  }
  return cases;
}

const trees = argValues("--tree");
if (trees.length > 1) throw new Error("bench:gup compares with one other tree at a time");
if (trees.length === 1) {
  const dir = resolve(trees[0]!);
  compareTrees(casesOf(here), casesOf(await treeApi<Api>(dir)), basename(dir), Number(argValues("--rounds")[0] ?? 15));
  process.exit(0);
}

const results = runCases(timedSpecs(casesOf(here)));

// the figures the targets were set against (the development machine's); --kernel measures
// vmsplice and io_uring here, and pageout and swap-in where a swap device is active
const REFERENCE: Record<string, number> = { vmspliceNsPerPage: 87, ioUringRegisterUsPerMiB: 29, pageoutNsPerPage: 5200, swapinNsPerPage: 4800 };
const KERNEL = kernelFigures("gup", REFERENCE).figures;
addLinux(results, KERNEL);
if (json) {
  console.log(JSON.stringify(results));
} else {
  printTable(results, [
    { label: "GUP-fast pin + unpin, per page", key: "gupFastPinUnpinNsPerPage", unit: "ns" },
    { label: "slow-path pin, per page", key: "gupSlowPinNsPerPage", unit: "ns" },
    { label: "vmsplice, per page", key: "vmspliceNsPerPage", unit: "ns", linux: KERNEL.vmspliceNsPerPage },
    { label: "io_uring buffer registration", key: "ioUringRegisterUsPerMiB", unit: "µs/MiB", linux: KERNEL.ioUringRegisterUsPerMiB, digits: 1 },
    { label: "MADV_PAGEOUT, per page", key: "pageoutNsPerPage", unit: "ns", linux: KERNEL.pageoutNsPerPage },
    { label: "swap-in read fault", key: "swapinNsPerPage", unit: "ns", linux: KERNEL.swapinNsPerPage },
  ]);
}
