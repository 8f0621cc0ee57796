// Receive-path micro-benchmark: what the backup firewall (fw2) spends per
// replicated message, in process and without sockets. 100k TCP entries (the
// shape of bench/sync.ts) are encoded once into full datagrams; then a real
// FTFW engine receives them and its host applies every message to an
// ExternalCache, as the daemon's onPeerMessage does (straight into the
// columns; --decode: a Conntrack per message, the onPeerData way): CT_NEW
// into an empty cache (replication, resync), CT_UPD, CT_DEL of every entry.
//
//   npm run build && node --expose-gc dist/bench/recv.js [--n 100000] [--rounds 7] [--hash-size 8192] [--decode]
//
// Figures are CPU time (process.cpuUsage, robust to a shared machine), min
// and median over the rounds, and bytes held per cached entry after the
// first CT_NEW pass (JS heap + array buffers; needs --expose-gc). The clock is fractional, like the daemon's.
import { EVENT, type EventKind } from '../src/model/conntrack.js';
import { ExternalCache } from '../src/cache/external.js';
import { Ftfw } from '../src/sync/ftfw.js';
import { createWireCodec } from '../src/sync/wire-codec.js';
import type { SyncHost } from '../src/sync/types.js';
import { encodeConntrackMsg } from '../src/wire/conntrack.js';
import { MSG } from '../src/wire/header.js';
import { FakeClock } from '../src/util/clock.js';
import { tcpEntries } from '../test/helpers/bulk.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

const N = arg('n', 100_000);
const ROUNDS = arg('rounds', 7);
const HASH_SIZE = arg('hash-size', 8192); // what bench/sync.ts configures
const DECODE = process.argv.includes('--decode');
const MAX_DATAGRAM = 1471; // MTU 1500 - 28 - 1
const PEER_KIND: Record<number, EventKind> = { [MSG.CT_NEW]: EVENT.NEW, [MSG.CT_UPD]: EVENT.UPDATE, [MSG.CT_DEL]: EVENT.DESTROY };

function datagrams(type: number, seq0: number): Buffer[] {
  const out: Buffer[] = [];
  let buf = Buffer.alloc(MAX_DATAGRAM);
  let off = 0;
  let seq = seq0;
  for (const ct of tcpEntries(N)) {
    let len: number;
    try {
      len = encodeConntrackMsg(buf, off, type, 0, seq, ct, {}, MAX_DATAGRAM);
    } catch {
      out.push(buf.subarray(0, off));
      buf = Buffer.alloc(MAX_DATAGRAM);
      off = 0;
      len = encodeConntrackMsg(buf, off, type, 0, seq, ct, {}, MAX_DATAGRAM);
    }
    off += len;
    seq++;
  }
  out.push(buf.subarray(0, off));
  return out;
}

const gc = (globalThis as { gc?: () => void }).gc;
const cpuUs = (): number => {
  const c = process.cpuUsage();
  return c.user + c.system;
};

/** JS heap plus ArrayBuffer backing stores (the cache's columns live there, outside the heap). */
const heldBytes = (): number => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

const times: Record<string, number[]> = { 'CT_NEW (insert)': [], 'CT_UPD (merge)': [], 'CT_DEL (remove)': [] };
let heapPerEntry = NaN;

for (let r = 0; r < ROUNDS; r++) {
  const clock = new FakeClock();
  clock.now = (): number => performance.now();
  const ext = new ExternalCache({ clock, hashSize: HASH_SIZE, limit: 300_000 });
  const host: SyncHost = {
    send: () => {},
    maxDatagram: MAX_DATAGRAM,
    onPeerData: (type, value) => {
      ext.applyCt(PEER_KIND[type]!, value as Parameters<ExternalCache['applyCt']>[1]);
    },
    // The daemon's way (straight into the cache's columns); --decode measures a Conntrack per message.
    ...(DECODE ? {} : {
      onPeerMessage: (type: number, buf: Buffer, off: number, len: number, at: number): boolean => {
        ext.applyCtMessage(PEER_KIND[type]!, buf, off, len, at);
        return true;
      },
    }),
    onResyncRequest: () => {},
    release: () => {},
  };
  const eng = new Ftfw({ host, clock, codec: createWireCodec(), schedule: () => {} });
  eng.start();
  const passes: [string, Buffer[]][] = [
    ['CT_NEW (insert)', datagrams(MSG.CT_NEW, 1000)],
    ['CT_UPD (merge)', datagrams(MSG.CT_UPD, 1000 + N)],
    ['CT_DEL (remove)', datagrams(MSG.CT_DEL, 1000 + 2 * N)],
  ];
  for (const [name, dgs] of passes) {
    gc?.();
    const h0 = heldBytes();
    const t0 = cpuUs();
    for (const d of dgs) eng.receive(d);
    times[name]!.push((cpuUs() - t0) / N);
    // First round only: later rounds free the columns of earlier ones (array buffers go lazily).
    if (r === 0 && name.startsWith('CT_NEW') && gc !== undefined) {
      gc();
      heapPerEntry = (heldBytes() - h0) / N;
    }
  }
  const st = eng.stats();
  if (st.recv.malformed !== 0 || st.hostErrors !== 0 || ext.ctSize !== 0) throw new Error('receive path reported errors');
  eng.stop();
}

console.log(`receive path${DECODE ? ' (decode to Conntrack)' : ''}, ${N} TCP entries, HashSize ${HASH_SIZE}, ${ROUNDS} rounds (CPU µs per message)`);
for (const [name, xs] of Object.entries(times)) {
  xs.sort((a, b) => a - b);
  console.log(`  ${name.padEnd(16)} min ${xs[0]!.toFixed(2)}  median ${xs[xs.length >> 1]!.toFixed(2)}`);
}
if (!Number.isNaN(heapPerEntry)) console.log(`  heap + array buffers per cached entry after CT_NEW: ${heapPerEntry.toFixed(0)} bytes`);
