import { describe, expect, it, vi } from 'vitest';
import { AF_INET, IPPROTO, type Conntrack } from '../../src/model/conntrack.js';
import { conntrackIdentity } from '../../src/cache/hash.js';
import { CacheTable } from '../../src/cache/table.js';
import { OBJ_STATE } from '../../src/cache/types.js';

const ct = (i: number): Conntrack => ({
  orig: { l3: AF_INET, src: `10.0.${(i >> 8) & 255}.${i & 255}`, dst: '10.1.0.1', proto: IPPROTO.TCP, sport: 1000 + i, dport: 80 },
});

function table(limit: number, hashSize = 16, onNoSpace = vi.fn()) {
  return { t: new CacheTable<Conntrack>({ name: 'internal', kind: 'ct', ops: conntrackIdentity, hashSize, limit, onNoSpace }), onNoSpace };
}

describe('CacheTable', () => {
  it('insert / find / remove, counters', () => {
    const { t } = table(100);
    const a = ct(1);
    const e = t.insert(a, t.hashOf(a), 5)!;
    expect(e.kind).toBe('ct');
    expect(e.state).toBe(OBJ_STATE.NEW);
    expect(e.firstSeen).toBe(5);
    expect(e.sync).toBe(null);
    expect(e.pins).toBe(0);
    expect(t.find(ct(1))).toBe(e);
    expect(t.find(ct(2))).toBe(null);
    expect(t.stats).toMatchObject({ active: 1, total: 1, createOk: 1 });
    expect(t.remove(e)).toBe(true);
    expect(t.remove(e)).toBe(false);
    expect(t.find(ct(1))).toBe(null);
    expect(t.stats).toMatchObject({ active: 0, total: 0, deleteOk: 1 });
  });

  it('grows its buckets and keeps insertion order through growth and removals', () => {
    const { t } = table(10_000, 16);
    const es = [];
    for (let i = 0; i < 1000; i++) es.push(t.insert(ct(i), t.hashOf(ct(i)), 0)!);
    expect(t.bucketCount).toBeGreaterThan(16);
    for (let i = 0; i < 1000; i += 3) t.remove(es[i]!);
    const order = [...t.entries()].map((e) => e.value.orig.sport! - 1000);
    expect(order).toEqual([...Array(1000).keys()].filter((i) => i % 3 !== 0));
    for (let i = 0; i < 1000; i++) expect(t.find(ct(i)) !== null).toBe(i % 3 !== 0);
  });

  it('iteration survives removing the current entry', () => {
    const { t } = table(100);
    for (let i = 0; i < 10; i++) t.insert(ct(i), t.hashOf(ct(i)), 0);
    const seen: number[] = [];
    for (const e of t.entries()) {
      seen.push(e.value.orig.sport!);
      if (e.value.orig.sport! % 2 === 0) t.remove(e);
    }
    expect(seen.length).toBe(10);
    expect(t.size).toBe(5);
  });

  it('full table: noSpace counted, callback fired, nothing silently lost', () => {
    const { t, onNoSpace } = table(3);
    for (let i = 0; i < 3; i++) expect(t.insert(ct(i), t.hashOf(ct(i)), 0)).not.toBe(null);
    expect(t.insert(ct(9), t.hashOf(ct(9)), 0)).toBe(null);
    expect(t.insert(ct(10), t.hashOf(ct(10)), 0)).toBe(null);
    expect(t.stats).toMatchObject({ noSpace: 2, createFailed: 2, createOk: 3, total: 3 });
    expect(onNoSpace).toHaveBeenCalledTimes(2);
    expect(onNoSpace).toHaveBeenLastCalledWith('internal', 3, 2);
    // existing entries still reachable
    for (let i = 0; i < 3; i++) expect(t.find(ct(i))).not.toBe(null);
  });

  it('clear counts live entries as deleted, DEAD ones not twice', () => {
    const { t } = table(100);
    const es = [0, 1, 2].map((i) => t.insert(ct(i), t.hashOf(ct(i)), 0)!);
    t.markDead(es[0]!);
    expect(t.stats).toMatchObject({ active: 2, total: 3, deleteOk: 1 });
    expect(t.clear()).toBe(3);
    expect(t.stats).toMatchObject({ active: 0, total: 0, deleteOk: 3 });
    expect(es.every((e) => !e.linked)).toBe(true);
  });
});

describe('CacheTable hashes above 2^31', () => {
  it('finds, removes and rehashes entries whatever the sign of their hash as int32', () => {
    // Identity ops whose hashes are all ≥ 2^31 (stored as negative int32) or small.
    const ops = {
      hash: (c: Conntrack): number => ((c.orig.sport ?? 0) % 2 === 0 ? 0x8000_0000 + (c.orig.sport ?? 0) : (c.orig.sport ?? 0)) >>> 0,
      equals: conntrackIdentity.equals,
    };
    const t = new CacheTable<Conntrack>({ name: 'external', kind: 'ct', ops, hashSize: 16, limit: 1000 });
    const es = [];
    for (let i = 0; i < 500; i++) es.push(t.insert(ct(i), t.hashOf(ct(i)), 0)!); // grows several times
    for (let i = 0; i < 500; i++) expect(t.find(ct(i))).toBe(es[i]);
    for (let i = 0; i < 500; i += 2) expect(t.remove(es[i]!)).toBe(true);
    for (let i = 0; i < 500; i++) expect(t.find(ct(i))).toBe(i % 2 === 0 ? null : es[i]);
    expect(t.size).toBe(250);
  });
});

