// The lazy native loader: a missing or partial addon is a ChannelError with a
// clear message, not a crash; a good one is loaded once.
import { describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import { makeSockoptLoader, socketFd } from '../../src/channel/sockopt.js';
import { ChannelError } from '../../src/errors.js';

describe('sockopt loader', () => {
  it('reports a module that will not import', async () => {
    const load = makeSockoptLoader(async () => { throw new Error('Cannot find module native.js'); });
    await expect(load()).rejects.toBeInstanceOf(ChannelError);
    await expect(load()).rejects.toThrow(/cannot load the native addon.*Cannot find module/);
  });

  it('reports a module without loadNative or a binding without setsockoptFd', async () => {
    await expect(makeSockoptLoader(async () => ({}))()).rejects.toThrow(/exports no loadNative/);
    await expect(makeSockoptLoader(async () => ({ loadNative: () => ({ other: 1 }) }))()).rejects.toThrow(/no setsockoptFd/);
    await expect(makeSockoptLoader(async () => ({ loadNative: () => { throw new Error('addon not built'); } }))())
      .rejects.toThrow(/addon not built/);
  });

  it('imports once and retries after a failure', async () => {
    let n = 0;
    const binding = { setsockoptFd: () => {} };
    const load = makeSockoptLoader(async () => {
      n++;
      if (n === 1) throw new Error('first fails');
      return { loadNative: () => binding };
    });
    await expect(load()).rejects.toThrow(/first fails/);
    expect(await load()).toBe(binding);
    expect(await load()).toBe(binding);
    expect(n).toBe(2);
  });

  it('finds the fd of a bound dgram socket, and refuses an unbound one', async () => {
    const s = dgram.createSocket('udp4');
    expect(() => socketFd(s)).toThrow(ChannelError);
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    expect(socketFd(s)).toBeGreaterThan(2);
    s.close();
  });
});
