// Errors are errno: the kernel layer's numbers are Linux's, and the core's.
import { describe, it, expect } from "vitest";
import { ERRNO, CowsimError, errnoName } from "../src/errno.js";
import { ERRNO_CODES } from "../src/core/index.js";

describe("errno", () => {
  it("the kernel layer's numbers are the core's", () => {
    expect(ERRNO_CODES.length).toBeGreaterThan(10);
    for (const e of ERRNO_CODES) expect(ERRNO[e.name as keyof typeof ERRNO], e.name).toBe(e.value);
  });

  it("a CowsimError carries the name and the number; a negative core return names its errno", () => {
    const e = new CowsimError("EDEADLK", "x");
    expect([e.errno, e.code, e.message]).toEqual(["EDEADLK", 35, "EDEADLK: x"]);
    expect(errnoName(-12)).toBe("ENOMEM");
    expect(() => errnoName(-99)).toThrow(/the core returned -99/);
  });
});
