import { createKernel, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from "./dist/index.js";
const N = 8192, PAGE = 4096;
const k = createKernel({ memory: "256M", oracle: process.argv[2] !== "off", explain: process.argv[2] !== "noexplain" });
const p = k.spawn();
const times = [];
for (let r = 0; r < 60; r++) {
  const a = p.mmap(null, N * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  for (let i = 0; i < N; i++) p.write(a + i * PAGE, i + 1);
  const c2 = p.fork(); c2.exit();
  const t = process.hrtime.bigint(); for (let i = 0; i < N; i++) p.write(a + i * PAGE, i + 3); times.push(Number(process.hrtime.bigint() - t) / N);
  p.munmap(a, N * PAGE);
}
console.log(process.argv[2] ?? "oracle", "reuse", times.slice(20).sort((x, y) => x - y)[20].toFixed(0));
