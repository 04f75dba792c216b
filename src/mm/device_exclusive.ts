/**
 * Device-exclusive entries, the part of mm/rmap.c that makes them: make_device_exclusive_range(),
 * folio_make_device_exclusive(). Apart from migrate_device.ts because it faults pages in
 * through GUP, and the fault path (memory.ts) reaches migrate_device.ts for the entries'
 * other end (remove_device_exclusive_entry()).
 */
import { C } from "../core/index.js";
import { CowsimError } from "../errno.js";
import type { MmKernel } from "./kernel.js";
import type { MmProcess } from "./process.js";
import { hex } from "./vma.js";
import { rmap_walk_anon } from "./rmap.js";
import { Stat } from "./stats.js";
import { get_user_pages, FOLL_GET, FOLL_WRITE } from "./gup.js";
import { PAGE_SIZE } from "./uapi.js";

/**
 * make_device_exclusive_range(): the pages of [start, start + pages) are faulted in for writing
 * (get_user_pages_remote(FOLL_GET | FOLL_WRITE), which breaks COW and brings device-private
 * pages back), locked, and every mapping of each (folio_make_device_exclusive(): its rmap walk,
 * page_make_device_exclusive_one()) replaced by a device-exclusive entry. A page counts when it
 * was mapped writable at its address and nothing maps it afterwards; a large folio, a locked one
 * or one that fails stays as it is. Returns per page its pfn, or null. GUP's errors as
 * get_user_pages() gives them, for the pages it did not reach.
 */
export function make_device_exclusive_range(k: MmKernel, p: MmProcess, start: number, pages: number): (number | null)[] {
  if (!Number.isSafeInteger(start) || start < 0 || start % PAGE_SIZE !== 0) throw new CowsimError("EINVAL", `make_device_exclusive_range: ${hex(start)} is not page-aligned`);
  if (!Number.isSafeInteger(pages) || pages <= 0) throw new CowsimError("EINVAL", `make_device_exclusive_range: ${pages} pages`);
  const ops = k.ops;
  const flags = FOLL_GET | FOLL_WRITE;
  const { pfns, error } = get_user_pages(k, p, start, pages, flags, false);
  if (error && pfns.length === 0) throw error;
  const out: (number | null)[] = [];
  pfns.forEach((pfn, i) => {
    const addr = start + i * PAGE_SIZE;
    const folio = ops.pageFolio(pfn);
    if (ops.folioTestLarge(folio) || ops.pageTestFlag(folio, C.PG_locked)) {
      out.push(null);
      return;
    }
    ops.pageSetFlag(folio, C.PG_locked);
    const ok = folio_make_device_exclusive(k, p, folio, addr);
    ops.pageClearFlag(folio, C.PG_locked);
    out.push(ok ? pfn : null);
    if (ok) k.stats.inc(Stat.deviceExclusive);
  });
  // the driver drops the page lock and GUP's reference once it has programmed the device
  k.core.gupPut(pfns, flags);
  return out;
}

/** folio_make_device_exclusive(): anonymous folios only; valid when `addr` of `p` was writable and the folio is unmapped. */
function folio_make_device_exclusive(k: MmKernel, p: MmProcess, folio: number, addr: number): boolean {
  const ops = k.ops;
  if (!ops.folioTestAnon(folio)) return false;
  let valid = false;
  for (const hit of rmap_walk_anon(k.anonVmas, ops.folioMappingId(folio), ops.folioIndex(folio))) {
    const r = ops.makeDeviceExclusiveOne(hit.mm, hit.address, folio);
    if (r === -C.ENOENT) {
      // page_vma_mapped_walk() finds no present PTE of the folio here: not mapped by this VMA
      continue;
    }
    if (r === 1 && hit.mm === p.mm && hit.address === addr) valid = true;
  }
  return valid && !ops.folioIsMapped(folio);
}
