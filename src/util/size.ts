import { CowsimError } from "../errno.js";

const UNITS: Record<string, number> = { "": 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** A size in bytes from a number or a string such as "256M", "1G", "4096", "64K". */
export function parseSize(name: string, v: number | string): number {
  if (typeof v === "number") {
    if (Number.isSafeInteger(v) && v >= 0) return v;
  } else {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(v);
    if (m) {
      const bytes = Number(m[1]) * UNITS[m[2]!.toUpperCase()]!;
      if (Number.isSafeInteger(bytes)) return bytes;
    }
  }
  throw new CowsimError("EINVAL", `${name} must be a size in bytes or like "256M", not ${JSON.stringify(v)}`);
}
