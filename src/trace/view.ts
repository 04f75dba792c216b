/**
 * What a judge may read of the kernel's state besides its events: the processes and their
 * mappings, the page tables through the core, the GUP references held. The kernel layer
 * implements it; the reference judge and the latent-missed-COW sweep read it, so that they
 * depend on this shape and not on the kernel layer.
 * @packageDocumentation
 */
import type { CoreOps, CoreRecord } from "../core/index.js";
import type { PinView } from "./events.js";

/** A VMA's extent, and the shared object it maps (null: private memory). @public */
export interface VmaView {
  readonly start: number;
  readonly end: number;
  /** The shmem object of a shared mapping, and the page index of an address in it. */
  readonly shmem: { readonly id: number } | null;
  index(addr: number): number;
}

/** A process as a judge sees it. @public */
export interface ProcessView {
  readonly pid: number;
  /** The core's mm_struct id, for page-table reads. */
  readonly mm: number;
  readonly vmas: Iterable<VmaView>;
}

/** The kernel's state as a judge reads it. @public */
export interface KernelView {
  readonly ops: CoreOps;
  /** pagemap_read() of [start, end) of `mm`. */
  pagemap(mm: number, start: number, end: number): CoreRecord[];
  processViews(): Iterable<ProcessView>;
  pinViews(): Iterable<PinView>;
}
