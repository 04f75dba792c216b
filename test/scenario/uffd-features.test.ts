// The scenario files' userfaultfd feature names are the uapi header's UFFD_FEATURE_* bits, in
// order: one list, checked against the package's constants.
import { describe, it, expect } from "vitest";
import * as cowsim from "../../src/index.js";
import { UFFD_FEATURE_NAMES } from "../../src/scenario/schema.js";

describe("the scenario schema's UFFD_FEATURE names", () => {
  it("name every UFFD_FEATURE_* constant, each at its bit", () => {
    const exported = Object.entries(cowsim).filter(([n]) => n.startsWith("UFFD_FEATURE_")).map(([n, v]) => [n.slice("UFFD_FEATURE_".length), v]);
    expect(UFFD_FEATURE_NAMES.map((n, i) => [n, 1 << i])).toEqual(exported.sort((a, b) => (a[1] as number) - (b[1] as number)));
    expect(2 ** UFFD_FEATURE_NAMES.length - 1).toBe(cowsim.UFFD_API_FEATURES);
  });
});
