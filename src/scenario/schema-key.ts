/**
 * What the scenario schemas are, as one key: validators compiled ahead of time
 * (scripts/gen-validators.mjs) and the catalog loaded at build time (scripts/gen-catalog.mjs)
 * are of these schemas, or unused.
 */
import { SCENARIO_SCHEMA } from "./schema.js";
import { MATRIX_SCHEMA } from "./matrix.js";

/** How the schemas are compiled, here and ahead of time (scripts/gen-validators.mjs). @internal */
export const AJV_OPTIONS = { allErrors: true, verbose: true, discriminator: true, strict: true, allowUnionTypes: true } as const;

/** What the schemas are: validators compiled ahead of time are of these schemas or unused. @internal */
export function schemaKey(): string {
  return (key ??= keyOf());
}
let key: string | undefined;
function keyOf(): string {
  const text = JSON.stringify([SCENARIO_SCHEMA, MATRIX_SCHEMA, AJV_OPTIONS]);
  let h = 0x811c9dc5; // FNV-1a
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return `${text.length}-${h.toString(16).padStart(8, "0")}`;
}
