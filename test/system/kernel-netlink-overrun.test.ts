// An event storm into a deliberately small receive buffer: the listener must
// report the overrun (ENOBUFS, never silently), keep receiving afterwards
// (uv_poll re-armed after POLLERR), and a mirror that dumps and reconciles on
// each overrun must end equal to the kernel table.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AF_INET, EVENT, IPPROTO, IPS, type Conntrack, type Tuple } from '../../src/model/conntrack.js';
import { CtClient } from '../../src/netlink/client.js';
import { CtEventListener } from '../../src/netlink/events.js';
import { isRoot, Lab, waitFor, type Netns } from '../helpers/netns.js';

const key = (t: Tuple): string => `${t.l3} ${t.proto} ${t.src} ${t.sport} ${t.dst} ${t.dport}`;

function entry(i: number, mark: number): Conntrack {
  return {
    orig: { l3: AF_INET, src: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, dst: '192.0.2.9', proto: IPPROTO.TCP, sport: 2000 + (i % 40000), dport: 80 },
    status: IPS.SEEN_REPLY | IPS.ASSURED, timeout: 900, mark, tcp: { state: 3 },
  };
}

/**
 * The reconcile discipline the daemon uses: on overrun, dump; events that
 * arrive while the dump runs are logged and replayed on top of it, in order.
 */
class Mirror {
  map = new Map<string, number>();
  private log: [number, Conntrack][] | null = null;
  reconciles = 0;
  private pending: Promise<void> | null = null;
  private again = false;

  constructor(private readonly client: CtClient) {}

  apply(kind: number, ct: Conntrack): void {
    if (this.log) this.log.push([kind, ct]);
    if (kind === EVENT.DESTROY) this.map.delete(key(ct.orig));
    else this.map.set(key(ct.orig), ct.mark ?? 0);
  }

  overrun(): void {
    if (this.pending) {
      this.again = true;
      return;
    }
    this.pending = this.reconcile().finally(() => {
      this.pending = null;
      if (this.again) {
        this.again = false;
        this.overrun();
      }
    });
  }

  async settled(): Promise<void> {
    while (this.pending) await this.pending;
  }

  private async reconcile(): Promise<void> {
    this.log = [];
    const dump = await this.client.dump();
    const next = new Map<string, number>();
    for (const ct of dump) next.set(key(ct.orig), ct.mark ?? 0);
    for (const [kind, ct] of this.log) {
      if (kind === EVENT.DESTROY) next.delete(key(ct.orig));
      else next.set(key(ct.orig), ct.mark ?? 0);
    }
    this.log = null;
    this.map = next;
    this.reconciles++;
  }
}

describe.skipIf(!isRoot)('event overrun and reconcile', () => {
  const lab = new Lab('o');
  let ns: Netns;
  let gen: CtClient;
  let req: CtClient;
  let listener: CtEventListener;

  beforeAll(() => {
    ns = lab.netns('storm');
    gen = new CtClient({ netns: ns.path });
    req = new CtClient({ netns: ns.path });
  });

  afterAll(async () => {
    listener?.close();
    gen?.close();
    req?.close();
    await lab.cleanup();
  });

  it('detects the overrun, keeps receiving, and the reconciled mirror equals the kernel table', async () => {
    // 64 KiB (the kernel doubles it): a few hundred events fit; the storm is tens of thousands.
    listener = new CtEventListener({ netns: ns.path, bufferSize: 64 * 1024 });
    const mirror = new Mirror(req);
    let eventsAtFirstOverrun = -1;
    listener.on('event', (kind, ct) => mirror.apply(kind, ct));
    listener.on('overrun', () => {
      if (eventsAtFirstOverrun < 0) eventsAtFirstOverrun = listener.stats.events;
      mirror.overrun();
    });
    listener.start();

    let generated = 0;
    for (let round = 0; round < 3; round++) {
      const base = round * 10_000;
      const created = Array.from({ length: 10_000 }, (_, i) => entry(base + i, round));
      // Pauses let the listener wake between bursts, so delivery after each overrun is exercised.
      const pause = (): Promise<void> => new Promise((r) => setTimeout(r, 30));
      expect((await gen.create(created)).ok).toBe(10_000);
      await pause();
      expect((await gen.update(created.slice(0, 3000).map((c) => ({ orig: c.orig, mark: 1000 + round })))).ok).toBe(3000);
      await pause();
      expect((await gen.remove(created.slice(5000, 8000))).ok).toBe(3000);
      await pause();
      generated += 16_000;
    }

    // Quiet: no new events for a while, then any reconcile still running finishes.
    let last = -1;
    await waitFor(() => {
      const now = listener.stats.events;
      const quiet = now === last;
      last = now;
      return quiet;
    }, 'event stream to go quiet', 30_000, 400);
    await mirror.settled();

    const st = listener.stats;
    const nst = listener.nativeStats();
    console.log(`storm: generated ${generated}, received ${st.events}, overruns ${st.overruns}, reconciles ${mirror.reconciles}, ` +
      `native enobufs ${nst.enobufs} pollRestarts ${nst.pollRestarts} wakeups ${nst.wakeups} datagrams ${nst.datagrams}`);
    expect(st.overruns).toBeGreaterThan(0);
    expect(nst.enobufs).toBeGreaterThan(0);
    expect(st.events).toBeLessThan(generated); // events really were lost
    expect(st.events).toBeGreaterThan(eventsAtFirstOverrun); // and delivery went on after the first overrun
    expect(nst.pollRestarts).toBeGreaterThan(0); // uv_poll was re-armed after POLLERR
    expect(mirror.reconciles).toBeGreaterThan(0);
    expect(st.decodeErrors).toBe(0);

    // The oracle: conntrack(8)'s view of the table.
    const cli = new Map<string, number>();
    for (const line of ns.run('conntrack', ['-L']).stdout.split('\n')) {
      const m = /src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+) .*mark=(\d+)/.exec(line);
      if (m) cli.set(`${AF_INET} ${IPPROTO.TCP} ${m[1]} ${m[3]} ${m[2]} ${m[4]}`, Number(m[5]));
    }
    expect(cli.size).toBe(3 * 7000);
    expect(mirror.map.size).toBe(cli.size);
    let mismatched = 0;
    for (const [k, mark] of cli) if (mirror.map.get(k) !== mark) mismatched++;
    expect(mismatched).toBe(0);
  });
});
