// A UDP relay that sits in the middle of the sync link and damages it on
// purpose: drops, duplicates, delays and reorders datagrams, deterministically
// from a seed. This kernel has no netem; this stands in for it.
// Usage: node udp-relay.mjs <json options>
//   { "a": {"bind": "10.0.1.254", "peer": "10.0.1.1"}, "b": {"bind": "10.0.2.254", "peer": "10.0.2.2"},
//     "port": 3780, "seed": 1, "drop": 0.05, "dup": 0.05, "reorder": 0.1, "delayMs": 20, "maxMs": 600000 }
import dgram from 'node:dgram';

const o = JSON.parse(process.argv[2]);
let state = o.seed >>> 0 || 1;
function rand() {
  // xorshift32: reproducible across runs for a given seed.
  state ^= state << 13; state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5; state >>>= 0;
  return state / 0x100000000;
}
const counts = { in: 0, out: 0, dropped: 0, duplicated: 0, reordered: 0 };
const sides = {};
for (const name of ['a', 'b']) {
  const s = dgram.createSocket('udp4');
  s.bind(o.port, o[name].bind);
  sides[name] = { sock: s, held: null };
}
function forward(to, buf) {
  counts.out++;
  sides[to].sock.send(buf, o.port, o[to].peer);
}
function relay(from, to, buf) {
  counts.in++;
  if (rand() < o.drop) { counts.dropped++; return; }
  const copies = rand() < o.dup ? 2 : 1;
  if (copies === 2) counts.duplicated++;
  const side = sides[from];
  for (let i = 0; i < copies; i++) {
    if (side.held === null && rand() < o.reorder) {
      // Hold this one back: it goes out after the next datagram, or after delayMs.
      counts.reordered++;
      const held = Buffer.from(buf);
      side.held = held;
      setTimeout(() => { if (side.held === held) { side.held = null; forward(to, held); } }, o.delayMs ?? 20);
      continue;
    }
    forward(to, buf);
    if (side.held) { const h = side.held; side.held = null; forward(to, h); }
  }
}
sides.a.sock.on('message', (m) => relay('a', 'b', m));
sides.b.sock.on('message', (m) => relay('b', 'a', m));
process.on('SIGTERM', () => { process.stdout.write(JSON.stringify(counts) + '\n'); process.exit(0); });
setInterval(() => process.stdout.write(JSON.stringify(counts) + '\n'), 1000).unref();
setTimeout(() => process.exit(0), o.maxMs ?? 600000);
