/**
 * The core's self-description: what `cowsim core` prints — the memory map,
 * the sizes, and the PTE layout, all read from the running module.
 */
import { PTE_BITS, PTE_FIELDS, SWP_BITS, SWP_TYPES, PTE_MARKERS, C } from "./abi.generated.js";
import type { Core } from "./core.js";

const mib = (b: number) => `${(b / 2 ** 20).toFixed(b < 2 ** 20 ? 3 : 1)} MiB`;
const hex = (a: number) => "0x" + a.toString(16).padStart(8, "0");

/** The machine's self-description, as `cowsim core` prints it: memory map, sizes, PTE layout. @public */
export function describeCore(core: Core): string {
  const L = core.layout;
  const pageBytes = L.nframes * 4096;
  const regions: [string, number, number][] = [
    ["header + vmstat", L.base, L.ctxBase],
    [`contexts (${L.maxThreads} × ${L.scratchBytes / 1024} KiB scratch)`, L.ctxBase, L.mmBase],
    [`mm_struct slots (${L.maxMms})`, L.mmBase, L.blockBase],
    [`pageblocks (${Math.ceil(L.nframes / 512)})`, L.blockBase, L.frameBase],
    [`struct page (${L.nframes} × ${L.pageStructBytes} B)`, L.frameBase, L.ptBase],
    [`page-table pool (${L.ntables} × 4 KiB)`, L.ptBase, L.swapBase],
    [`swap map (${L.nslots} slots)`, L.swapBase, L.contentBase],
    [`page contents (${L.nframes} × ${L.contentStride} B)`, L.contentBase, L.totalBytes],
  ];
  const lines: string[] = [];
  lines.push(`cowsim core (${core.build} build)`);
  lines.push("");
  lines.push(`Simulated RAM   ${L.nframes} frames of 4 KiB = ${mib(pageBytes)}; ${L.dataBytes} data bytes kept per page besides its 64-bit tag`);
  lines.push(`Swap            ${L.nslots} slots = ${mib(L.nslots * 4096)}`);
  lines.push(`Page tables     ${L.ntables} in the pool (4 levels × 512 entries, 48-bit addresses)`);
  lines.push(`Simulator       one shared WebAssembly.Memory of ${mib(L.totalBytes)}; ${mib(L.base)} below the layout is the module's own static data`);
  lines.push("");
  lines.push("Memory map");
  for (const [name, from, to] of regions) {
    lines.push(`  ${hex(from)}–${hex(to)}  ${mib(to - from).padStart(11)}  ${name}`);
  }
  lines.push("");
  const meta = L.pageStructBytes + 8;
  lines.push(`Per simulated 4 KiB page: ${L.pageStructBytes} B struct page + 8 B PTE = ${meta} B of metadata ` +
    `(Linux: 64 B + 8 B); contents ${L.contentStride} B (tag + data)`);
  lines.push("");
  lines.push("PTE layout (present: pte_present() = P or PN)");
  for (const b of PTE_BITS) lines.push(`  bit ${String(b.value).padStart(2)}     ${b.short.padEnd(7)} ${b.description}`);
  for (const f of PTE_FIELDS.filter((f) => f.name.startsWith("PTE_"))) {
    lines.push(`  bits ${f.value}–${f.value + f.width! - 1} ${f.short.padEnd(7)} ${f.description}`);
  }
  lines.push("Non-present (swp_entry_t)");
  for (const b of SWP_BITS) lines.push(`  bit ${String(b.value).padStart(2)}     ${b.short.padEnd(7)} ${b.description}`);
  for (const f of PTE_FIELDS.filter((f) => f.name.startsWith("SWP_"))) {
    lines.push(`  bits ${f.value}–${f.value + f.width! - 1} ${f.short.padEnd(7)} ${f.description}`);
  }
  lines.push("Swap types");
  for (const t of SWP_TYPES) {
    const v = t.name === "MAX_SWAPFILES" ? `0–${t.value - 1}` : String(t.value);
    lines.push(`  ${v.padStart(5)}  ${t.short.padEnd(28)} ${t.description}`);
  }
  lines.push("PTE markers");
  for (const m of PTE_MARKERS) lines.push(`  ${String(m.value).padStart(5)}  ${m.short.padEnd(28)} ${m.description}`);
  lines.push("");
  lines.push(`Pins: an order-0 FOLL_PIN adds GUP_PIN_COUNTING_BIAS = ${C.GUP_PIN_COUNTING_BIAS} to _refcount; large folios count _pincount.`);
  return lines.join("\n");
}
