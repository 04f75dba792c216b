// Writes litmus/seed001/*.litmus from src/explore/protocols/seed001.ts (`--check`: fail if stale).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { seed001Litmus, VARIANTS } from "../src/explore/protocols/seed001.js";

const dir = new URL("../litmus/seed001/", import.meta.url);
const check = process.argv.includes("--check");
mkdirSync(dir, { recursive: true });
let stale = 0;
for (const v of VARIANTS) {
  const file = new URL(`${v.name}.litmus`, dir);
  const text = seed001Litmus(v);
  let old = "";
  try { old = readFileSync(file, "utf8"); } catch { /* new */ }
  if (old === text) continue;
  if (check) { console.error(`stale: litmus/seed001/${v.name}.litmus`); stale++; continue; }
  writeFileSync(file, text);
  console.log(`wrote litmus/seed001/${v.name}.litmus`);
}
process.exit(stale ? 1 : 0);
