// A worker thread for the concurrency tests: attaches to a machine created by the main thread
// and runs one task on it when told, starting in step with the other workers.
// Plain .mjs because Node 20 cannot start a .ts worker; it uses the built library (dist/).
import { parentPort } from "node:worker_threads";
import { Core, C } from "../../dist/core/index.js";

const tasks = {
  /** n atomic references on one folio */
  refAdd(core, { pfn, n }) {
    for (let i = 0; i < n; i++) core.x.folio_ref_add(pfn, 1);
  },
  /** n plain (non-atomic) increments of the same field: the control that must lose updates */
  refAddRacy(core, { pfn, n }) {
    const i = (core.x.page_refcount_addr(pfn) >>> 0) >>> 2;
    const a = core.i32;
    for (let k = 0; k < n; k++) a[i] = a[i] + 1;
  },
  /** n FOLL_PIN grabs of a folio */
  pin(core, { pfn, n }) {
    for (let i = 0; i < n; i++) if (!core.x.try_grab_folio(pfn, 1, C.FOLL_PIN)) throw new Error("grab failed");
  },
  /** n increments of the PFN field of one PTE through a compare-exchange loop */
  pteCas(core, { mm, va, n }) {
    const one = 1n << 12n;
    for (let i = 0; i < n; i++) {
      for (;;) {
        const old = core.x.ptep_get(mm, va);
        if (core.x.ptep_cmpxchg(mm, va, old, old + one) === old) break;
      }
    }
  },
  /** the same with a plain read and a plain store: must lose updates */
  pteRacy(core, { mm, va, n }) {
    const one = 1n << 12n;
    for (let i = 0; i < n; i++) core.x.ptep_set(core.ctx, mm, va, core.x.ptep_get(mm, va) + one);
  },
  /** allocate n frames and report them */
  alloc(core, { n }) {
    const pfns = [];
    for (let i = 0; i < n; i++) pfns.push(core.allocPages(0, false));
    return pfns;
  },
  /** allocate and free in a loop, keeping none */
  churn(core, { n }) {
    for (let i = 0; i < n; i++) core.x.folio_put_refs(core.allocPages(0, false), 1);
  },
  /** GUP-fast R/O pins in a loop; every pin taken must find the page exclusive */
  gupLoop(core, { mm, va, n, stop }) {
    let pinned = 0, backoffs = 0, violations = 0;
    const flag = new Int32Array(stop);
    for (let i = 0; i < n && Atomics.load(flag, 0) === 0; i++) {
      const got = core.x.gup_fast(core.ctx, mm, va, 1, C.FOLL_PIN | C.FOLL_LONGTERM);
      if (got === 1) {
        const pfn = core.u32[core.scratch >>> 2];
        if (!core.x.PageAnonExclusive(pfn)) violations++;
        pinned++;
        core.x.gup_put_folio(pfn, 1, C.FOLL_PIN);
      } else backoffs++;
    }
    Atomics.store(flag, 0, 1);
    return { pinned, backoffs, violations };
  },
  /** the clearing side (A1–A4) racing gupLoop, then a reuse fault making the page exclusive again */
  shareLoop(core, { mm, va, pfn, n, stop }) {
    let shared = 0, busy = 0;
    const flag = new Int32Array(stop);
    for (let i = 0; i < n && Atomics.load(flag, 0) === 0; i++) {
      const pte = core.x.ptep_get_and_clear(mm, va); // A1
      if (core.x.folio_try_share_anon_rmap_pte(pfn, pfn) !== 0) { // A2 A3
        core.x.ptep_set(core.ctx, mm, va, pte); // back off: restore
        busy++;
        continue;
      }
      core.x.ptep_set(core.ctx, mm, va, core.x.pte_wrprotect(pte)); // A4
      shared++;
      // a write fault reuses the page: exclusive again, then writable (wp_page_reuse())
      core.x.SetPageAnonExclusive(pfn);
      core.x.ptep_set(core.ctx, mm, va, core.x.pte_mkwrite(core.x.ptep_get(mm, va)));
    }
    Atomics.store(flag, 0, 1);
    return { shared, busy };
  },
  /** n PTE-level mappings of pages [page, page + nr) of a large folio, a batch each (folio_add_rmap_ptes()) */
  mapBatches(core, { folio, page, nr, n }) {
    for (let i = 0; i < n; i++) core.x.folio_add_rmap_ptes(folio, page, nr);
  },
  /** the same per-page increments with plain loads and stores: must lose updates */
  mapBatchesRacy(core, { page, nr, n }) {
    const a = core.i32;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < nr; j++) {
        const w = ((core.x.page_refcount_addr(page + j) >>> 0) + 4) >>> 2; // _mapcount follows _refcount
        a[w] = a[w] + 1;
      }
    }
  },
};

parentPort.on("message", ({ id, shared, task, args, gate }) => {
  let core;
  try {
    core = Core.attach(shared);
    // wait until every worker is attached and the main thread opens the gate
    const g = new Int32Array(gate);
    Atomics.add(g, 1, 1);
    Atomics.notify(g, 1);
    while (Atomics.load(g, 0) === 0) Atomics.wait(g, 0, 0, 50);
    const result = tasks[task](core, args);
    parentPort.postMessage({ id, result });
  } catch (e) {
    parentPort.postMessage({ id, error: String(e?.stack ?? e) });
  } finally {
    core?.detach();
  }
});
