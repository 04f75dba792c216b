/**
 * Tracepoints: typed events the kernel layer emits at its decisions, named after the kernel's
 * functions, for subscribers (judges, recorders, embedders) that must not reach into the kernel
 * layer. Emitting costs one property test when nobody listens: check {@link TraceBus.has}
 * before building an event on a hot path.
 * @packageDocumentation
 */

/** wp_page_copy() succeeded: `pid` now maps a copy, `newPfn`, of `pfn` at `address`. @public */
export interface WpPageCopyEvent {
  readonly pid: number;
  readonly address: number;
  /** The old page: the shared zero page (pfn 0) or an anonymous page. */
  readonly pfn: number;
  readonly newPfn: number;
  readonly zeroPage: boolean;
  /** FAULT_FLAG_UNSHARE: a R/O GUP pin asked for the copy, nothing was written. */
  readonly unshare: boolean;
  /** The rule that chose to copy. */
  readonly rule: string;
}

/** Every tracepoint by name, with its event. @public */
export interface TraceEvents {
  wp_page_copy: WpPageCopyEvent;
}

export type TraceName = keyof TraceEvents;
type Listener<K extends TraceName> = (event: TraceEvents[K]) => void;

/** The subscribers of one kernel's tracepoints. @public */
export class TraceBus {
  private readonly listeners: { [K in TraceName]?: Listener<K>[] } = {};

  /** Whether anything listens to `name`. */
  has(name: TraceName): boolean {
    return this.listeners[name] !== undefined;
  }

  on<K extends TraceName>(name: K, fn: Listener<K>): void {
    const l = (this.listeners[name] ??= []) as Listener<K>[];
    l.push(fn);
  }

  off<K extends TraceName>(name: K, fn: Listener<K>): void {
    const l = this.listeners[name] as Listener<K>[] | undefined;
    if (!l) return;
    const i = l.indexOf(fn);
    if (i >= 0) l.splice(i, 1);
    if (l.length === 0) delete this.listeners[name];
  }

  emit<K extends TraceName>(name: K, event: TraceEvents[K]): void {
    const l = this.listeners[name] as Listener<K>[] | undefined;
    if (l) for (const fn of l) fn(event);
  }
}
