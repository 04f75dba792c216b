#!/usr/bin/env node
// Mirrors the Wasm core's ABI into TypeScript, and the PTE layout into the README, from one
// source: the assembly/ files (names and descriptions, from their tagged doc comments), the
// generated release .d.ts (signatures) and the release module itself (constant values).
//
//   node scripts/gen-abi.mjs          write src/core/abi.generated.ts and the README table
//                                     (npm run gen: only files whose contents change are written)
//   node scripts/gen-abi.mjs --check  write nothing; exit 1, naming each file that differs and
//                                     where, if either is out of date (npm run build, npm test)
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const check = process.argv.includes("--check");
const read = (p) => readFileSync(root + p, "utf8");

// ---- tagged constants: /** @tag NAME-or-short description */ export const X: T = … ---------
const EXPORT_NAMES = {
  bit: "PTE_BITS", swpbit: "SWP_BITS", field: "PTE_FIELDS", swptype: "SWP_TYPES",
  marker: "PTE_MARKERS", kind: "PTE_KINDS", pageflag: "PAGE_FLAGS", vmstat: "VMSTAT_ITEMS",
  errno: "ERRNO_CODES", rec: "RECORD_KINDS", gupf: "GUP_FAST_REASONS", foll: "FOLL_FLAGS",
  rss: "RSS_MEMBERS", access: "ACCESS_RESULTS", wpfact: "WP_FACTS", wpkind: "WP_KINDS",
  failkind: "FAIL_KINDS", check: "DEBUG_CHECKS",
};
/** What each generated table is, for its doc comment. */
const TABLE_DOCS = {
  bit: "The bits of a present PTE", swpbit: "The software bits of a swap entry (a non-present PTE)",
  field: "The multi-bit fields of PTEs and swap entries", swptype: "The swap types (swp_type())",
  marker: "The bits of a PTE marker", kind: "The kinds of entry pagemap records report",
  pageflag: "The flags of struct page (PG_*)", vmstat: "The core's vmstat counters",
  errno: "The errno values the core returns (negated)", rec: "The kinds of record range operations hand back",
  gupf: "Why GUP-fast stopped at a page", foll: "GUP's FOLL_* flags", rss: "The mm's RSS counters (MM_*)",
  access: "What handle_access() returns when the access needs the kernel", wpfact: "The words of wp_fault_info()'s record",
  wpkind: "What a write-protect fault found", failkind: "What fault injection can fail",
  check: "The debug build's checks at every PTE install (page_table_check)",
};
const TAGS = Object.keys(EXPORT_NAMES);
const tagged = Object.fromEntries(TAGS.map((t) => [t, []]));
// every file of assembly/ that may tag constants, in the order their lists are generated
for (const file of ["pte", "page", "layout", "pagewalk", "memory", "mremap", "task_mmu", "mprotect", "gup", "pgtable", "fault",
  "page_table_check", "large_folio"]) {
  const src = read(`assembly/${file}.ts`);
  const re = /\/\*\* @(\w+) (\S+)(?: (\d+) (\d+))? ([^*]*?)\s*\*\/\s*\nexport const (\w+)/g;
  for (const m of src.matchAll(re)) {
    const [, tag, short, from, width, description, name] = m;
    if (!TAGS.includes(tag)) throw new Error(`assembly/${file}.ts: unknown tag @${tag} on ${name}`);
    tagged[tag].push({ name, short, description: description.trim(), ...(from ? { from: +from, width: +width } : {}) });
  }
}

// ---- signatures from the release .d.ts --------------------------------------------------------
const dts = read("build/cowsim.release.d.ts");
const sigs = [];
const consts = [];
for (const m of dts.matchAll(/\*\s+assembly\/[\w/]+\n(?:\s+\*.*\n)*?\s+\*\/\n\s+export (function|const) (\w+)([^;{]*)[;{]/g)) {
  const [, kind, name, rest] = m;
  if (kind === "function") sigs.push(`  ${name}${rest.replace(/boolean/g, "number")};`);
}
for (const m of dts.matchAll(/\/\*\* assembly\/[\w/]+ \*\/\n\s+export const (\w+): \{\n\s+\/\*\* @type `(\w+)` \*\//g)) {
  consts.push({ name: m[1], type: m[2] });
}

// ---- values from the module ---------------------------------------------------------------------
const wasm = new WebAssembly.Module(readFileSync(root + "build/cowsim.release.wasm"));
const memory = new WebAssembly.Memory({ initial: 16, maximum: 16, shared: true });
const { exports } = new WebAssembly.Instance(wasm, {
  env: { memory, abort() { throw new Error("abort"); }, cowsim_check_failed() { throw new Error("check"); } },
});
const values = {};
for (const { name, type } of consts) {
  const v = exports[name].value;
  if (typeof v === "bigint") throw new Error(`${name}: 64-bit constants must not be exported`);
  values[name] = type === "u32" ? v >>> 0 : v;
}
for (const list of Object.values(tagged)) {
  for (const item of list) {
    if (!(item.name in values)) throw new Error(`${item.name} is tagged but not exported from assembly/index.ts`);
    item.value = values[item.name];
  }
}

// ---- the TypeScript mirror -----------------------------------------------------------------------
const j = (x) => Array.isArray(x)
  ? `[\n${x.map((e) => "  " + JSON.stringify(e)).join(",\n")},\n]`
  : `{\n${Object.entries(x).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`).join(",\n")},\n}`;
const ts = `// Generated by scripts/gen-abi.mjs from assembly/*.ts and the release build. Do not edit:
// change assembly/ and run \`npm run gen\`. The build (and so npm test) fails when this file is
// out of date.

/** The raw exports of the core module, as WebAssembly hands them to JavaScript: u32 results
 * arrive as signed numbers (apply \`>>> 0\`), bool results as 0 or 1, u64 values as bigint. */
export interface CoreExports {
  memory: WebAssembly.Memory;
${sigs.join("\n")}
}

/** Every exported constant of the core, by name. */
export const C = ${j(values)} as const;

/** A constant of the core with the name and description its source tags it with. */
export interface TaggedConstant { readonly name: string; readonly short: string; readonly description: string; readonly value: number; readonly from?: number; readonly width?: number }
${TAGS.map((t) => `/** ${TABLE_DOCS[t]}. */\nexport const ${EXPORT_NAMES[t]}: readonly TaggedConstant[] = ${j(tagged[t])};`).join("\n")}
`;

// ---- the README table ---------------------------------------------------------------------------
const row = (...c) => `| ${c.join(" | ")} |`;
const table = [
  "Present entry (`pte_present()`: P or PN set). Non-leaf entries carry P W U A and a page-table index in the PFN field.",
  "",
  row("bits", "name", "meaning"), row("---", "---", "---"),
  ...tagged.bit.map((b) => row(String(b.value), "`" + b.short + "`", b.description)),
  ...tagged.field.filter((f) => f.name.startsWith("PTE_")).map((f) => row(`${f.value}–${f.value + f.width - 1}`, "`" + f.short + "`", f.description)),
  "",
  "Non-present entry (a `swp_entry_t`: P = 0, PN = 0, not all zero):",
  "",
  row("bits", "name", "meaning"), row("---", "---", "---"),
  ...tagged.swpbit.map((b) => row(String(b.value), "`" + b.short + "`", b.description)),
  ...tagged.field.filter((f) => f.name.startsWith("SWP_")).map((f) => row(`${f.value}–${f.value + f.width - 1}`, "`" + f.short + "`", f.description)),
  "",
  "Swap types (bits 59–63), as `include/linux/swap.h` numbers them, and PTE marker bits (offset of a `SWP_PTE_MARKER` entry):",
  "",
  row("value", "name", "meaning"), row("---", "---", "---"),
  ...tagged.swptype.map((b) => row(b.name === "MAX_SWAPFILES" ? `0–${b.value - 1}` : String(b.value), "`" + b.short + "`", b.description)),
  ...tagged.marker.map((b) => row(`marker ${b.value}`, "`" + b.short + "`", b.description)),
].join("\n");

const BEGIN = "<!-- pte-table:begin (generated by scripts/gen-abi.mjs) -->";
const END = "<!-- pte-table:end -->";

/** Where two texts first differ, as a line a person can act on. */
function firstDifference(name, found, wanted) {
  const a = found.split("\n");
  const b = wanted.split("\n");
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const show = (l) => (l === undefined ? "(end of file)" : JSON.stringify(l.length > 120 ? l.slice(0, 117) + "..." : l));
  return `  ${name}:${i + 1}: the file has ${show(a[i])}\n  ${" ".repeat(name.length + String(i + 1).length + 3)}the core makes ${show(b[i])}`;
}

const stale = [];
const outPath = "src/core/abi.generated.ts";
const current = existsSync(root + outPath) ? readFileSync(root + outPath, "utf8") : "";
if (current !== ts) {
  stale.push(firstDifference(outPath, current, ts));
  if (!check) writeFileSync(root + outPath, ts);
}
const readmePath = root + "README.md";
if (existsSync(readmePath)) {
  const readme = readFileSync(readmePath, "utf8");
  const a = readme.indexOf(BEGIN);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error("README.md lacks the pte-table markers");
  const next = readme.slice(0, a + BEGIN.length) + "\n" + table + "\n" + readme.slice(b);
  if (next !== readme) {
    stale.push(firstDifference("README.md", readme, next));
    if (!check) writeFileSync(readmePath, next);
  }
}
if (check && stale.length) {
  console.error(`gen-abi: generated files differ from what assembly/ and build/cowsim.release.wasm make:\n` +
    `${stale.join("\n")}\n` +
    `Regenerate them with \`npm run gen\` (it writes only the files that differ), review the diff and commit it.`);
  process.exit(1);
}
if (!check) for (const s of stale) console.log(`gen-abi: wrote ${s.trim().split(":")[0]}`);
