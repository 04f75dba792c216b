// @ts-check
// The README's library example: a parent writes a page, forks, and writes it again. The write
// fault finds the page shared with the child, and do_wp_page() copies it: the child keeps 1.
//
//   node examples/fork-cow.js
import { createKernel, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from "cowsim";

const k = createKernel({ strategy: "anon-exclusive", memory: "256M" });
const parent = k.spawn();
const buf = parent.mmap(null, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
parent.write(buf, 1); // a page's contents are one value
const child = parent.fork();
parent.write(buf, 2); // write fault: do_wp_page() copies, the child keeps 1

console.log(`${k.strategy.id} (${k.strategy.kernels})`);
console.log(`parent reads ${parent.read(buf)}, child reads ${child.read(buf)}`);
const c = k.counters();
console.log(`write faults ${c.wpFaults}, copies ${c.copies}, reuses ${c.reuses}`);
console.log(`findings: ${k.findings.length === 0 ? "none" : k.findings.map((f) => f.kind).join(", ")}`);
