// Compiles and runs C benchmarks of the real kernel (needs a C compiler: cc, gcc or clang):
// the programs named (faults, gup, thp, uffd), or all of them; each prints one JSON line.
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const PROGRAMS = ["faults", "gup", "thp", "uffd"];
const names = process.argv.length > 2 ? process.argv.slice(2) : PROGRAMS;
for (const name of names) {
  if (!PROGRAMS.includes(name)) {
    console.error(`bench:kernel: no program "${name}" (there are: ${PROGRAMS.join(", ")})`);
    process.exit(2);
  }
}
const cc = ["cc", "gcc", "clang"].find((c) => { try { execFileSync(c, ["--version"], { stdio: "ignore" }); return true; } catch { return false; } });
if (!cc) {
  console.error("bench:kernel needs a C compiler (cc, gcc or clang)");
  process.exit(1);
}
const dir = mkdtempSync(join(tmpdir(), "cowsim-kbench-"));
for (const name of names) {
  const out = join(dir, name);
  execFileSync(cc, ["-O2", "-pthread", "-o", out, fileURLToPath(new URL(`./${name}.c`, import.meta.url))], { stdio: "inherit" });
  process.stdout.write(execFileSync(out, { encoding: "utf8" }));
}
