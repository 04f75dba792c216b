// @ts-check
// A COW strategy of your own, judged by the oracle beside the built-in ones. "always-copy"
// never reuses a page on a write fault: it never leaks data, but copies pages nobody else can
// see. Registered, it is named like the built-in ones: the same steps run under all four
// (compareStrategies), as they would in a scenario file or under `cowsim --strategy-module`.
//
//   node examples/custom-strategy.js
import {
  compareStrategies, makeStrategy, registerStrategy, STRATEGY_IDS, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS,
} from "cowsim";

// checked member by member now: a missing or ill-typed one is named in the error
registerStrategy({
  // every answer but the write fault's is Linux 6.12's
  ...makeStrategy("anon-exclusive"),
  id: "always-copy",
  title: "copy on every write fault to a read-only anonymous page",
  kernels: "no kernel",
  commits: [],
  wpReuse: () => ({ reuse: false, rule: "always-copy: never reuse" }),
});

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

const results = compareStrategies(steps, { strategies: [...STRATEGY_IDS, "always-copy"] });

console.log("strategy        kernels              child reads  copies  reuses  unnecessary  missed");
for (const r of Object.values(results)) {
  const c = r.counters;
  console.log(`${r.strategy.padEnd(15)} ${r.kernels.padEnd(20)} ${String(r.value).padStart(11)}  ${String(c.copies).padStart(6)}  ${String(c.reuses).padStart(6)}  ${String(c.unnecessaryCow).padStart(11)}  ${String(c.missedCow).padStart(6)}`);
}
