/**
 * The pool of one net (pure): its allocatable addresses as sorted disjoint ranges, indexable
 * 0..size-1; taken addresses a Set; the next free slot found through a path-compressed skip map,
 * so no allocation scans the pool.
 */
import type { Range4 } from './numbers.js';

/** The allocatable addresses of a net: sorted disjoint ranges, indexable 0..size-1. */
export class Pool {
  private readonly starts: number[] = [];
  readonly size: number;
  /** Taken addresses (static, recorded, allocated, whatever the pools contain or not). */
  readonly taken = new Set<number>();
  private free: number;
  /** Path-compressed "try this index next" pointers of taken slots. */
  private readonly skip = new Map<number, number>();

  constructor(readonly ranges: Range4[]) {
    let total = 0;
    for (const r of ranges) {
      this.starts.push(total);
      total += r.hi - r.lo + 1;
    }
    this.size = total;
    this.free = total;
  }

  /** Index of the range holding `a`, or -1. */
  private rangeOf(a: number): number {
    let lo = 0;
    let hi = this.ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.ranges[mid]!;
      if (a < r.lo) hi = mid - 1;
      else if (a > r.hi) lo = mid + 1;
      else return mid;
    }
    return -1;
  }

  contains(a: number): boolean {
    return this.rangeOf(a) >= 0;
  }

  private at(i: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= i) lo = mid;
      else hi = mid - 1;
    }
    return this.ranges[lo]!.lo + (i - this.starts[lo]!);
  }

  take(a: number): void {
    if (this.taken.has(a)) return;
    this.taken.add(a);
    if (this.contains(a)) this.free--;
  }

  get freeCount(): number {
    return this.free;
  }

  /** The first free address at or after slot `start` (wrapping), taken; undefined when full. */
  takeFrom(start: number): number | undefined {
    if (this.free <= 0) return undefined;
    const visited: number[] = [];
    let i = start % this.size;
    let a = this.at(i);
    while (this.taken.has(a)) {
      visited.push(i);
      i = this.skip.get(i) ?? (i + 1) % this.size;
      a = this.at(i);
    }
    for (const v of visited) this.skip.set(v, i);
    this.take(a);
    return a;
  }
}
