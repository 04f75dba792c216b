import { createKernel, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from "./dist/index.js";
const N = 8192, PAGE = 4096;
const k = createKernel({ memory: "256M", oracle: process.argv[2] === "oracle" });
const p = k.spawn();
const times = { cow: [], reuse: [] };
for (let r = 0; r < 40; r++) {
  const a = p.mmap(null, N * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  for (let i = 0; i < N; i++) p.write(a + i * PAGE, i + 1);
  const c = p.fork();
  let t = process.hrtime.bigint(); for (let i = 0; i < N; i++) p.write(a + i * PAGE, i + 2); times.cow.push(Number(process.hrtime.bigint() - t) / N);
  c.exit();
  const c2 = p.fork(); c2.exit();
  t = process.hrtime.bigint(); for (let i = 0; i < N; i++) p.write(a + i * PAGE, i + 3); times.reuse.push(Number(process.hrtime.bigint() - t) / N);
  p.munmap(a, N * PAGE);
}
const med = (a) => a.slice(10).sort((x, y) => x - y)[Math.floor((a.length - 10) / 2)].toFixed(0);
console.log(process.argv[2] ?? "off", "cow", med(times.cow), "reuse", med(times.reuse));
