// Compiles and runs a C benchmark of the real kernel (needs a C compiler: cc, gcc or clang).
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const name = process.argv[2] ?? "faults";
const src = fileURLToPath(new URL(`./${name}.c`, import.meta.url));
const out = join(mkdtempSync(join(tmpdir(), "cowsim-kbench-")), name);
const cc = ["cc", "gcc", "clang"].find((c) => { try { execFileSync(c, ["--version"], { stdio: "ignore" }); return true; } catch { return false; } });
if (!cc) {
  console.error("bench:kernel needs a C compiler (cc, gcc or clang)");
  process.exit(1);
}
execFileSync(cc, ["-O2", "-o", out, src], { stdio: "inherit" });
process.stdout.write(execFileSync(out, { encoding: "utf8" }));
