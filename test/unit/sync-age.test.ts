// AgeIndex: the oldest held item's entry time without walking the queues.
import { describe, expect, it } from 'vitest';
import { AgeIndex } from '../../src/sync/age.js';
import { ctlItem, SyncQueue, type CtlItem } from '../../src/sync/queue.js';

function item(q: SyncQueue, at: number): CtlItem {
  const it = ctlItem(0, 0, 0);
  it.at = at;
  q.push(it);
  return it;
}

describe('AgeIndex', () => {
  it('returns the oldest held entry and skips items that left or re-entered later', () => {
    const q = new SyncQueue('q');
    const a = new AgeIndex();
    const i1 = item(q, 10);
    a.entered(i1, q.len);
    const i2 = item(q, 20);
    a.entered(i2, q.len);
    expect(a.oldest()).toBe(10);
    q.remove(i1);
    expect(a.oldest()).toBe(20);
    // i1 comes back later: its old entry is stale, its new one is behind i2.
    i1.at = 30;
    q.push(i1);
    a.entered(i1, q.len);
    expect(a.oldest()).toBe(20);
    q.remove(i2);
    expect(a.oldest()).toBe(30);
    q.remove(i1);
    expect(a.oldest()).toBe(Infinity);
  });

  it('moving between queues keeps an item held', () => {
    const tx = new SyncQueue('tx');
    const rs = new SyncQueue('rs');
    const a = new AgeIndex();
    const i1 = item(tx, 5);
    a.entered(i1, 1);
    rs.push(i1);
    expect(a.oldest()).toBe(5);
  });

  it('stays bounded while one old item is held and many come and go', () => {
    const q = new SyncQueue('q');
    const a = new AgeIndex();
    const old = item(q, 1);
    a.entered(old, q.len);
    for (let t = 2; t < 100_000; t++) {
      const it = item(q, t);
      a.entered(it, q.len);
      q.remove(it);
    }
    expect(a.oldest()).toBe(1);
    expect((a as unknown as { size: number }).size).toBeLessThan(200);
  });
});
