// @ts-check
// Device memory through the HMM test driver (lib/test_hmm.c): a page moves to a device's private
// memory and back, fork shares it read-only while it is there (seed 000 I.7b), and the child's
// write brings it back and copies it — what each process reads never changes.
//
//   node examples/device-memory.js
import { createKernel, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from "cowsim";

const k = createKernel({ strategy: "anon-exclusive", memory: "16M" });
const parent = k.spawn();
const buf = parent.mmap(null, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
parent.write(buf, 1);
parent.write(buf + 4096, 2);
const dev = parent.openDmirror(4); // four pages of device-private memory
console.log(`migrate to device: ${JSON.stringify(dev.migrateToDevice(buf, 2))}, free device pages ${dev.freePages}`);
console.log(`the device reads ${dev.read(buf)} and ${dev.read(buf + 4096)}`);
const child = parent.fork(); // device-private entries: readable in both, the page shared
child.write(buf, 3); // migrate_to_ram(), then the write copies
console.log(`parent reads ${parent.read(buf)} and ${parent.read(buf + 4096)}, child reads ${child.read(buf)} and ${child.read(buf + 4096)}`);
const c = k.counters();
console.log(`moved to the device ${c.deviceMigrated}, faulted back ${c.deviceMigratedToRam}, copies ${c.copies}, free device pages ${dev.freePages}`);
console.log(`findings: ${k.findings.length === 0 ? "none" : k.findings.map((f) => f.kind).join(", ")}`);
