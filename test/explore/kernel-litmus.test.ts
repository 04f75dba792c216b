// The kernel's own litmus tests (tools/memory-model/litmus-tests of Linux 6.12) with their
// `Result:` comments: every one the subset reads must get the LKMM verdict the kernel states,
// every other must be refused with an "unsupported construct" message at its line. The tests
// are read from a kernel tree (LINUX_SRC, or Debian's linux-source-6.12 unpacked or as its
// tarball in /usr/src); the package does not copy them.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { explore, ExploreError, parseLitmus } from "../../src/explore/index.js";

const SUB = "tools/memory-model/litmus-tests";

function findTests(): string | null {
  const trees = [process.env.LINUX_SRC, "/usr/src/linux-source-6.12"].filter((t): t is string => !!t);
  for (const t of trees) if (existsSync(join(t, SUB))) return join(t, SUB);
  const tarball = "/usr/src/linux-source-6.12.tar.xz";
  if (!existsSync(tarball)) return null;
  const dir = mkdtempSync(join(tmpdir(), "lkmm-"));
  execFileSync("tar", ["-xJf", tarball, "-C", dir, "--wildcards", `*/${SUB}/*`]);
  const top = readdirSync(dir)[0];
  return top === undefined ? null : join(dir, top, SUB);
}

let dir: string | null = null;
beforeAll(() => { dir = findTests(); }, 180_000);

describe.skipIf(!existsSync("/usr/src/linux-source-6.12.tar.xz") && !existsSync("/usr/src/linux-source-6.12") && !process.env.LINUX_SRC)("the kernel's litmus tests", () => {
  it("gets the kernel's Result for all 24 tests the subset reads, and names the construct of the other 11", () => {
    const files = readdirSync(dir!).filter((f) => f.endsWith(".litmus")).sort();
    expect(files).toHaveLength(35);
    const matched: string[] = [];
    const differ: string[] = [];
    const refused = new Map<string, string>();
    for (const f of files) {
      try {
        const p = parseLitmus(readFileSync(join(dir!, f), "utf8"), f);
        const lk = explore(p, { models: ["relaxed"], witness: false }).models[0]!;
        (lk.observation === p.expected ? matched : differ).push(f);
      } catch (e) {
        if (!(e instanceof ExploreError)) throw e;
        expect(e.unsupported).toBe(true);
        expect(e.format()).toMatch(new RegExp(`^${f.replace(/[+.]/g, "\\$&")}:\\d+: error: unsupported construct: `));
        refused.set(f, e.message);
      }
    }
    expect(differ).toEqual([]);
    expect(matched).toHaveLength(24);
    expect(refused.size).toBe(11);
    const why = [...refused.values()].map((m) => m.replace(/ \(.*$/, "").replace(/'[^']*'/, "'…'"));
    expect(new Set(why)).toEqual(new Set([
      "unsupported construct: spin_lock()",
      "unsupported construct: a pointer value",
      "unsupported construct: a plain C access",
    ]));
  });
});
