// Sealed vs plain sync datagrams: what the authenticated link costs.
//
//   npx tsc -p tsconfig.build.json && node dist/bench/secure.js [--seconds S]
//
// Rows:
//  - seal, open: the raw AEAD work of SecureChannel per 1400-byte datagram
//    (in-process fake link, synchronous delivery);
//  - loopback UDP: datagrams/s through two real UDP sockets on 127.0.0.1,
//    plain and sealed, with a window of 64 datagrams in flight so the kernel
//    never drops (so the figure is the end-to-end rate of one core).
// "events/s" assumes 14 conntrack messages per 1400-byte datagram (an FTFW
// CT_UPD of a TCP entry is ~96 bytes). Best of 3 runs; the machine is shared.
import dgram from 'node:dgram';
import { createFakePair } from '../src/channel/fake.js';
import type { Channel, ChannelStats, LinkStatus } from '../src/channel/types.js';
import { parseKeyFile } from '../src/channel/keyring.js';
import { SecureChannel } from '../src/channel/secure.js';
import { FakeClock } from '../src/util/clock.js';

const SIZE = 1400;
const EVENTS_PER_DATAGRAM = 14;
const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 1;
const ring = parseKeyFile(`1 ${'7f'.repeat(32)}\n`, 'bench');

/** A bare UDP socket as a Channel (no sockopts, no interface): enough for a loopback benchmark. */
class LoopChannel implements Channel {
  readonly kind = 'UDP' as const;
  readonly ifname = 'lo';
  readonly maxDatagram = 65000;
  private readonly sock = dgram.createSocket('udp4');
  private cb: ((d: Buffer, from: { address: string; port: number }) => void) | null = null;
  port = 0;
  peerPort = 0;

  async open(): Promise<void> {
    if (this.port) return;
    await new Promise<void>((r) => this.sock.bind(0, '127.0.0.1', () => r()));
    this.port = this.sock.address().port;
    this.sock.on('message', (m, ri) => this.cb?.(m, ri));
  }

  send(d: Buffer): void {
    this.sock.send(d, this.peerPort, '127.0.0.1');
  }

  onMessage(cb: (d: Buffer, from: { address: string; port: number }) => void): void {
    this.cb = cb;
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => this.sock.close(() => r()));
  }

  stats(): ChannelStats {
    return { bytesSent: 0, bytesRecv: 0, packetsSent: 0, packetsRecv: 0, errorsSent: 0, errorsRecv: 0 };
  }

  status(): LinkStatus {
    return 'RUNNING';
  }
}

async function rawRates(): Promise<{ seal: number; open: number }> {
  const clock = new FakeClock();
  const [ra, rb] = createFakePair({ a: { sync: true }, b: { sync: true } });
  const a = new SecureChannel(ra, { keyring: ring, clock });
  const b = new SecureChannel(rb, { keyring: ring, clock });
  let got = 0;
  b.onMessage(() => { got++; });
  await a.open();
  await b.open();
  const d = Buffer.alloc(SIZE, 0x5a);
  const n = 20_000 * seconds;
  // Seal only: take the captured sealed datagrams off the fake without delivering.
  ra.hooks.drop = () => true;
  ra.sent.splice(0); // the session's probes
  let t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) a.send(d);
  const sealNs = Number(process.hrtime.bigint() - t);
  const sealed = ra.sent.splice(0);
  t = process.hrtime.bigint();
  for (const s of sealed) rb.deliver(s, '192.0.2.1');
  const openNs = Number(process.hrtime.bigint() - t);
  if (got !== sealed.length) throw new Error(`opened ${got} of ${sealed.length}`);
  return { seal: n / (sealNs / 1e9), open: sealed.length / (openNs / 1e9) };
}

async function loopRate(secure: boolean): Promise<number> {
  const la = new LoopChannel();
  const lb = new LoopChannel();
  await la.open();
  await lb.open();
  la.peerPort = lb.port;
  lb.peerPort = la.port;
  const a: Channel = secure ? new SecureChannel(la, { keyring: ring, reloadCheckMs: 0 }) : la;
  const b: Channel = secure ? new SecureChannel(lb, { keyring: ring, reloadCheckMs: 0 }) : lb;
  const d = Buffer.alloc(SIZE, 0x5a);
  let got = 0;
  let resolveDone: (() => void) | null = null;
  const WINDOW = 64;
  let sent = 0;
  const end = performance.now() + seconds * 1000;
  b.onMessage(() => {
    got++;
    if (performance.now() > end) {
      resolveDone?.();
      return;
    }
    // Keep WINDOW datagrams in flight.
    while (sent - got < WINDOW) { a.send(d); sent++; }
  });
  await a.open();
  await b.open();
  if (secure) {
    for (let i = 0; i < 100 && !((a as SecureChannel).established && (b as SecureChannel).established); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  const t0 = performance.now();
  const done = new Promise<void>((r) => { resolveDone = r; });
  while (sent < WINDOW) { a.send(d); sent++; }
  await done;
  const rate = got / ((performance.now() - t0) / 1000);
  await a.close();
  await b.close();
  return rate;
}

async function best<T extends number>(f: () => Promise<T>): Promise<number> {
  let m = 0;
  for (let i = 0; i < 3; i++) m = Math.max(m, await f());
  return m;
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US').padStart(12);

async function main(): Promise<void> {
  const raw = { seal: 0, open: 0 };
  for (let i = 0; i < 3; i++) {
    const r = await rawRates();
    raw.seal = Math.max(raw.seal, r.seal);
    raw.open = Math.max(raw.open, r.open);
  }
  const plain = await best(() => loopRate(false));
  const sealed = await best(() => loopRate(true));
  console.log(`SecureChannel, ${SIZE}-byte datagrams, AES-256-GCM (best of 3, ${seconds}s runs)`);
  console.log(`${'path'.padEnd(28)}${'datagrams/s'.padStart(12)}${'events/s'.padStart(14)}`);
  const row = (name: string, v: number): void => console.log(`${name.padEnd(28)}${fmt(v)}  ${fmt(v * EVENTS_PER_DATAGRAM)}`);
  row('seal only', raw.seal);
  row('open only', raw.open);
  row('loopback UDP, plain', plain);
  row('loopback UDP, sealed', sealed);
  console.log(`sealed/plain on loopback: ${(100 * sealed / plain).toFixed(1)}% (cost ${(100 * (1 - sealed / plain)).toFixed(1)}%)`);
}

await main();
