// The age of the oldest message the sync layer still holds (stats'
// oldestUnackedAgeMs) without walking the queues: with 100k objects in
// flight, a walk per STATS request or metrics scrape costs milliseconds.
//
// An item's `at` is stamped when it enters the sync layer (tx or rs queue)
// and kept while it moves between the two, so items enter in `at` order.
// Entries are recorded in that order and dropped lazily: one is stale once
// its item has left the layer (owner null) or re-entered with a newer `at`.
import type { QItem } from './queue.js';

export class AgeIndex {
  private items: (QItem | null)[] = [];
  private ats: number[] = [];
  private head = 0;

  /** `it` entered the sync layer with `it.at` set; `live` = items now held (bounds the index). */
  entered(it: QItem, live: number): void {
    this.items.push(it);
    this.ats.push(it.at);
    // Stale entries pile up behind a long-lived oldest one: compact once they
    // outnumber the live items (amortised O(1) per entry).
    if (this.items.length - this.head > 2 * live + 64) this.compact();
  }

  /** `at` of the oldest item still held, or Infinity. */
  oldest(): number {
    const items = this.items;
    const ats = this.ats;
    while (this.head < items.length) {
      const it = items[this.head]!;
      if (it.owner !== null && it.at === ats[this.head]) return it.at;
      items[this.head] = null;
      this.head++;
    }
    this.clear();
    return Infinity;
  }

  clear(): void {
    this.items = [];
    this.ats = [];
    this.head = 0;
  }

  /** Keeps the live entries, in order, in place (no new arrays). */
  private compact(): void {
    const items = this.items;
    const ats = this.ats;
    let w = 0;
    for (let r = this.head; r < items.length; r++) {
      const it = items[r]!;
      if (it !== null && it.owner !== null && it.at === ats[r]) {
        items[w] = it;
        ats[w] = ats[r]!;
        w++;
      }
    }
    items.length = w;
    ats.length = w;
    this.head = 0;
  }
}
