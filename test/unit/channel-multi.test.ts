// Multi-link logic with fake links and a fake clock: Default starts active,
// a valid datagram claims its link, an active link that stops RUNNING fails
// over to the next RUNNING one within one poll, and -s link reports roles.
import { describe, expect, it } from 'vitest';
import { FakeChannel } from '../../src/channel/fake.js';
import { MultiChannel } from '../../src/channel/multi.js';
import { createChannel } from '../../src/channel/index.js';
import { FakeClock } from '../../src/util/clock.js';
import { ChannelError } from '../../src/errors.js';

const valid = Buffer.from([0x1a, 0, 0, 8, 0, 0, 0, 1]);
const badVersion = Buffer.from([0x2a, 0, 0, 8, 0, 0, 0, 1]);

async function setup(n = 3, defaultIdx = 1) {
  const clock = new FakeClock();
  const links = Array.from({ length: n }, (_, i) => new FakeChannel(`eth${i}`, { maxDatagram: 1471 - i * 10 }));
  const peers = links.map((l, i) => {
    const p = new FakeChannel(`peth${i}`, { hooks: { sync: true } });
    p.peer = l;
    l.peer = p;
    return p;
  });
  const switches: string[] = [];
  const m = new MultiChannel(links.map((channel, i) => ({ channel, isDefault: i === defaultIdx })),
    { clock, onSwitch: (from, to, why) => switches.push(`${from}->${to}:${why}`) });
  await m.open();
  await Promise.all(peers.map((p) => p.open()));
  return { m, links, peers, clock, switches };
}

describe('MultiChannel', () => {
  it('starts on the Default link and sends only there; maxDatagram is the smallest', async () => {
    const { m, links } = await setup();
    expect(m.activeIndex).toBe(1);
    expect(m.ifname).toBe('eth1');
    expect(m.maxDatagram).toBe(1451);
    m.send(valid);
    expect(links.map((l) => l.sent.length)).toEqual([0, 1, 0]);
  });

  it('without a Default link starts on the first', async () => {
    const clock = new FakeClock();
    const m = new MultiChannel([{ channel: new FakeChannel('a') }, { channel: new FakeChannel('b') }], { clock });
    expect(m.ifname).toBe('a');
  });

  it('receives on every link and switches to the link a valid datagram came from', async () => {
    const { m, peers, switches } = await setup();
    const got: string[] = [];
    m.onMessage((d) => { got.push(d.toString('hex')); });
    peers[2]!.send(badVersion);
    expect(m.activeIndex).toBe(1);
    peers[0]!.send(Buffer.from([0x10])); // truncated: not valid
    expect(m.activeIndex).toBe(1);
    peers[2]!.send(valid);
    expect(m.activeIndex).toBe(2);
    expect(got).toHaveLength(3);
    expect(switches).toEqual(['eth1->eth2:received']);
  });

  it('does not switch when the consumer says the datagram was invalid', async () => {
    const { m, peers } = await setup();
    m.onMessage(() => false);
    peers[0]!.send(valid);
    expect(m.activeIndex).toBe(1);
  });

  it('fails over to the next RUNNING link when the active one goes down, within one poll', async () => {
    const { m, links, clock, switches } = await setup(4, 0);
    links[0]!.linkStatus = 'DOWN';
    links[1]!.linkStatus = 'NO-CARRIER';
    clock.advance(999);
    expect(m.activeIndex).toBe(0);
    clock.advance(1);
    expect(m.activeIndex).toBe(2);
    expect(switches).toEqual(['eth0->eth2:failover']);
    m.send(valid);
    expect(links[2]!.sent).toHaveLength(1);
    // Wraps around past the end.
    links[2]!.linkStatus = 'DOWN';
    links[3]!.linkStatus = 'DOWN';
    links[0]!.linkStatus = 'RUNNING';
    clock.advance(1000);
    expect(m.activeIndex).toBe(0);
  });

  it('stays put when no link is RUNNING, and does not fail back on its own', async () => {
    const { m, links, clock } = await setup(2, 0);
    links[0]!.linkStatus = 'DOWN';
    links[1]!.linkStatus = 'DOWN';
    clock.advance(5000);
    expect(m.activeIndex).toBe(0);
    links[1]!.linkStatus = 'RUNNING';
    clock.advance(1000);
    expect(m.activeIndex).toBe(1);
    links[0]!.linkStatus = 'RUNNING';
    clock.advance(5000);
    expect(m.activeIndex).toBe(1);
  });

  it('reports per-link status, role and stats for -s link; stats() is the active link', async () => {
    const { m, links, peers } = await setup(2, 0);
    links[1]!.linkStatus = 'NO-CARRIER';
    m.send(valid);
    peers[1]!.linkStatus = 'RUNNING';
    const r = m.linkStats();
    expect(r.map((x) => [x.ifname, x.status, x.role])).toEqual([['eth0', 'RUNNING', 'ACTIVE'], ['eth1', 'NO-CARRIER', 'BACKUP']]);
    expect(r[0]!.stats.packetsSent).toBe(1);
    expect(m.stats().packetsSent).toBe(1);
    expect(m.status()).toBe('RUNNING');
  });

  it('stops polling on close', async () => {
    const { m, clock } = await setup();
    await m.close();
    expect(clock.pending()).toBe(0);
  });

  it('the factory wraps a list of link configs (even of one) in a MultiChannel, Default first active', () => {
    const one = createChannel([{ kind: 'udp', destination: '10.0.0.1', port: 3780, interface: 'a' }]);
    expect(one).toBeInstanceOf(MultiChannel);
    const two = createChannel([
      { kind: 'udp', destination: '10.0.0.1', port: 3780, interface: 'a' },
      { kind: 'udp', destination: '10.0.1.1', port: 3780, interface: 'b', isDefault: true },
    ]) as MultiChannel;
    expect(two.ifname).toBe('b');
    expect(two.linkStats().map((l) => `${l.kind}:${l.ifname}:${l.role}`)).toEqual(['UDP:a:BACKUP', 'UDP:b:ACTIVE']);
  });

  it('rejects 0 or more than 4 links, and mixed transports in the factory', () => {
    expect(() => new MultiChannel([])).toThrow(ChannelError);
    expect(() => new MultiChannel(Array.from({ length: 5 }, () => ({ channel: new FakeChannel() })))).toThrow(/1 to 4/);
    expect(() => createChannel([
      { kind: 'udp', destination: '10.0.0.1', port: 3780, interface: 'a' },
      { kind: 'tcp', destination: '10.0.0.1', port: 3780, interface: 'b' },
    ])).toThrow(/one transport/);
  });
});
