// The sealed sync link over the in-memory fake pair: session setup, tamper,
// replay, reorder, restart, reflection, plaintext, wrong key, key rotation and
// random input. The attack-on-a-real-link version is test/system/ctsync-secure-link.test.ts.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { pino } from 'pino';
import { createFakePair, FakeChannel } from '../../src/channel/fake.js';
import { parseKeyFile, loadKeyFile, type Keyring } from '../../src/channel/keyring.js';
import {
  ReplayWindow, SecureChannel, SECURE_HEADER_SIZE, SECURE_MAGIC, SECURE_OVERHEAD, type SecureOptions,
} from '../../src/channel/secure.js';
import { FakeClock } from '../../src/util/clock.js';
import { ConfigError } from '../../src/errors.js';
import { encodeConntrackMsg } from '../../src/wire/conntrack.js';
import { FLAG, MSG } from '../../src/wire/header.js';
import { AF_INET, IPPROTO } from '../../src/model/conntrack.js';
import * as nodeCrypto from 'node:crypto';
import { NodeAead, chooseAead } from '../../src/channel/aead.js';
import { loadNative } from '../../src/netlink/native.js';

const K1 = 'a'.repeat(64);
const K2 = '0123456789abcdef'.repeat(4);
const ring = (text: string): Keyring => parseKeyFile(text, 'test.keys');
const RING1 = ring(`1 ${K1}\n`);

const tmp = mkdtempSync(join(tmpdir(), 'ctsync-secure-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Node {
  raw: FakeChannel;
  sec: SecureChannel;
  got: Buffer[];
}

function node(raw: FakeChannel, clock: FakeClock, opts: Partial<SecureOptions> = {}): Node {
  const sec = new SecureChannel(raw, { keyring: RING1, clock, ...opts });
  const got: Buffer[] = [];
  sec.onMessage((d) => got.push(Buffer.from(d)));
  return { raw, sec, got };
}

/** Two secure ends over a synchronous fake pair, session established. */
async function pair(opts: { a?: Partial<SecureOptions>; b?: Partial<SecureOptions>; hold?: boolean } = {}) {
  const clock = new FakeClock();
  const held: Buffer[] = [];
  let holding = false;
  const [ra, rb] = createFakePair({
    a: { sync: true, drop: (d) => { if (!holding) return false; held.push(d); return true; } },
    b: { sync: true },
  });
  const a = node(ra, clock, opts.a);
  const b = node(rb, clock, opts.b);
  await a.sec.open();
  await b.sec.open();
  expect(a.sec.established && b.sec.established).toBe(true);
  return {
    clock, a, b, held,
    /** While on, what a sends is captured (not delivered) into `held`. */
    hold(on: boolean) { holding = on; },
  };
}

const msg = (n: number, size = 64): Buffer => {
  const d = Buffer.alloc(size, n & 0xff);
  d.writeUInt32BE(n, 0);
  return d;
};

/** A real conntrackd datagram: CT_NEW with HELLO (the one that skips the sequence check). */
function plaintextHello(): Buffer {
  const buf = Buffer.alloc(256);
  const len = encodeConntrackMsg(buf, 0, MSG.CT_NEW, FLAG.HELLO, 12345, {
    orig: { l3: AF_INET, src: '10.6.6.6', dst: '192.0.2.1', proto: IPPROTO.TCP, sport: 4444, dport: 80 },
    status: 0, timeout: 600, tcp: { state: 3 },
  });
  return buf.subarray(0, len);
}

describe('SecureChannel', () => {
  it('sets up a session with probes, then round-trips both ways; maxDatagram shrinks by the seal', async () => {
    const { a, b } = await pair();
    expect(a.sec.maxDatagram).toBe(a.raw.maxDatagram - SECURE_OVERHEAD);
    expect(SECURE_OVERHEAD).toBe(42);
    for (let i = 0; i < 5; i++) a.sec.send(msg(i));
    b.sec.send(msg(100, 1400));
    expect(b.got.map((d) => d.readUInt32BE(0))).toEqual([0, 1, 2, 3, 4]);
    expect(a.got).toHaveLength(1);
    expect(a.got[0]!.equals(msg(100, 1400))).toBe(true);
    const sent = a.raw.sent.at(-1)!;
    expect(sent[0]).toBe(SECURE_MAGIC);
    expect(sent.length).toBe(64 + SECURE_OVERHEAD);
    // The payload is encrypted: the plaintext pattern does not show.
    expect(sent.subarray(SECURE_HEADER_SIZE).includes(msg(4).subarray(4, 20))).toBe(false);
    const s = b.sec.stats();
    expect(s.opened).toBeGreaterThanOrEqual(5);
    expect(s.rejectedBadTag + s.rejectedReplayed + s.rejectedPlaintext + s.rejectedStaleEpoch).toBe(0);
  });

  it('an end sealing with the addon and one sealing with Node\'s crypto talk both ways (builds without OpenSSL headers interoperate)', async () => {
    const { a, b } = await pair({ a: { aead: new NodeAead(nodeCrypto) }, b: { aead: chooseAead(loadNative(), () => nodeCrypto) } });
    expect(b.sec.aeadName).toBe('native');
    expect(a.sec.aeadName).toBe('node');
    for (let i = 0; i < 3; i++) a.sec.send(msg(i, 1400));
    for (let i = 10; i < 13; i++) b.sec.send(msg(i));
    expect(b.got.map((d) => d.readUInt32BE(0))).toEqual([0, 1, 2]);
    expect(a.got.map((d) => d.readUInt32BE(0))).toEqual([10, 11, 12]);
    expect(b.got[2]!.equals(msg(2, 1400))).toBe(true);
    expect(a.sec.stats().rejectedBadTag + b.sec.stats().rejectedBadTag).toBe(0);
  });

  it('holds datagrams until the session is up, then delivers them in order', async () => {
    const clock = new FakeClock();
    const [ra, rb] = createFakePair({ a: { sync: true }, b: { sync: true } });
    const a = node(ra, clock);
    const b = node(rb, clock);
    await a.sec.open(); // b not listening yet: the first probe is lost
    a.sec.send(msg(1));
    a.sec.send(msg(2));
    expect(a.sec.established).toBe(false);
    await b.sec.open();
    expect(b.got.map((d) => d.readUInt32BE(0))).toEqual([1, 2]);
    a.sec.send(msg(3));
    expect(b.got.map((d) => d.readUInt32BE(0))).toEqual([1, 2, 3]);
    await a.sec.close();
    await b.sec.close();
  });

  it('establishes by periodic probes when the first ones are lost', async () => {
    const clock = new FakeClock();
    let lose = 4;
    const [ra, rb] = createFakePair({ a: { sync: true, drop: () => lose-- > 0 }, b: { sync: true, drop: () => lose-- > 0 } });
    const a = node(ra, clock);
    const b = node(rb, clock);
    await a.sec.open();
    await b.sec.open();
    for (let t = 0; t < 20 && !(a.sec.established && b.sec.established); t++) clock.advance(250);
    expect(a.sec.established && b.sec.established).toBe(true);
  });

  it('rejects a datagram with any single byte changed, and still accepts the original afterwards', async () => {
    const p = await pair();
    p.hold(true);
    p.a.sec.send(msg(7, 40));
    p.hold(false);
    const orig = p.held[0]!;
    for (let i = 0; i < orig.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const t = Buffer.from(orig);
        t[i]! ^= bit;
        p.b.raw.deliver(t, '192.0.2.1');
      }
    }
    expect(p.b.got).toHaveLength(0);
    const s = p.b.sec.stats();
    const rejected = s.rejectedBadTag + s.rejectedMalformed + s.rejectedUnknownKey + s.rejectedPlaintext + s.rejectedReflected +
      s.rejectedStaleEpoch + s.rejectedNotForSession + s.rejectedReplayed;
    expect(rejected).toBe(orig.length * 2);
    expect(s.rejectedBadTag).toBeGreaterThan(orig.length);
    p.b.raw.deliver(orig, '192.0.2.1');
    expect(p.b.got).toHaveLength(1);
  });

  it('rejects a replay, accepts reordering inside the window, rejects what fell out of it', async () => {
    const p = await pair();
    p.hold(true);
    for (let i = 0; i < 1100; i++) p.a.sec.send(msg(i));
    p.hold(false);
    const h = p.held;
    // Deliver the last 10 in reverse, then one of them again.
    for (let i = h.length - 1; i >= h.length - 10; i--) p.b.raw.deliver(h[i]!, '192.0.2.1');
    expect(p.b.got.map((d) => d.readUInt32BE(0))).toEqual([1099, 1098, 1097, 1096, 1095, 1094, 1093, 1092, 1091, 1090]);
    p.b.raw.deliver(h[1095]!, '192.0.2.1');
    expect(p.b.sec.stats().rejectedReplayed).toBe(1);
    // 1000 behind the newest: still inside the 1024 window; 1099 behind: outside.
    p.b.raw.deliver(h[99]!, '192.0.2.1');
    expect(p.b.got).toHaveLength(11);
    p.b.raw.deliver(h[0]!, '192.0.2.1');
    expect(p.b.got).toHaveLength(11);
    expect(p.b.sec.stats().rejectedReplayed).toBe(2);
  });

  it('rejects the old epoch after the sender restarts, and recordings made before the receiver restarted', async () => {
    const clock = new FakeClock();
    const [ra, rb] = createFakePair({ a: { sync: true }, b: { sync: true } });
    const b = node(rb, clock);
    const a1 = node(ra, clock);
    await b.sec.open();
    await a1.sec.open();
    a1.sec.send(msg(1));
    const recorded = a1.raw.sent.at(-1)!; // fresh for b, delivered once
    await a1.sec.close();
    // a restarts: a new process, a new epoch, the same link.
    const a2 = node(ra, clock);
    await a2.sec.open();
    expect(a2.sec.epoch).not.toBe(a1.sec.epoch);
    expect(a2.sec.established && b.sec.established).toBe(true);
    a2.sec.send(msg(2));
    b.raw.deliver(recorded, '192.0.2.1');
    expect(b.got.map((d) => d.readUInt32BE(0))).toEqual([1, 2]);
    expect(b.sec.stats().rejectedStaleEpoch).toBe(1);
    // Now b restarts: what a2 sealed for the old b is not delivered to the new one.
    const forOldB = a2.raw.sent.at(-1)!;
    await b.sec.close();
    const b2 = node(rb, clock);
    await b2.sec.open();
    b2.raw.deliver(forOldB, '192.0.2.1');
    expect(b2.got).toHaveLength(0);
    expect(b2.sec.stats().rejectedNotForSession).toBeGreaterThanOrEqual(1);
    a2.sec.send(msg(3));
    expect(b2.got.map((d) => d.readUInt32BE(0))).toEqual([3]);
  });

  it('rejects its own datagrams sent back to it (reflection)', async () => {
    const p = await pair();
    p.a.sec.send(msg(5));
    p.a.raw.deliver(p.a.raw.sent.at(-1)!, '192.0.2.2');
    expect(p.a.got).toHaveLength(0);
    expect(p.a.sec.stats().rejectedReflected).toBe(1);
  });

  it('rejects and counts a plaintext conntrackd datagram (CT_NEW with HELLO)', async () => {
    const p = await pair();
    const d = plaintextHello();
    expect(d[0]! >> 4).toBe(1);
    p.b.raw.deliver(d, '192.0.2.1');
    expect(p.b.got).toHaveLength(0);
    expect(p.b.sec.stats().rejectedPlaintext).toBe(1);
  });

  it('logs a rejection once per interval per reason, naming the peer address and the reason', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'warn' }, { write: (l: string) => { lines.push(JSON.parse(l) as Record<string, unknown>); } });
    const p = await pair({ b: { log } });
    for (let i = 0; i < 5; i++) p.b.raw.deliver(plaintextHello(), '192.0.2.1');
    p.b.raw.deliver(Buffer.from([SECURE_MAGIC, 1, 2]), '192.0.2.1');
    expect(lines.map((l) => [l['peer'], l['reason']])).toEqual([['192.0.2.1', 'plaintext'], ['192.0.2.1', 'malformed']]);
    p.clock.advance(5000);
    p.b.raw.deliver(plaintextHello(), '192.0.2.1');
    expect(lines).toHaveLength(3);
    expect(lines[2]!['suppressed']).toBe(4);
  });

  it('survives a throwing consumer', async () => {
    const p = await pair();
    p.b.sec.onMessage(() => { throw new Error('consumer bug'); });
    p.a.sec.send(msg(1));
    expect(p.b.sec.stats().receiveErrors).toBe(1);
    p.b.sec.onMessage((d) => p.b.got.push(Buffer.from(d)));
    p.a.sec.send(msg(2));
    expect(p.b.got.map((d) => d.readUInt32BE(0))).toEqual([2]);
  });

  it('never sets up a session with a wrong key or an unknown key id', async () => {
    for (const [other, field] of [[`1 ${K2}`, 'rejectedBadTag'], [`9 ${K1}`, 'rejectedUnknownKey']] as const) {
      const clock = new FakeClock();
      const [ra, rb] = createFakePair({ a: { sync: true }, b: { sync: true } });
      const a = node(ra, clock);
      const b = node(rb, clock, { keyring: ring(other) });
      await a.sec.open();
      await b.sec.open();
      a.sec.send(msg(1));
      b.sec.send(msg(2));
      clock.advance(1000);
      expect(a.sec.established || b.sec.established).toBe(false);
      expect(a.got.length + b.got.length).toBe(0);
      expect(a.sec.stats()[field]).toBeGreaterThan(0);
      expect(b.sec.stats()[field]).toBeGreaterThan(0);
    }
  });

  it('rotates keys while traffic flows (async delivery) without losing a datagram', async () => {
    const clock = new FakeClock();
    const [ra, rb] = createFakePair();
    const fa = join(tmp, 'a.keys');
    const fb = join(tmp, 'b.keys');
    const write = (f: string, text: string): void => { writeFileSync(f, text, { mode: 0o600 }); chmodSync(f, 0o600); };
    write(fa, `1 ${K1}\n`);
    write(fb, `# sync key\n1 ${K1}\n`);
    const a = node(ra, clock, { keyring: undefined, keyFile: fa });
    const b = node(rb, clock, { keyring: undefined, keyFile: fb });
    await a.sec.open();
    await b.sec.open();
    for (let i = 0; i < 10 && !(a.sec.established && b.sec.established); i++) await new Promise((r) => setImmediate(r));
    expect(a.sec.established && b.sec.established).toBe(true);
    const steps: [string, string][] = [
      [`1 ${K1}\n2 ${K2}\n`, fa], [`1 ${K1}\n2 ${K2}\n`, fb], // add the new key as second line
      [`2 ${K2}\n1 ${K1}\n`, fa], [`2 ${K2}\n1 ${K1}\n`, fb], // promote it
      [`2 ${K2}\n`, fa], [`2 ${K2}\n`, fb], // drop the old one
    ];
    let n = 0;
    for (const [text, f] of steps) {
      for (let i = 0; i < 50; i++) { a.sec.send(msg(n)); b.sec.send(msg(n)); n++; }
      await new Promise((r) => setImmediate(r)); // in-flight datagrams land before the next step
      write(f, text);
      (f === fa ? a : b).sec.reloadKeys();
    }
    for (let i = 0; i < 50; i++) { a.sec.send(msg(n)); b.sec.send(msg(n)); n++; }
    await new Promise((r) => setImmediate(r));
    const seq = Array.from({ length: n }, (_, i) => i);
    expect(b.got.map((d) => d.readUInt32BE(0))).toEqual(seq);
    expect(a.got.map((d) => d.readUInt32BE(0))).toEqual(seq);
    expect(a.sec.keyIds).toEqual([2]);
    expect(a.raw.sent.at(-1)![1]).toBe(2);
    // The old key is gone: a datagram sealed with it is now refused.
    expect(b.sec.stats().rejectedUnknownKey + b.sec.stats().rejectedBadTag).toBe(0);
    await a.sec.close();
    await b.sec.close();
  });

  it('reloads the key file on change by itself, keeping the old keys when the new file is bad', async () => {
    const clock = new FakeClock();
    const [ra] = createFakePair({ a: { sync: true } });
    const f = join(tmp, 'w.keys');
    writeFileSync(f, `1 ${K1}\n`, { mode: 0o600 });
    const a = new SecureChannel(ra, { keyFile: f, clock, reloadCheckMs: 1000 });
    await a.open();
    writeFileSync(f, `3 ${K2}\n1 ${K1}\n`, { mode: 0o600 });
    clock.advance(1000);
    expect(a.keyIds).toEqual([3, 1]);
    writeFileSync(f, `3 nothex\n`, { mode: 0o600 });
    clock.advance(1000);
    expect(a.keyIds).toEqual([3, 1]);
    expect(a.secureStats().keyReloadErrors).toBe(1);
    expect(() => a.reloadKeys()).toThrow(/w\.keys:1: key 3: key must be hexadecimal/);
    await a.close();
  });

  it('never throws out of receive, whatever arrives', async () => {
    const p = await pair();
    const sealedLike = fc.tuple(fc.constantFrom(0, 1, 255), fc.uint8Array({ minLength: 0, maxLength: 120 }))
      .map(([id, rest]) => Buffer.concat([Buffer.from([SECURE_MAGIC, id]), Buffer.from(rest)]));
    const anyBytes = fc.uint8Array({ minLength: 0, maxLength: 200 }).map((u) => Buffer.from(u));
    fc.assert(fc.property(fc.oneof(anyBytes, sealedLike), (d) => {
      expect(() => p.b.raw.deliver(d, '192.0.2.1')).not.toThrow();
    }), { numRuns: 2000 });
    expect(p.b.got).toHaveLength(0);
    expect(p.b.sec.stats().receiveErrors).toBe(0);
    p.a.sec.send(msg(1));
    expect(p.b.got).toHaveLength(1);
  });
});

describe('ReplayWindow', () => {
  it('matches a set-based model for random counter sequences', () => {
    fc.assert(fc.property(fc.array(fc.nat({ max: 5000 }), { maxLength: 300 }), (ns) => {
      const w = new ReplayWindow(64);
      const seen = new Set<number>();
      let top = -1;
      for (const n of ns) {
        const expected = !seen.has(n) && (n > top || top - n < 64);
        expect(w.accept(n)).toBe(expected);
        if (expected) { seen.add(n); top = Math.max(top, n); }
      }
    }));
  });
});

describe('key file', () => {
  it('parses ids and keys, comments and blank lines; the first key sends', () => {
    const r = ring(`# rotation in progress\n\n  2 ${K2}   # new\n1 ${K1}\n`);
    expect(r.send.id).toBe(2);
    expect([...r.byId.keys()]).toEqual([2, 1]);
    expect(r.byId.get(1)!.key.toString('hex')).toBe(K1);
  });

  it.each([
    [`1 ${K1}\n1 ${K2}\n`, /test\.keys:2: key id 1 appears twice/],
    [`1 ${K1.slice(2)}\n`, /test\.keys:1: key 1: key must be 64 hex digits \(32 bytes\), got 62/],
    [`256 ${K1}\n`, /test\.keys:1: key id must be an integer 0\.\.255/],
    [`x ${K1}\n`, /test\.keys:1: key id must be/],
    [`# only a comment\n\n`, /test\.keys: no key in file/],
    [`\n1 ${K1} extra\n`, /test\.keys:2: expected '<id> <64 hex digits>', got 3 fields/],
    [`1 ${'0'.repeat(64)}\n`, /all-zero/],
  ])('refuses %j with an error naming file:line', (text, re) => {
    expect(() => ring(text)).toThrow(re);
    try { ring(text); } catch (e) { expect(e).toBeInstanceOf(ConfigError); expect(String(e)).not.toContain(K1.slice(0, 16)); }
  });

  it('refuses a key file that group or others can read, and a missing one', () => {
    const f = join(tmp, 'open.keys');
    writeFileSync(f, `1 ${K1}\n`);
    chmodSync(f, 0o640);
    expect(() => loadKeyFile(f)).toThrow(/open\.keys: key file is accessible by group or others \(mode 0640\); run chmod 600/);
    chmodSync(f, 0o600);
    expect(loadKeyFile(f).send.id).toBe(1);
    expect(() => loadKeyFile(join(tmp, 'nope.keys'))).toThrow(/nope\.keys: cannot read key file \(ENOENT\)/);
    expect(() => new SecureChannel(new FakeChannel(), { keyFile: join(tmp, 'nope.keys') })).toThrow(ConfigError);
  });
});
