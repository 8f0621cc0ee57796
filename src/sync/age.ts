// The age of the oldest message the sync layer still holds (stats'
// oldestUnackedAgeMs) without walking the queues: with 100k objects in
// flight, a walk per STATS request or metrics scrape costs milliseconds.
//
// An item's `at` is stamped when it enters the sync layer (tx or rs queue)
// and kept while it moves between the two, so items enter in `at` order.
// Entries are recorded in that order and dropped lazily: one is stale once
// its item has left the layer (owner null) or re-entered with a newer `at`.
import type { QItem } from './queue.js';
import { settleFields } from '../util/shape.js';

export class AgeIndex {
  // A ring of (item, at) in entry order: head = oldest entry, size entries.
  private items: (QItem | null)[] = new Array<QItem | null>(1024).fill(null);
  private ats = new Float64Array(1024);
  private head = 0;
  private size = 0;

  constructor() {
    // Replaced at the first growth, in the middle of a burst: see settleFields.
    settleFields(this, { mutable: ['items', 'ats', 'head', 'size'] });
  }

  /** `it` entered the sync layer with `it.at` set; `live` = items now held (bounds the index). */
  entered(it: QItem, live: number): void {
    // Stale entries pile up behind a long-lived oldest one: drop them once
    // they outnumber the live items (amortised O(1) per entry).
    if (this.size > 2 * live + 64) this.compact();
    if (this.size === this.items.length) this.grow();
    const i = (this.head + this.size) & (this.items.length - 1);
    this.items[i] = it;
    this.ats[i] = it.at;
    this.size++;
  }

  /** `at` of the oldest item still held, or Infinity. */
  oldest(): number {
    const items = this.items;
    const mask = items.length - 1;
    while (this.size > 0) {
      const it = items[this.head]!;
      if (it.owner !== null && it.at === this.ats[this.head]) return it.at;
      items[this.head] = null;
      this.head = (this.head + 1) & mask;
      this.size--;
    }
    return Infinity;
  }

  clear(): void {
    this.items.fill(null);
    this.head = 0;
    this.size = 0;
  }

  private grow(): void {
    const n = this.items.length;
    const items = new Array<QItem | null>(2 * n).fill(null);
    const ats = new Float64Array(2 * n);
    for (let k = 0; k < this.size; k++) {
      const i = (this.head + k) & (n - 1);
      items[k] = this.items[i]!;
      ats[k] = this.ats[i]!;
    }
    this.items = items;
    this.ats = ats;
    this.head = 0;
  }

  /** Keeps the live entries, in order, in place. */
  private compact(): void {
    const items = this.items;
    const ats = this.ats;
    const mask = items.length - 1;
    let w = 0;
    for (let k = 0; k < this.size; k++) {
      const r = (this.head + k) & mask;
      const it = items[r]!;
      items[r] = null;
      if (it.owner !== null && it.at === ats[r]) {
        const d = (this.head + w) & mask;
        items[d] = it;
        ats[d] = ats[r]!;
        w++;
      }
    }
    this.size = w;
  }
}
