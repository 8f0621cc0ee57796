// Event generator for the live-storm row of bench/netlink.ts: creates, updates
// and deletes N entries in a namespace as fast as the kernel takes them, in a
// process of its own so the listener competes for CPU as it would in production.
// Usage: node dist/bench/netlink-gen.js <netns path> <N>
import { AF_INET, IPPROTO, IPS, type Conntrack } from '../src/model/conntrack.js';
import { CtClient } from '../src/netlink/client.js';

async function main(): Promise<void> {
  const [nsPath, nArg] = process.argv.slice(2);
  const n = Number(nArg);
  const cts: Conntrack[] = Array.from({ length: n }, (_, i) => ({
    orig: { l3: AF_INET, src: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, dst: '192.0.2.9', proto: IPPROTO.TCP, sport: 2000 + (i % 50000), dport: 443 },
    status: IPS.SEEN_REPLY | IPS.ASSURED, timeout: 300, mark: i, tcp: { state: 3 },
  }));
  const c = new CtClient({ netns: nsPath });
  const t0 = performance.now();
  await c.create(cts);
  await c.update(cts.map((x) => ({ orig: x.orig, timeout: 200, mark: 7 })));
  await c.remove(cts);
  process.stdout.write(`${JSON.stringify({ ms: performance.now() - t0 })}\n`);
  c.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
