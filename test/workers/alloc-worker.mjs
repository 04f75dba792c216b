// A worker thread for the allocator's concurrency test: attaches to a machine created by the
// main thread and allocates and frees folios of mixed orders, starting in step with the other
// workers. Every frame it holds is stamped with its id in a shared owner table, by a
// compare-exchange from 0, so a frame handed to two threads at once is caught by whichever
// stamps second. Plain .mjs because Node 20 cannot start a .ts worker; it uses dist/.
import { parentPort } from "node:worker_threads";
import { Core, C } from "../../dist/core/index.js";

/** Orders drawn small-heavy, so blocks split and large orders fight for what is left. */
const ORDERS = [0, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9];

function mixedOrders(core, { id, seed, n, owner }) {
  const table = new Int32Array(owner);
  let x = seed >>> 0;
  const rand = (m) => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x % m;
  };
  const held = [];
  const allocs = new Array(10).fill(0);
  const fails = new Array(10).fill(0);
  let misaligned = 0;
  let doubles = 0;
  const stamp = (pfn, order, from, to) => {
    for (let i = pfn; i < pfn + 2 ** order; i++) {
      if (Atomics.compareExchange(table, i, from, to) !== from) doubles++;
    }
  };
  const free = (k) => {
    const [{ pfn, order }] = held.splice(k, 1);
    stamp(pfn, order, id, 0);
    core.x.folio_put_refs(pfn, 1);
  };
  for (let step = 0; step < n; step++) {
    if (held.length > 0 && rand(100) < 45) {
      free(rand(held.length));
      continue;
    }
    const order = ORDERS[rand(ORDERS.length)];
    const pfn = core.x.alloc_pages(core.ctx, order, 0) >>> 0;
    if (pfn === C.NO_PFN) {
      fails[order]++;
      continue;
    }
    allocs[order]++;
    if (pfn % 2 ** order !== 0) misaligned++;
    stamp(pfn, order, 0, id);
    held.push({ pfn, order });
  }
  const heldAtEnd = held.length;
  while (held.length) free(held.length - 1);
  return { allocs, fails, misaligned, doubles, heldAtEnd };
}

parentPort.on("message", ({ id, shared, args, gate }) => {
  let core;
  try {
    core = Core.attach(shared);
    const g = new Int32Array(gate);
    Atomics.add(g, 1, 1);
    Atomics.notify(g, 1);
    while (Atomics.load(g, 0) === 0) Atomics.wait(g, 0, 0, 50);
    parentPort.postMessage({ id, result: mixedOrders(core, args) });
  } catch (e) {
    parentPort.postMessage({ id, error: String(e?.stack ?? e) });
  } finally {
    core?.detach();
  }
});
