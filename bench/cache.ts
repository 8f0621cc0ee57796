// Cache micro-benchmark: insert / lookup / delete at 100k and 250k entries,
// ctsync's hashed table (keyed on the numeric identity hash) against a plain
// Map with a string key built per operation, and lru-cache when it is
// installed (`npm install --no-save lru-cache@11`; it is not a dependency).
//
//   npm run build && node dist/bench/cache.js [--rounds N]
//
// Every probe is a fresh object equal to, not identical with, the stored one,
// as kernel events are. Figures are best-of-rounds ops/s; the machine is
// shared, so compare columns of one run rather than runs.
import { AF_INET, IPPROTO, EVENT, type Conntrack } from '../src/model/conntrack.js';
import { conntrackIdentity } from '../src/cache/hash.js';
import { CacheTable } from '../src/cache/table.js';
import { InternalCache } from '../src/cache/internal.js';
import { FakeClock } from '../src/util/clock.js';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

interface LruLike {
  set(k: string, v: Conntrack): unknown;
  get(k: string): Conntrack | undefined;
  delete(k: string): boolean;
}
type LruCtor = new (opts: { max: number }) => LruLike;

function flows(n: number): Conntrack[] {
  const out = new Array<Conntrack>(n);
  for (let i = 0; i < n; i++) {
    out[i] = {
      orig: {
        l3: AF_INET, src: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, dst: '192.168.10.1',
        proto: IPPROTO.TCP, sport: 1024 + (i % 60000), dport: 443,
      },
      status: 14,
    };
  }
  return out;
}

function keyOf(ct: Conntrack): string {
  const o = ct.orig;
  return `${o.l3}|${o.src}|${o.dst}|${o.proto}|${o.sport ?? 0}|${o.dport ?? 0}|${ct.zone ?? 0}`;
}

function opsPerSec(n: number, fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  const ns = Number(process.hrtime.bigint() - t0);
  return Math.round((n / ns) * 1e9);
}

interface Row {
  impl: string;
  n: number;
  insert: number;
  lookup: number;
  del: number;
}

function benchTable(data: Conntrack[], probes: Conntrack[]): Row {
  const n = data.length;
  const t = new CacheTable<Conntrack>({ name: 'bench', kind: 'ct', ops: conntrackIdentity, limit: n + 1 });
  const insert = opsPerSec(n, () => {
    for (let i = 0; i < n; i++) {
      const v = data[i]!;
      const h = t.hashOf(v);
      if (t.lookup(v, h) === null) t.insert(v, h, 0);
    }
  });
  let hits = 0;
  const lookup = opsPerSec(n, () => {
    for (let i = 0; i < n; i++) if (t.find(probes[i]!) !== null) hits++;
  });
  const del = opsPerSec(n, () => {
    for (let i = 0; i < n; i++) {
      const e = t.find(probes[i]!);
      if (e !== null) t.remove(e);
    }
  });
  if (hits !== n || t.size !== 0) throw new Error('table bench: wrong result');
  return { impl: 'CacheTable (numeric hash)', n, insert, lookup, del };
}

function benchInternal(data: Conntrack[], probes: Conntrack[]): Row {
  const n = data.length;
  let changes = 0;
  const c = InternalCache.forConntracks({ clock: new FakeClock(), limit: n + 1, onChange: () => { changes++; } });
  // Fresh copies: the cache takes ownership of (and merges into) what it stores.
  const news = data.map((d) => ({ ...d }));
  const upds = probes.map((p) => ({ ...p, status: 14 }));
  const insert = opsPerSec(n, () => {
    for (let i = 0; i < n; i++) c.event(EVENT.NEW, news[i]!);
  });
  const lookup = opsPerSec(n, () => {
    for (let i = 0; i < n; i++) c.event(EVENT.UPDATE, upds[i]!);
  });
  const del = opsPerSec(n, () => {
    for (let i = 0; i < n; i++) {
      const o = c.event(EVENT.DESTROY, probes[i]!);
      if (o !== null) c.release(o);
    }
  });
  if (changes !== 3 * n || c.size !== 0) throw new Error('internal bench: wrong result');
  return { impl: 'InternalCache events (NEW/UPD/DESTROY+release)', n, insert, lookup, del };
}

function benchMap(data: Conntrack[], probes: Conntrack[]): Row {
  const n = data.length;
  const m = new Map<string, Conntrack>();
  const insert = opsPerSec(n, () => {
    for (let i = 0; i < n; i++) {
      const k = keyOf(data[i]!);
      if (!m.has(k)) m.set(k, data[i]!);
    }
  });
  let hits = 0;
  const lookup = opsPerSec(n, () => {
    for (let i = 0; i < n; i++) if (m.get(keyOf(probes[i]!)) !== undefined) hits++;
  });
  const del = opsPerSec(n, () => {
    for (let i = 0; i < n; i++) m.delete(keyOf(probes[i]!));
  });
  if (hits !== n || m.size !== 0) throw new Error('map bench: wrong result');
  return { impl: 'Map (string key)', n, insert, lookup, del };
}

function benchLru(Lru: LruCtor, data: Conntrack[], probes: Conntrack[]): Row {
  const n = data.length;
  const m = new Lru({ max: n + 1 });
  const insert = opsPerSec(n, () => {
    for (let i = 0; i < n; i++) m.set(keyOf(data[i]!), data[i]!);
  });
  let hits = 0;
  const lookup = opsPerSec(n, () => {
    for (let i = 0; i < n; i++) if (m.get(keyOf(probes[i]!)) !== undefined) hits++;
  });
  const del = opsPerSec(n, () => {
    for (let i = 0; i < n; i++) m.delete(keyOf(probes[i]!));
  });
  if (hits !== n) throw new Error('lru bench: wrong result');
  return { impl: `lru-cache ${lruVersion()} (string key)`, n, insert, lookup, del };
}

/** The version actually resolved (it may be a transitive copy, not the one asked for). */
function lruVersion(): string {
  try {
    let dir = dirname(createRequire(import.meta.url).resolve('lru-cache'));
    for (let i = 0; i < 5; i++, dir = dirname(dir)) {
      try {
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'lru-cache') return pkg.version ?? '?';
      } catch {
        // no package.json at this level
      }
    }
  } catch {
    // not resolvable
  }
  return '?';
}

function best(rows: Row[]): Row {
  const r = { ...rows[0]! };
  for (const x of rows) {
    r.insert = Math.max(r.insert, x.insert);
    r.lookup = Math.max(r.lookup, x.lookup);
    r.del = Math.max(r.del, x.del);
  }
  return r;
}

async function loadLru(): Promise<LruCtor | undefined> {
  const name = 'lru-cache'; // not a dependency: resolved only if installed --no-save
  try {
    const mod = (await import(name)) as { LRUCache?: LruCtor };
    return mod.LRUCache;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const ri = process.argv.indexOf('--rounds');
  const rounds = ri > 0 ? Math.max(1, Number(process.argv[ri + 1])) : 3;
  const Lru = await loadLru();
  const out: Row[] = [];
  for (const n of [100_000, 250_000]) {
    const data = flows(n);
    const probes = flows(n);
    const impls: ((d: Conntrack[], p: Conntrack[]) => Row)[] = [benchTable, benchInternal, benchMap];
    if (Lru) impls.push((d, p) => benchLru(Lru, d, p));
    for (const impl of impls) {
      const rs: Row[] = [];
      for (let r = 0; r < rounds; r++) rs.push(impl(data, probes));
      out.push(best(rs));
    }
  }
  const fmt = (x: number) => x.toLocaleString('en-US').padStart(12);
  console.log(`node ${process.version}, best of ${rounds} rounds, ops/s${Lru ? '' : ' (lru-cache not installed: skipped)'}`);
  console.log(`${'implementation'.padEnd(48)} ${'entries'.padStart(8)} ${'insert'.padStart(12)} ${'lookup'.padStart(12)} ${'delete'.padStart(12)}`);
  for (const r of out) {
    console.log(`${r.impl.padEnd(48)} ${String(r.n).padStart(8)} ${fmt(r.insert)} ${fmt(r.lookup)} ${fmt(r.del)}`);
  }
  console.log('InternalCache row: lookup = UPDATE event (hash, find, merge, onChange); delete = DESTROY + release.');
  memory();
}

/** Structure overhead per entry (values excluded: they exist before and after). Needs --expose-gc. */
function memory(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    console.log('(run with node --expose-gc for bytes/entry)');
    return;
  }
  const n = 250_000;
  const data = flows(n);
  const measure = (build: () => unknown): number => {
    gc();
    const before = process.memoryUsage().heapUsed;
    const keep = build();
    gc();
    const bytes = process.memoryUsage().heapUsed - before;
    if (keep === null) console.log('');
    return Math.round(bytes / n);
  };
  const table = measure(() => {
    const t = new CacheTable<Conntrack>({ name: 'm', kind: 'ct', ops: conntrackIdentity, limit: n + 1 });
    for (const v of data) t.insert(v, t.hashOf(v), 0);
    return t;
  });
  const map = measure(() => {
    const m = new Map<string, Conntrack>();
    for (const v of data) m.set(keyOf(v), v);
    return m;
  });
  console.log(`bytes/entry at ${n}: CacheTable ${table}, Map (string key) ${map}`);
}

void main();
