// Send-path micro-benchmark: what the primary firewall (fw1) spends per
// object of a bulk send (a peer's resync request, -B), in process and without
// sockets. An internal cache holds N kernel-shaped TCP entries (reply tuple,
// as ctnetlink reports them); a real FTFW engine sends them all, with its
// send window, to a second engine that acknowledges as a peer does (every
// ACKWindowSize messages) and drops the data. Datagrams are handed over in
// memory, so the figure is the sync layer and the encoder, not the kernel.
//
//   npm run build && node dist/bench/send.js [--n 100000] [--rounds 7]
//   (node --cpu-prof dist/bench/send.js --rounds 3   for a profile)
//
// Figures are CPU time (process.cpuUsage) per object, min and median over
// the rounds. The sender's cost is the total minus the receiver's, which is
// measured alone on the same datagrams afterwards.
import { InternalCache } from '../src/cache/internal.js';
import { EVENT } from '../src/model/conntrack.js';
import { Ftfw } from '../src/sync/ftfw.js';
import { createWireCodec } from '../src/sync/wire-codec.js';
import type { SyncHost } from '../src/sync/types.js';
import { FakeClock } from '../src/util/clock.js';
import { tcpEntries } from '../test/helpers/bulk.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

const N = arg('n', 100_000);
const ROUNDS = arg('rounds', 7);
const MAX_DATAGRAM = 1471;
const cpuUs = (): number => {
  const c = process.cpuUsage();
  return c.user + c.system;
};

const entries = tcpEntries(N);
const total: number[] = [];
const recvOnly: number[] = [];

for (let r = 0; r < ROUNDS; r++) {
  const clock = new FakeClock();
  clock.now = (): number => performance.now();
  const rounds: (() => void)[] = [];
  const schedule = (fn: () => void): void => {
    rounds.push(fn);
  };
  const toB: Buffer[] = [];
  const toA: Buffer[] = [];
  const cache = InternalCache.forConntracks({ clock, hashSize: 8192, limit: 300_000 });
  for (const ct of entries) cache.event(EVENT.NEW, ct);
  let received = 0;
  const hostA: SyncHost = {
    send: (d) => { toB.push(d); },
    maxDatagram: MAX_DATAGRAM,
    onPeerData: () => {},
    onResyncRequest: () => {},
    release: (o) => cache.release(o as Parameters<typeof cache.release>[0]),
  };
  const hostB: SyncHost = {
    send: (d) => { toA.push(d); },
    maxDatagram: MAX_DATAGRAM,
    onPeerData: () => {},
    onPeerMessage: () => {
      received++;
      return true;
    },
    onResyncRequest: () => {},
    release: () => {},
  };
  const a = new Ftfw({ host: hostA, clock, codec: createWireCodec(), schedule });
  const b = new Ftfw({ host: hostB, clock, codec: createWireCodec(), schedule });
  a.start();
  b.start();
  const sent: Buffer[] = [];
  const t0 = cpuUs();
  a.enqueueAll(cache.all()); // as the daemon's bulk send
  // Pump until everything is acknowledged (bounded: a stuck protocol is an error, not a hang).
  for (let step = 0; step < 10_000_000; step++) {
    const fn = rounds.shift();
    if (fn !== undefined) fn();
    else if (toB.length > 0) {
      const d = toB.shift()!;
      sent.push(d);
      b.receive(d);
    } else if (toA.length > 0) a.receive(toA.shift()!);
    else break;
  }
  total.push((cpuUs() - t0) / N);
  const st = a.stats();
  if (received !== N || st.txQueueLen !== 0) throw new Error(`bulk send incomplete: ${received}/${N} received, tx ${st.txQueueLen}`);
  a.stop();
  b.stop();
  // The receiver's part alone, on the same datagrams (a fresh engine: same work, no ACKs back).
  const c = new Ftfw({ host: { ...hostB, send: () => {} }, clock, codec: createWireCodec(), schedule: () => {} });
  c.start();
  const t1 = cpuUs();
  for (const d of sent) c.receive(d);
  recvOnly.push((cpuUs() - t1) / N);
  c.stop();
}

const show = (xs: number[]): string => {
  const s = [...xs].sort((p, q) => p - q);
  return `min ${s[0]!.toFixed(2)}  median ${s[s.length >> 1]!.toFixed(2)}`;
};
console.log(`bulk send of ${N} kernel-shaped TCP entries, ${ROUNDS} rounds (CPU µs per object)`);
console.log(`  sender + acknowledging peer  ${show(total)}`);
console.log(`  of which the peer (alone)    ${show(recvOnly)}`);
