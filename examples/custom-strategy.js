// @ts-check
// A COW strategy of your own, judged by the oracle beside the built-in ones. "always-copy"
// never reuses a page on a write fault: it never leaks data, but copies pages nobody else can
// see. The same steps run under it (createKernel) and under the three built-in strategies
// (compareStrategies).
//
//   node examples/custom-strategy.js
import { createKernel, compareStrategies, makeStrategy, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from "cowsim";

/** @type {import("cowsim").CowStrategy} */
const alwaysCopy = {
  // every answer but the write fault's is Linux 6.12's
  ...makeStrategy("anon-exclusive"),
  id: "always-copy",
  title: "copy on every write fault to a read-only anonymous page",
  kernels: "no kernel",
  commits: [],
  wpReuse: () => ({ reuse: false, rule: "always-copy: never reuse" }),
};

/**
 * A parent forks, the child exits, the parent writes: the page is the parent's alone again, so
 * a copy is unnecessary. Then the parent forks again and writes: that copy is necessary.
 * @param {import("cowsim").Kernel} k
 */
function steps(k) {
  const parent = k.spawn();
  const buf = parent.mmap(null, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  parent.write(buf, 1);
  parent.fork().exit();
  parent.write(buf, 2);
  const child = parent.fork();
  parent.write(buf, 3);
  return child.read(buf);
}

const rows = Object.values(compareStrategies(steps)).map((r) => ({ ...r, id: r.strategy }));
const k = createKernel({ strategy: alwaysCopy });
const value = steps(k);
rows.push({ id: alwaysCopy.id, kernels: alwaysCopy.kernels, value, counters: k.counters(), findings: k.findings });

console.log("strategy        kernels              child reads  copies  reuses  unnecessary  missed");
for (const r of rows) {
  const c = r.counters;
  console.log(`${r.id.padEnd(15)} ${r.kernels.padEnd(20)} ${String(r.value).padStart(11)}  ${String(c.copies).padStart(6)}  ${String(c.reuses).padStart(6)}  ${String(c.unnecessaryCow).padStart(11)}  ${String(c.missedCow).padStart(6)}`);
}
