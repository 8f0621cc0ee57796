// Two sync engines back to back over an in-memory link that loses, reorders
// and duplicates datagrams, driven by a seeded PRNG and a FakeClock, so
// protocol tests are deterministic and run in milliseconds.
import { OBJ_STATE, type CacheObject, type ObjState } from '../../src/cache/types.js';
import { WireError } from '../../src/errors.js';
import { AF_INET, type Conntrack } from '../../src/model/conntrack.js';
import { Ftfw, type FtfwOptions } from '../../src/sync/ftfw.js';
import { Notrack } from '../../src/sync/notrack.js';
import type { ObjectCodec } from '../../src/sync/codec.js';
import type { SyncHost, SyncMode } from '../../src/sync/types.js';
import { FakeClock } from '../../src/util/clock.js';
import { HEADER_SIZE, MSG, writeHeader, type NetHdr } from '../../src/wire/header.js';

/** mulberry32: small, fast, good enough for test schedules. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A FakeClock-driven "soon" for the engines' transmit rounds. */
export function clockScheduler(clock: FakeClock): (fn: () => void) => void {
  return (fn) => {
    clock.setTimeout(fn, 0);
  };
}

/**
 * A trivial payload codec: a fixed-size message carrying the flow id (orig
 * sport) and a version (mark). `size` includes the 8-byte header.
 */
export function fakeCodec(size = 76, onDecode?: (hdr: NetHdr) => void): ObjectCodec {
  return {
    encode(buf, off, limit, type, flags, seq, obj) {
      if (off + size > limit) throw new WireError('CTSYNC_ERR_WIRE_ENCODE', 'no space', 'no-space');
      const ct = obj.value as Conntrack;
      buf.fill(0, off, off + size);
      writeHeader(buf, off, type, flags, size, seq);
      buf.writeUInt32BE(ct.orig.sport ?? 0, off + HEADER_SIZE);
      buf.writeUInt32BE(ct.mark ?? 0, off + HEADER_SIZE + 4);
      return size;
    },
    decode(buf, off, hdr) {
      if (hdr.len !== size) throw new WireError('CTSYNC_ERR_WIRE_DECODE', 'bad length', 'bad-len');
      onDecode?.(hdr);
      return flow(buf.readUInt32BE(off + HEADER_SIZE), buf.readUInt32BE(off + HEADER_SIZE + 4));
    },
  };
}

export function flow(id: number, version: number): Conntrack {
  return {
    orig: { l3: AF_INET, src: '10.0.0.1', dst: '10.0.0.2', proto: 17, sport: id, dport: 53 },
    mark: version,
  };
}

export interface Datagram {
  from: 'a' | 'b';
  at: number;
  bytes: Buffer;
}

export interface LinkOptions {
  seed?: number;
  /** Probability a datagram is lost. */
  loss?: number;
  /** Probability a datagram is delivered twice. */
  dup?: number;
  /** Probability a datagram gets an extra delay of up to `reorderMs` (overtaken by later ones). */
  reorder?: number;
  reorderMs?: number;
  /** Base one-way delay. */
  latencyMs?: number;
}

type Rx = (d: Buffer, from: { address: string; port: number }) => void;

/** A point-to-point link; everything sent is also recorded in `sent` (before loss). */
export class FakeLink {
  readonly sent: Datagram[] = [];
  loss: number;
  dup: number;
  reorder: number;
  /** Drop the next datagrams for which this returns true (targeted loss). */
  dropIf: ((d: Datagram) => boolean) | null = null;
  private readonly rnd: () => number;
  private readonly latency: number;
  private readonly reorderMs: number;
  private readonly rx: { a: Rx; b: Rx } = { a: () => {}, b: () => {} };
  /**
   * Each side's source port, as its channel would report it: a real restart
   * gets a new ephemeral port (bump it), a copy in flight keeps the old one.
   */
  readonly port = { a: 40001, b: 40002 };

  constructor(private readonly clock: FakeClock, opts: LinkOptions = {}) {
    this.rnd = prng(opts.seed ?? 1);
    this.loss = opts.loss ?? 0;
    this.dup = opts.dup ?? 0;
    this.reorder = opts.reorder ?? 0;
    this.reorderMs = opts.reorderMs ?? 50;
    this.latency = opts.latencyMs ?? 1;
  }

  attach(side: 'a' | 'b', rx: Rx): void {
    this.rx[side] = rx;
  }

  send(from: 'a' | 'b', bytes: Buffer): void {
    const d: Datagram = { from, at: this.clock.now(), bytes };
    this.sent.push(d);
    if (this.dropIf?.(d)) return;
    if (this.rnd() < this.loss) return;
    const copies = this.rnd() < this.dup ? 2 : 1;
    const to = from === 'a' ? 'b' : 'a';
    const src = { address: from, port: this.port[from] };
    for (let i = 0; i < copies; i++) {
      const extra = this.rnd() < this.reorder ? 1 + Math.floor(this.rnd() * this.reorderMs) : 0;
      this.clock.setTimeout(() => this.rx[to](Buffer.from(bytes), src), this.latency + extra + i);
    }
  }

  /** Datagrams sent by `side`, optionally since index `from` of `sent`. */
  from(side: 'a' | 'b', since = 0): Datagram[] {
    return this.sent.slice(since).filter((d) => d.from === side);
  }
}

/** A node: an internal cache (what we send), an external cache (what the peer told us), an engine. */
export class TestNode implements SyncHost {
  readonly internal = new Map<number, CacheObject>();
  readonly external = new Map<number, number>();
  readonly released: CacheObject[] = [];
  resyncRequests = 0;
  peerData: { type: number; id: number; version: number }[] = [];
  engine!: SyncMode;

  constructor(readonly side: 'a' | 'b', readonly clock: FakeClock, private readonly link: FakeLink,
    readonly maxDatagram = 1471) {
    link.attach(side, (d, from) => this.engine.receive(d, from));
  }

  send(datagram: Buffer): void {
    this.link.send(this.side, datagram);
  }

  onPeerData(type: number, value: Conntrack | object): void {
    const ct = value as Conntrack;
    const id = ct.orig.sport ?? 0;
    this.peerData.push({ type, id, version: ct.mark ?? 0 });
    if (type === MSG.CT_DEL) this.external.delete(id);
    else this.external.set(id, ct.mark ?? 0);
  }

  onResyncRequest(): void {
    this.resyncRequests++;
    for (const obj of this.internal.values()) this.engine.enqueue(obj);
  }

  release(obj: CacheObject): void {
    this.released.push(obj);
    if (obj.state === OBJ_STATE.DEAD && obj.pins === 0) {
      const id = (obj.value as Conntrack).orig.sport ?? 0;
      if (this.internal.get(id) === obj) this.internal.delete(id);
    }
  }

  // ---- local "kernel events" ----

  create(id: number, version = 1): CacheObject {
    const obj: CacheObject = {
      kind: 'ct', value: flow(id, version), state: OBJ_STATE.NEW, firstSeen: this.clock.now(),
      lastUpdate: this.clock.now(), sync: null, pins: 0,
    };
    this.internal.set(id, obj);
    this.engine.enqueue(obj);
    return obj;
  }

  update(id: number, version: number): void {
    const obj = this.internal.get(id)!;
    obj.value = flow(id, version);
    obj.state = OBJ_STATE.ALIVE as ObjState;
    obj.lastUpdate = this.clock.now();
    this.engine.enqueue(obj);
  }

  destroy(id: number): void {
    const obj = this.internal.get(id)!;
    obj.state = OBJ_STATE.DEAD as ObjState;
    this.engine.enqueue(obj);
  }

  /** Live flows: id → version. */
  live(): Map<number, number> {
    const m = new Map<number, number>();
    for (const [id, obj] of this.internal) {
      if (obj.state !== OBJ_STATE.DEAD) m.set(id, (obj.value as Conntrack).mark ?? 0);
    }
    return m;
  }
}

export interface PairOptions {
  mode?: 'ftfw' | 'notrack';
  link?: LinkOptions;
  /** FakeClock Unix base (seq seed). */
  unixBase?: number;
  ftfw?: Partial<FtfwOptions>;
  /** Per-side overrides. */
  ftfwA?: Partial<FtfwOptions>;
  ftfwB?: Partial<FtfwOptions>;
  msgSize?: number;
  /** Replaces the fake codec (e.g. the real wire codec). */
  codec?: ObjectCodec;
  maxDatagram?: number;
  onDecode?: (side: 'a' | 'b', hdr: NetHdr) => void;
}

export interface Pair {
  clock: FakeClock;
  link: FakeLink;
  a: TestNode;
  b: TestNode;
}

/** Builds two nodes over one link; engines are created but not started. */
export function makePair(opts: PairOptions = {}): Pair {
  const clock = new FakeClock(opts.unixBase);
  const link = new FakeLink(clock, opts.link);
  const mk = (side: 'a' | 'b'): TestNode => {
    const node = new TestNode(side, clock, link, opts.maxDatagram);
    const base = {
      host: node, clock, schedule: clockScheduler(clock),
      codec: opts.codec ?? fakeCodec(opts.msgSize, opts.onDecode ? (h) => opts.onDecode!(side, h) : undefined),
    };
    node.engine = opts.mode === 'notrack'
      ? new Notrack(base)
      : new Ftfw({ ...base, ...opts.ftfw, ...(side === 'a' ? opts.ftfwA : opts.ftfwB) });
    return node;
  };
  return { clock, link, a: mk('a'), b: mk('b') };
}

export function hex(b: Buffer): string {
  return b.toString('hex').replace(/(..)(?!$)/g, '$1 ');
}
