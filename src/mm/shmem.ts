/**
 * Shared anonymous memory (mm/shmem.c): MAP_SHARED|MAP_ANONYMOUS is a shmem file of its own
 * (shmem_zero_setup()). Its pages live in the file's page cache, which holds a reference to
 * each; every mapping process maps the same pages, writable when the VMA is. There is no
 * copy-on-write here — it is the contrast the private mappings are judged against.
 */
import { C, type CoreOps } from "../core/index.js";
import { CowsimError } from "../errno.js";

export class ShmemFile {
  /** Page cache: page index → pfn. */
  readonly pages = new Map<number, number>();
  /** VMAs mapping the file (the file's reference count, as far as cowsim needs one). */
  mappings = 0;

  constructor(readonly id: number, readonly sizePages: number) {}

  /**
   * shmem_get_folio(): the page at `index`, allocated zeroed and added to the page cache on
   * first use. Throws ENOMEM (nothing changed) when no frame is left.
   */
  getPage(ops: CoreOps, index: number): number {
    const have = this.pages.get(index);
    if (have !== undefined) return have;
    if (index >= this.sizePages) throw new CowsimError("EFAULT", "SIGBUS: access beyond the end of the shmem object");
    const pfn = ops.tryAllocPage(C.GFP_ZERO);
    if (pfn === null) throw new CowsimError("ENOMEM", "out of memory: no frame for a shmem page");
    ops.pageSetFlag(pfn, C.PG_swapbacked);
    ops.pageSetFlag(pfn, C.PG_uptodate);
    ops.folioSetMapping(pfn, this.id, index);
    ops.folioAddLru(pfn);
    this.pages.set(index, pfn);
    return pfn;
  }

  /** The last mapping is gone: truncate the file, dropping the page cache's references. */
  release(ops: CoreOps): void {
    for (const pfn of this.pages.values()) ops.folioPutRefs(pfn, 1);
    this.pages.clear();
  }
}

export class ShmemRegistry {
  private nextId = 1;
  readonly files = new Set<ShmemFile>();

  create(sizePages: number): ShmemFile {
    const f = new ShmemFile(this.nextId++, sizePages);
    this.files.add(f);
    return f;
  }

  get(f: ShmemFile): void {
    f.mappings++;
  }

  put(ops: CoreOps, f: ShmemFile): void {
    if (--f.mappings === 0) {
      f.release(ops);
      this.files.delete(f);
    }
  }
}
