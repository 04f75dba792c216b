// Running the built cowsim command as a spawned process, for the end-to-end tests.
import { spawnSync } from "node:child_process";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "../..");
// the command as the package ships it (bin: the bundle), not tsc's modules it is made of
export const MAIN = join(ROOT, "dist/bundle/cli.js");
export const CVE = join(ROOT, "scenarios/cve-2020-29374.yaml");

/** Runs `cowsim …args` without colour; returns its exit status and output. */
export function cowsim(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: "utf8", env: { ...process.env, FORCE_COLOR: "" } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
