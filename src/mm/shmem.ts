/**
 * Shared anonymous memory (mm/shmem.c): MAP_SHARED|MAP_ANONYMOUS is a shmem file of its own
 * (shmem_zero_setup()). Its pages live in the file's page cache, which holds a reference to
 * each; every mapping process maps the same pages, writable when the VMA is. There is no
 * copy-on-write here — it is the contrast the private mappings are judged against.
 */
import { C } from "../core/abi.generated.js";
import type { Core } from "../core/core.js";
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
  getPage(core: Core, index: number): number {
    const have = this.pages.get(index);
    if (have !== undefined) return have;
    if (index >= this.sizePages) throw new CowsimError("EFAULT", "SIGBUS: access beyond the end of the shmem object");
    const pfn = core.x.alloc_pages(core.ctx, 0, C.GFP_ZERO) >>> 0;
    if (pfn === C.NO_PFN) throw new CowsimError("ENOMEM", "out of memory: no frame for a shmem page");
    core.x.page_set_flag(pfn, C.PG_swapbacked);
    core.x.page_set_flag(pfn, C.PG_uptodate);
    core.x.folio_set_mapping(pfn, this.id, index);
    core.x.folio_add_lru(core.ctx, pfn);
    this.pages.set(index, pfn);
    return pfn;
  }

  /** The last mapping is gone: truncate the file, dropping the page cache's references. */
  release(core: Core): void {
    for (const pfn of this.pages.values()) core.x.folio_put_refs(pfn, 1);
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

  put(core: Core, f: ShmemFile): void {
    if (--f.mappings === 0) {
      f.release(core);
      this.files.delete(f);
    }
  }
}
