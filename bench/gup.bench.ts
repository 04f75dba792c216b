/**
 * npm run bench:gup [-- --json] [-- --kernel]
 *
 * GUP and its users, and the swap paths, through the public API in one run: pin_user_pages()
 * + unpin through GUP-fast and the slow path alone (ns per page), vmsplice() into a pipe (ns
 * per page), io_uring fixed-buffer registration (µs per MiB), MADV_PAGEOUT and swap-in read
 * faults (ns per page) — each with the oracle off and on, beside the real kernel's figures
 * (the development machine's; with --kernel, this machine's where it can measure them, by
 * bench/kernel/gup.c in the same run — pageout and swap-in need an active swap device).
 */
import { createKernel, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MADV_PAGEOUT, FOLL_PIN, type Kernel, type Pipe, type FixedBuffers, type UserPages } from "../dist/index.js";
import { json, timed, runCases, kernelFigures, addLinux, printTable, type Case } from "./harness.js";

const RW = PROT_READ | PROT_WRITE;
const PRIV = MAP_PRIVATE | MAP_ANONYMOUS;
const PAGE = 4096;
const N = 8192; // pages per round (32 MiB)
const MiB = 2 ** 20;
const PIN_BATCH = 512; // pages per pin_user_pages() call
const VMSPLICE_BATCH = 256; // pages per vmsplice(): a 1 MiB pipe, as bench/kernel/gup.c uses

function kernel(oracle: boolean): Kernel {
  return createKernel({ strategy: "anon-exclusive", memory: "160M", swap: "64M", oracle, build: "release" });
}

const cases: Case[] = [];

for (const oracle of [false, true]) {
  const k = kernel(oracle);
  const p = k.spawn();
  const suffix = oracle ? "Oracle" : "";
  const on = oracle ? ", oracle on" : "";
  const resident = p.mmap(null, N * PAGE, RW, PRIV);
  for (let i = 0; i < N; i++) p.write(resident + i * PAGE, i + 1);
  k.drainLru();

  cases.push(timed(`gupFastPinUnpinNsPerPage${suffix}`, `GUP-fast pin + unpin${on}`, N,
    () => null,
    () => {
      for (let i = 0; i < N; i += PIN_BATCH) p.pinUserPages(resident + i * PAGE, PIN_BATCH, FOLL_PIN, true).release();
    },
    () => {},
  ));
  cases.push(timed(`gupSlowPinNsPerPage${suffix}`, `slow-path pin${on}`, N,
    () => [] as UserPages[],
    (pins) => {
      for (let i = 0; i < N; i += PIN_BATCH) pins.push(p.pinUserPages(resident + i * PAGE, PIN_BATCH, FOLL_PIN, false));
    },
    (pins) => { for (const u of pins) u.release(); },
  ));
  cases.push(timed(`vmspliceNsPerPage${suffix}`, `vmsplice${on}`, N,
    () => [] as Pipe[],
    (pipes) => {
      for (let i = 0; i < N; i += VMSPLICE_BATCH) pipes.push(p.vmsplice(resident + i * PAGE, VMSPLICE_BATCH * PAGE));
    },
    (pipes) => { for (const pipe of pipes) pipe.release(); },
  ));
  cases.push(timed(`ioUringRegisterUsPerMiB${suffix}`, `io_uring buffer registration${on}`, (N * PAGE) / MiB,
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
  cases.push(timed(`pageoutNsPerPage${suffix}`, `MADV_PAGEOUT${on}`, N,
    populate,
    (a) => p.madvise(a, N * PAGE, MADV_PAGEOUT),
    (a) => p.munmap(a, N * PAGE),
  ));
  cases.push(timed(`swapinNsPerPage${suffix}`, `swap-in read fault${on}`, N,
    () => { const a = populate(); p.madvise(a, N * PAGE, MADV_PAGEOUT); return a; },
    (a) => { for (let i = 0; i < N; i++) p.read(a + i * PAGE); },
    (a) => p.munmap(a, N * PAGE),
  ));
}

const results = runCases(cases);

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
