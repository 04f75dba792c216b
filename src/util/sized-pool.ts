/**
 * Things given back for reuse, kept by size, a few of each: the machines and the journals a
 * catalog check makes by the thousand, dearer to make than to make new. No `node:*`: the main
 * entry's machines use it in a browser too.
 */
export class SizedPool<T> {
  private readonly bySize = new Map<number, T[]>();

  constructor(private readonly perSize: number) {}

  /** One given back of `size`, if any (the caller makes it new). */
  take(size: number): T | undefined {
    return this.bySize.get(size)?.pop();
  }

  /** Keeps `item` for the next take() of `size`, unless that size has its share or it is kept already. */
  give(size: number, item: T): void {
    let list = this.bySize.get(size);
    if (list === undefined) this.bySize.set(size, (list = []));
    if (list.length < this.perSize && !list.includes(item)) list.push(item);
  }
}
