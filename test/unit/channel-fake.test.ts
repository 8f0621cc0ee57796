// The in-memory pair other modules test against: async delivery, drop/dup hooks, link status.
import { describe, expect, it } from 'vitest';
import { createFakePair } from '../../src/channel/fake.js';

describe('fake channel pair', () => {
  it('delivers asynchronously, copies, and honours drop/dup hooks', async () => {
    const [a, b] = createFakePair({ a: { drop: (_d, i) => i === 1, dup: (_d, i) => i === 2 } });
    await a.open();
    await b.open();
    const got: number[] = [];
    b.onMessage((d, from) => { got.push(d[0]!); expect(from.address).toBe('192.0.2.1'); });
    const buf = Buffer.from([0]);
    for (let i = 0; i < 4; i++) {
      buf[0] = i;
      a.send(buf);
    }
    expect(got).toEqual([]);
    await Promise.resolve();
    expect(got).toEqual([0, 2, 2, 3]);
    expect(a.stats().packetsSent).toBe(4);
    expect(b.stats().packetsRecv).toBe(4);
    expect(a.sent.map((d) => d[0])).toEqual([0, 1, 2, 3]);
  });

  it('counts a send error when either side is down or closed', async () => {
    const [a, b] = createFakePair({ a: { sync: true } });
    await a.open();
    await b.open();
    b.linkStatus = 'DOWN';
    a.send(Buffer.alloc(1));
    await b.close();
    b.linkStatus = 'RUNNING';
    a.send(Buffer.alloc(1));
    expect(a.stats().errorsSent).toBe(1);
    expect(b.stats().errorsRecv).toBe(1);
  });
});
