/**
 * npm run bench:uffd [-- --json] [-- --kernel]
 *
 * userfaultfd through the public API, in one run: UFFDIO_COPY per page (8192 pages in one
 * ioctl, and one page per ioctl), UFFDIO_ZEROPAGE per page, UFFDIO_WRITEPROTECT on and off per
 * PTE of a populated range, a MISSING fault's round trip (the access blocks, the handler reads
 * the message and answers with a one-page UFFDIO_COPY, the access resumes), and UFFDIO_MOVE per
 * 4 KiB page and per PMD-mapped 2 MiB THP — each with the oracle off and on, beside the real
 * kernel's figures (the development machine's; with --kernel, this machine's, measured by
 * bench/kernel/uffd.c in the same run).
 *
 * Every case checks the counter or state that proves it did what it says (uffdFilled, a
 * PMD-mapped destination, a message read) outside the timed part, and throws when it did not.
 * Each case runs three times untimed before it is measured; its figure is its median run's, as
 * the kernel's figures are the median of bench/kernel/uffd.c's rounds.
 */
import {
  createKernel, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MADV_HUGEPAGE, UFFDIO_REGISTER_MODE_MISSING,
  UFFDIO_REGISTER_MODE_WP, UFFDIO_WRITEPROTECT_MODE_WP, UFFD_FEATURE_MOVE, type Kernel, type Process, type Userfaultfd,
} from "../dist/index.js";
import { json, timed, runCases, kernelFigures, addLinux, printTable, type Case, type Row } from "./harness.js";

const RW = PROT_READ | PROT_WRITE;
const PRIV = MAP_PRIVATE | MAP_ANONYMOUS;
const PAGE = 4096;
const HPAGE = 2 * 2 ** 20;
const PAGES = 8192; // per round, as bench/kernel/uffd.c
const FAULTS = 4096;
const THPS = 64;

type Counter = keyof ReturnType<Kernel["counters"]>;

function expectGrown(k: Kernel, c: Counter, before: number, n: number, what: string): void {
  const got = (k.counters()[c] ?? 0) - before;
  if (got < n) throw new Error(`bench:uffd: ${what}: ${c} grew by ${got}, not ${n}`);
}

/** A range of `len` bytes, 2 MiB-aligned, with `advice` when given. */
function plain(p: Process, len: number, advice?: number): { raw: number; a: number } {
  const raw = p.mmap(null, len + HPAGE, RW, PRIV);
  const a = Math.ceil(raw / HPAGE) * HPAGE;
  if (advice !== undefined) p.madvise(a, len, advice);
  return { raw, a };
}

/** A registered range of `len` bytes (2 MiB-aligned, with `advice` when given). */
function registered(p: Process, u: Userfaultfd, len: number, mode: number, advice?: number): { raw: number; a: number } {
  const r = plain(p, len, advice);
  u.register(r.a, len, mode);
  return r;
}
const release = (p: Process, r: { raw: number }, len: number) => p.munmap(r.raw, len + HPAGE);

type Mover = Userfaultfd & { move?: (dst: number, src: number, len: number, mode?: number) => number };

const cases: Case[] = [];
let moves = false;
for (const oracle of [false, true]) {
  const k = createKernel({ strategy: "anon-exclusive", memory: "1200M", oracle, build: "release" });
  const p = k.spawn();
  const u = p.userfaultfd() as Mover;
  u.api(typeof u.move === "function" ? UFFD_FEATURE_MOVE : 0);
  moves = typeof u.move === "function";
  const suffix = oracle ? "Oracle" : "";
  const on = oracle ? ", oracle on" : "";
  const count = (c: Counter) => k.counters()[c] ?? 0;
  const len = PAGES * PAGE;

  cases.push(timed(`copyPageNs${suffix}`, `UFFDIO_COPY of ${PAGES} pages, per page${on}`, PAGES,
    () => ({ ...registered(p, u, len, UFFDIO_REGISTER_MODE_MISSING), before: count("uffdFilled") }),
    ({ a }) => u.copy(a, len, { value: 7 }),
    (s) => { expectGrown(k, "uffdFilled", s.before, PAGES, "UFFDIO_COPY"); release(p, s, len); },
  ));
  cases.push(timed(`copyOnePageIoctlNs${suffix}`, `UFFDIO_COPY one page per ioctl${on}`, PAGES,
    () => ({ ...registered(p, u, len, UFFDIO_REGISTER_MODE_MISSING), before: count("uffdFilled") }),
    ({ a }) => { for (let i = 0; i < PAGES; i++) u.copy(a + i * PAGE, PAGE, { value: i + 1 }); },
    (s) => { expectGrown(k, "uffdFilled", s.before, PAGES, "UFFDIO_COPY per page"); release(p, s, len); },
  ));
  cases.push(timed(`zeropagePageNs${suffix}`, `UFFDIO_ZEROPAGE, per page${on}`, PAGES,
    () => ({ ...registered(p, u, len, UFFDIO_REGISTER_MODE_MISSING), before: count("uffdFilled") }),
    ({ a }) => u.zeropage(a, len),
    (s) => { expectGrown(k, "uffdFilled", s.before, PAGES, "UFFDIO_ZEROPAGE"); release(p, s, len); },
  ));
  const populatedWp = () => {
    const r = registered(p, u, len, UFFDIO_REGISTER_MODE_WP);
    for (let i = 0; i < PAGES; i++) p.write(r.a + i * PAGE, i + 1);
    return r;
  };
  cases.push(timed(`wpOnPageNs${suffix}`, `UFFDIO_WRITEPROTECT on, per PTE${on}`, PAGES,
    populatedWp,
    ({ a }) => u.writeprotect(a, len, UFFDIO_WRITEPROTECT_MODE_WP),
    (s) => {
      const w = p.access(true, s.a, 1);
      if (w.state !== "blocked") throw new Error("bench:uffd: not write-protected");
      u.read();
      u.writeprotect(s.a, len, 0);
      w.resume();
      release(p, s, len);
    },
  ));
  cases.push(timed(`wpOffPageNs${suffix}`, `UFFDIO_WRITEPROTECT off, per PTE${on}`, PAGES,
    () => { const r = populatedWp(); u.writeprotect(r.a, len, UFFDIO_WRITEPROTECT_MODE_WP); return r; },
    ({ a }) => u.writeprotect(a, len, 0),
    (s) => { p.write(s.a, 1); release(p, s, len); },
  ));
  cases.push(timed(`missingFaultRoundTripNs${suffix}`, `a MISSING fault's round trip${on}`, FAULTS,
    () => registered(p, u, FAULTS * PAGE, UFFDIO_REGISTER_MODE_MISSING),
    ({ a }) => {
      for (let i = 0; i < FAULTS; i++) {
        const w = p.access(true, a + i * PAGE, i + 1);
        const m = u.read();
        if (m.event === "pagefault") u.copy(m.address, PAGE, { value: 0 });
        w.resume();
      }
    },
    (s) => { if (p.read(s.a + PAGE) !== 2) throw new Error("bench:uffd: a round trip lost its write"); release(p, s, FAULTS * PAGE); },
  ));
  if (moves) {
    cases.push(timed(`movePageNs${suffix}`, `UFFDIO_MOVE of ${PAGES} pages, per page${on}`, PAGES,
      () => {
        // the source need not be registered, only the destination
        const src = plain(p, len);
        for (let i = 0; i < PAGES; i++) p.write(src.a + i * PAGE, i + 1);
        return { src, dst: registered(p, u, len, UFFDIO_REGISTER_MODE_MISSING) };
      },
      ({ src, dst }) => u.move!(dst.a, src.a, len),
      ({ src, dst }) => {
        if (p.read(dst.a + PAGE) !== 2) throw new Error("bench:uffd: UFFDIO_MOVE lost a page");
        release(p, src, len);
        release(p, dst, len);
      },
    ));
    const tlen = THPS * HPAGE;
    cases.push(timed(`moveThpNs${suffix}`, `UFFDIO_MOVE of a PMD-mapped THP${on}`, THPS,
      () => {
        const src = plain(p, tlen, MADV_HUGEPAGE);
        for (let i = 0; i < THPS; i++) p.write(src.a + i * HPAGE, i + 1);
        if (!p.pmdMapped(src.a)) throw new Error("bench:uffd: no THP to move");
        return { src, dst: registered(p, u, tlen, UFFDIO_REGISTER_MODE_MISSING, MADV_HUGEPAGE) };
      },
      ({ src, dst }) => u.move!(dst.a, src.a, tlen),
      ({ src, dst }) => {
        if (!p.pmdMapped(dst.a)) throw new Error("bench:uffd: the THP was not moved whole");
        release(p, src, tlen);
        release(p, dst, tlen);
      },
    ));
  }
}

// three untimed rounds of each case first (the oracle-off cases run first, and would otherwise
// pay for the engine's compilation of the whole path), then the median run, as the kernel's
const results = runCases(cases, { warmup: 3, median: true });

// the development machine's kernel (6.18), measured by npm run bench:kernel -- uffd
const REFERENCE: Record<string, number> = {
  movePageNs: 85, moveThpNs: 665, wpOnPageNs: 80, wpOffPageNs: 85, copyPageNs: 1200, copyOnePageIoctlNs: 2100,
  zeropagePageNs: 110, missingFaultRoundTripNs: 15800,
};
const KERNEL = kernelFigures("uffd", REFERENCE).figures;
addLinux(results, KERNEL);
const ROWS: Row[] = [
  { label: "UFFDIO_COPY, per page (8192 in one ioctl)", key: "copyPageNs", unit: "ns", linux: KERNEL.copyPageNs },
  { label: "UFFDIO_COPY, one page per ioctl", key: "copyOnePageIoctlNs", unit: "ns", linux: KERNEL.copyOnePageIoctlNs },
  { label: "UFFDIO_ZEROPAGE, per page", key: "zeropagePageNs", unit: "ns", linux: KERNEL.zeropagePageNs },
  { label: "UFFDIO_WRITEPROTECT on, per PTE", key: "wpOnPageNs", unit: "ns", linux: KERNEL.wpOnPageNs },
  { label: "UFFDIO_WRITEPROTECT off, per PTE", key: "wpOffPageNs", unit: "ns", linux: KERNEL.wpOffPageNs },
  { label: "MISSING fault round trip (read + UFFDIO_COPY + wake)", key: "missingFaultRoundTripNs", unit: "ns", linux: KERNEL.missingFaultRoundTripNs },
];
if (moves) {
  ROWS.push({ label: "UFFDIO_MOVE, per 4 KiB page", key: "movePageNs", unit: "ns", linux: KERNEL.movePageNs });
  ROWS.push({ label: "UFFDIO_MOVE, per 2 MiB THP", key: "moveThpNs", unit: "ns", linux: KERNEL.moveThpNs });
}
if (json) console.log(JSON.stringify(results));
else printTable(results, ROWS);
