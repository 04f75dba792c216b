/**
 * node --import tsx bench/scale.bench.ts [--json] [--tree DIR]…
 *
 * How the address space's costs grow with its size, through the public API: mmap() of one page
 * without a hint and munmap() of one page (µs per call) in a process that already has 1k, 4k
 * and 32k VMAs; a read of a mapped page in a VMA picked at random among those (ns per read: the
 * VMA lookup that misses its cache, then the core's fast path); and kernel.checkInvariants()
 * (ms per call) with 1, 1001 and 4001 processes forked from one parent whose few written private
 * pages they all share (one anon_vma). Linux does the first three in O(log n) (the maple tree;
 * the augmented rbtree before 6.1). Then fork() of a process with 16 GiB populated (4 Mi PTEs,
 * 4 KiB pages: THP "madvise"), the child exiting untimed.
 *
 * The VMAs are one page each, PROT_READ|PROT_WRITE and PROT_READ in turn, so that no two
 * neighbours merge; the mappings measured continue the alternation. The oracle is off.
 *
 * With --tree DIR (repeatable) the same cases also run, in this process and interleaved with
 * this checkout's, against the cowsim checkout in DIR (its src/ and build/): the table shows
 * each beside this checkout, and how many times slower it is.
 */
import { pathToFileURL } from "node:url";
import { resolve, basename } from "node:path";
import * as here from "../src/index.js";
import { argValues, json, log, timed, runCases, type Case } from "./harness.js";

type Api = typeof here;
type Kernel = ReturnType<Api["createKernel"]>;
type Process = ReturnType<Kernel["spawn"]>;

const PAGE = 4096;
/** Calls per measured run (even, so the protections' alternation ends where it began). */
const BATCH = 64;
const SIZES: readonly [string, number][] = [["1k", 1000], ["4k", 4000], ["32k", 32000]];
const FORKED = [1, 1001, 4001] as const;
/** Reads per measured run. */
const READS = 4096;
/** Written pages of the forking parent. */
const PARENT_PAGES = 8;

interface Tree {
  label: string;
  api: Api;
  /** The process whose VMAs grow from one size to the next. */
  p: Process;
  /** Mappings so far: even ones are read-write, odd ones read-only. */
  mapped: number;
  /** The addresses of the VMAs the sizes are made of, each read once (its zero page mapped). */
  addrs: number[];
  /** The kernel of the forked processes and their count. */
  k: Kernel;
  forked: Process;
  processes: number;
}

async function loadTree(label: string, api: Api): Promise<Tree> {
  const maxVmas = SIZES[SIZES.length - 1]![1] + 4 * BATCH;
  const vk = api.createKernel({ memory: "16M", oracle: false, build: "release", maxMapCount: Math.max(65530, maxVmas) });
  const procs = FORKED[2];
  // each child copies the parent's four levels of page tables
  const k = api.createKernel({ memory: "64M", oracle: false, build: "release", maxProcesses: procs + 8, pageTables: 4 * procs + 256 });
  const parent = k.spawn();
  const a = parent.mmap(null, PARENT_PAGES * PAGE, api.PROT_READ | api.PROT_WRITE, api.MAP_PRIVATE | api.MAP_ANONYMOUS);
  for (let i = 0; i < PARENT_PAGES; i++) parent.write(a + i * PAGE, i + 1);
  return { label, api, p: vk.spawn(), mapped: 0, addrs: [], k, forked: parent, processes: 1 };
}

/** mmap() of one page, no hint, continuing the alternation of protections. */
function mapOne(t: Tree): number {
  const { api } = t;
  const prot = t.mapped++ % 2 === 0 ? api.PROT_READ | api.PROT_WRITE : api.PROT_READ;
  return t.p.mmap(null, PAGE, prot, api.MAP_PRIVATE | api.MAP_ANONYMOUS);
}

function unmapAll(t: Tree, addrs: number[]): void {
  for (const a of addrs) t.p.munmap(a, PAGE);
  t.mapped -= addrs.length;
}

const trees: Tree[] = [await loadTree("this checkout", here)];
for (const dir of argValues("--tree")) {
  const api = await import(pathToFileURL(resolve(dir, "src/index.ts")).href) as Api;
  trees.push(await loadTree(basename(resolve(dir)), api));
}
const keyOf = (t: Tree, key: string) => (t === trees[0] ? key : `${t.label}:${key}`);

const results: Record<string, number> = {};
for (const [name, n] of SIZES) {
  for (const t of trees) {
    while (t.mapped < n) {
      const a = mapOne(t);
      t.p.read(a);
      t.addrs.push(a);
    }
    if (t.p.maps().length !== n) throw new Error(`${t.label}: ${t.p.maps().length} VMAs, expected ${n}`);
  }
  log(`${name} VMAs:`);
  const cases: Case[] = [];
  for (const t of trees) {
    cases.push(timed(keyOf(t, `mmap${name}Us`), `${t.label}: mmap() with ${name} VMAs`, BATCH,
      () => [] as number[],
      (addrs: number[]) => { for (let i = 0; i < BATCH; i++) addrs.push(mapOne(t)); },
      (addrs: number[]) => unmapAll(t, addrs),
      "us"));
    cases.push(timed(keyOf(t, `munmap${name}Us`), `${t.label}: munmap() with ${name} VMAs`, BATCH,
      () => { const addrs: number[] = []; for (let i = 0; i < BATCH; i++) addrs.push(mapOne(t)); return addrs; },
      (addrs: number[]) => { for (const a of addrs) t.p.munmap(a, PAGE); },
      (addrs: number[]) => { t.mapped -= addrs.length; },
      "us"));
    // the same pseudo-random VMAs for every tree
    cases.push(timed(keyOf(t, `read${name}Ns`), `${t.label}: read in a random VMA of ${name}`, READS,
      () => null,
      () => { for (let i = 0, x = 1; i < READS; i++) { x = (x * 48271) % 2147483647; t.p.read(t.addrs[x % n]!); } },
      () => {}));
  }
  Object.assign(results, runCases(cases));
}
for (const n of FORKED) {
  for (const t of trees) {
    while (t.processes < n) {
      t.forked.fork();
      t.processes++;
    }
    if (t.k.processes.size !== n) throw new Error(`${t.label}: ${t.k.processes.size} processes, expected ${n}`);
    const v = t.k.checkInvariants();
    if (v.length) throw new Error(`${t.label}: ${v[0]!.invariant}: ${v[0]!.detail}`);
  }
  log(`${n} processes:`);
  Object.assign(results, runCases(trees.map((t) => timed(keyOf(t, `checkInvariants${n}Ms`),
    `${t.label}: checkInvariants() with ${n} processes`, 0, () => null, () => { t.k.checkInvariants(); }, () => {}, "ms"))));
}

// a 16 GiB populated process: fork copies its 4 Mi PTEs (copy_page_range()); the machine is made
// once per tree, the child exits between rounds
{
  log("a 16 GiB populated process:");
  const big = trees.map((t) => {
    const k = t.api.createKernel({ memory: "17G", oracle: false, build: "release", thp: { enabled: "madvise" } });
    const p = k.spawn();
    p.mmap(null, 16 * 2 ** 30, t.api.PROT_READ | t.api.PROT_WRITE, t.api.MAP_PRIVATE | t.api.MAP_ANONYMOUS | t.api.MAP_POPULATE);
    return { t, k, p, child: null as Process | null };
  });
  Object.assign(results, runCases(big.map((b) => timed(keyOf(b.t, "fork16GiBMs"), `${b.t.label}: fork() of 16 GiB populated`, 0,
    () => null, () => { b.child = b.p.fork(); }, () => { b.child!.exit(); }, "ms"))));
}

if (json) {
  console.log(JSON.stringify(results));
} else {
  const rows: [string, string, string][] = [
    ...SIZES.flatMap(([name]) => [
      [`mmap(), ${name} VMAs`, `mmap${name}Us`, "µs"], [`munmap(), ${name} VMAs`, `munmap${name}Us`, "µs"],
      [`read in a random VMA, ${name} VMAs`, `read${name}Ns`, "ns"],
    ] as [string, string, string][]),
    ...FORKED.map((n) => [`checkInvariants(), ${n} processes`, `checkInvariants${n}Ms`, "ms"] as [string, string, string]),
    ["fork() of 16 GiB populated", "fork16GiBMs", "ms"],
  ];
  const others = trees.slice(1);
  console.log(`\n| measure | ${trees.map((t) => t.label).join(" | ")} |${others.map((t) => ` ${t.label} ÷ this |`).join("")}`);
  console.log(`|${" --- |".repeat(trees.length + 1 + others.length)}`);
  for (const [label, key, unit] of rows) {
    const mine = results[key]!;
    const cells = trees.map((t) => `${results[keyOf(t, key)]!.toPrecision(3)} ${unit}`);
    const ratios = others.map((t) => `${(results[keyOf(t, key)]! / mine).toFixed(1)}×`);
    console.log(`| ${label} | ${[...cells, ...ratios].join(" | ")} |`);
  }
}
