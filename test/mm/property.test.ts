// Random sequences of syscalls and accesses under anon-exclusive (Linux 6.12): every invariant
// holds after every step, the oracle finds no missed and no unnecessary COW, and every frame
// comes back once every process has exited.
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import {
  createKernel, CowsimError, type Kernel, type Process, PROT_READ, PROT_WRITE, PROT_NONE, MAP_PRIVATE,
  MAP_SHARED, MAP_ANONYMOUS, MAP_FIXED, MADV_DONTNEED, MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_DONTFORK,
  MADV_DOFORK, MREMAP_MAYMOVE, MREMAP_FIXED,
} from "../../src/index.js";
import { BUILD } from "../helpers.js";

const PAGE = 4096;
const WINDOW = 0x7f00_0000_0000;
const SLOTS = 48;
const at = (slot: number) => WINDOW + (slot % SLOTS) * PAGE;

type Op =
  | { op: "mmap"; slot: number; pages: number; shared: boolean; prot: number }
  | { op: "munmap"; slot: number; pages: number }
  | { op: "mprotect"; slot: number; pages: number; prot: number }
  | { op: "mremap"; slot: number; pages: number; newPages: number; to: number | null }
  | { op: "madvise"; slot: number; pages: number; advice: number }
  | { op: "fork"; who: number }
  | { op: "exit"; who: number }
  | { op: "read"; who: number; slot: number }
  | { op: "write"; who: number; slot: number };

const slot = fc.nat(SLOTS - 1);
const pages = fc.integer({ min: 1, max: 6 });
const who = fc.nat(7);
const prot = fc.constantFrom(PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant("mmap" as const), slot, pages, shared: fc.boolean(), prot }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("munmap" as const), slot, pages }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("mprotect" as const), slot, pages, prot }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("mremap" as const), slot, pages, newPages: pages, to: fc.option(slot) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("madvise" as const), slot, pages,
      advice: fc.constantFrom(MADV_DONTNEED, MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_DONTFORK, MADV_DOFORK),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("fork" as const), who }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("exit" as const), who }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant("read" as const), who, slot }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant("write" as const), who, slot }) },
);

/** Applies one op; errno failures are legitimate outcomes, anything else is a bug. */
function apply(k: Kernel, live: Process[], o: Op, value: number): void {
  if (live.length === 0) live.push(k.spawn());
  const p = live[("who" in o ? o.who : 0) % live.length]!;
  try {
    switch (o.op) {
      case "mmap":
        p.mmap(at(o.slot), o.pages * PAGE, o.prot, (o.shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_FIXED);
        break;
      case "munmap": p.munmap(at(o.slot), o.pages * PAGE); break;
      case "mprotect": p.mprotect(at(o.slot), o.pages * PAGE, o.prot); break;
      case "mremap":
        if (o.to === null) p.mremap(at(o.slot), o.pages * PAGE, o.newPages * PAGE, MREMAP_MAYMOVE);
        else p.mremap(at(o.slot), o.pages * PAGE, o.newPages * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, at(o.to));
        break;
      case "madvise": p.madvise(at(o.slot), o.pages * PAGE, o.advice); break;
      case "fork": live.push(p.fork()); break;
      case "exit": p.exit(); live.splice(live.indexOf(p), 1); break;
      case "read": p.read(at(o.slot)); break;
      case "write": p.write(at(o.slot), value); break;
    }
    tally.ok!++;
    tally[o.op] = (tally[o.op] ?? 0) + 1;
  } catch (e) {
    if (!(e instanceof CowsimError)) throw e;
    tally.errno!++;
  }
}

const tally: Record<string, number> = { ok: 0, errno: 0 };
function run(ops: Op[]): void {
  const k = createKernel({ strategy: "anon-exclusive", memory: "2M", build: BUILD, maxProcesses: 16 });
  const first = k.spawn();
  first.mmap(WINDOW, SLOTS * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
  const live: Process[] = [first];
  ops.forEach((o, i) => {
    apply(k, live, o, i + 1);
    const v = k.checkInvariants();
    if (v.length) throw new Error(`after op ${i} ${JSON.stringify(o)}: ${v.map((x) => `${x.invariant}: ${x.detail}`).join("; ")}`);
    const latent = k.latentMissedCows();
    if (latent.length) throw new Error(`after op ${i} ${JSON.stringify(o)}: latent missed COW ${JSON.stringify(latent[0])}`);
  });
  const latent = k.latentMissedCows();
  if (latent.length) throw new Error(`latent missed COW: ${JSON.stringify(latent[0])}`);
  const bad = k.findings.filter((f) => f.kind === "missed-cow" || f.kind === "unnecessary-cow");
  if (bad.length) throw new Error(bad.map((f) => f.summary).join("; "));
  for (const p of [...live]) p.exit();
  k.drainLru();
  expect(k.checkInvariants()).toEqual([]);
  expect(k.core.freePages()).toBe(k.core.layout.nframes - 1);
  expect(k.anonVmas.size).toBe(0);
}

describe("random syscall sequences under anon-exclusive", () => {
  it("keep every invariant, find no missed or unnecessary COW, and free every frame", () => {
    fc.assert(fc.property(fc.array(opArb, { minLength: 5, maxLength: 80, size: "max" }), (ops) => run(ops)), {
      numRuns: Number(process.env.COWSIM_PROPERTY_RUNS ?? (process.env.CI ? 150 : 100)),
      seed: Number(process.env.COWSIM_PROPERTY_SEED ?? 20261123),
    });
    // the generator must reach the interesting paths, not only fail with errno
    expect(tally.ok).toBeGreaterThan(2 * tally.errno!);
    console.log(JSON.stringify(tally));
    for (const op of ["mmap", "munmap", "mprotect", "mremap", "madvise", "fork", "exit", "read", "write"]) {
      expect(tally[op], op).toBeGreaterThan(50);
    }
  });
});
