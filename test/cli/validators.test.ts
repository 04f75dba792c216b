// The schemas compiled at build time (dist/scenario/validators.gen.js) are today's, and judge a
// scenario as ajv's compilation on first use does: the same verdict, the same errors.
import { ROOT } from "./helpers.js";
import { describe, it, expect } from "vitest";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Ajv2020 } from "ajv/dist/2020.js";
import { type CompiledValidators } from "../../src/scenario/load.js";
import { AJV_OPTIONS, schemaKey } from "../../src/scenario/schema-key.js";
import { SCENARIO_SCHEMA } from "../../src/scenario/schema.js";

describe("validators compiled at build time", () => {
  it("carry today's schema key and give ajv's errors", async () => {
    const gen = (await import(pathToFileURL(join(ROOT, "dist/scenario/validators.gen.js")).href)) as CompiledValidators;
    expect(gen.key).toBe(schemaKey());
    const fresh = new Ajv2020(AJV_OPTIONS).compile(SCENARIO_SCHEMA);
    for (const doc of [
      { name: "x", reference: [{ cve: "CVE-2020-29374" }], steps: [{ op: "mmap", as: "a", pages: 1 }] },
      { name: "x", reference: [{ cve: "CVE-2020-29374" }], steps: [{ op: "mmap", as: "a", pages: 1, colour: "red" }, { op: "nope" }] },
      { name: 3, steps: "no" },
    ]) {
      const ok = gen.scenario(doc);
      expect(ok).toBe(fresh(doc));
      expect(gen.scenario.errors ?? null).toEqual(fresh.errors ?? null);
    }
    expect(fresh({ name: 3 })).toBe(false);
  });
});
