import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ControlServer, type ControlHandler, type PeerCredReader } from '../../src/control/server.js';
import { sendRequest } from '../../src/control/client.js';
import { CTL, CTL_FLAG_JSON, ctlName, decodeRequest, encodeRequest, isKnownCode } from '../../src/control/codes.js';
import { silentLogger } from '../../src/log/logger.js';
import { ControlError } from '../../src/errors.js';

let dir: string;
let sock: string;
const servers: ControlServer[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctsync-ctl-'));
  sock = path.join(dir, 'ctl.sock');
});

afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const anyone: PeerCredReader = () => ({ uid: 0, pid: 1 });

async function start(handler: ControlHandler, extra: Partial<ConstructorParameters<typeof ControlServer>[0]> = {}): Promise<ControlServer> {
  const s = new ControlServer({ path: sock, handler, log: silentLogger, peerCred: anyone, ...extra });
  servers.push(s);
  await s.listen();
  return s;
}

/** Sends raw bytes, returns everything the server wrote before closing. */
function raw(bytes: Buffer, opts: { end?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect({ path: sock });
    let out = '';
    c.on('data', (d) => { out += d.toString(); });
    c.on('close', () => resolve(out));
    c.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' || e.code === 'EPIPE' ? resolve(out) : reject(e)));
    c.on('connect', () => {
      c.write(bytes);
      if (opts.end) c.end();
    });
  });
}

const int32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeInt32LE(n); return b; };

describe('codes', () => {
  it('numbers requests as conntrackd 1.4.7 does', () => {
    expect(CTL.CT_FLUSH_MASTER).toBe(0);
    expect(CTL.CT_DUMP_INTERNAL).toBe(16);
    expect(CTL.STATS_RSQUEUE).toBe(32);
    expect(CTL.ALL_COMMIT).toBe(46);
    expect(CTL.EXP_DUMP_EXT_XML).toBe(48);
    expect(ctlName(21)).toBe('STATS');
    expect(isKnownCode(2)).toBe(false);
    expect(isKnownCode(15)).toBe(false);
    expect(isKnownCode(49)).toBe(false);
    expect(Object.keys(CTL)).toHaveLength(35);
  });
  it('JSON flag round-trips and never makes a conntrackd code out of garbage', () => {
    expect(decodeRequest(encodeRequest(21, true))).toEqual({ code: 21, json: true });
    expect(decodeRequest(21)).toEqual({ code: 21, json: false });
    expect(decodeRequest(-1)).toEqual({ code: -1, json: false });
    expect(decodeRequest(0x20015)).toEqual({ code: 0x20015, json: false });
    expect(CTL_FLAG_JSON).toBe(0x10000);
  });
});

describe('ControlServer + sendRequest', () => {
  it('round-trips a request and closes after the handler', async () => {
    const seen: Array<[number, boolean]> = [];
    await start(async (code, reply, ctx) => {
      seen.push([code, ctx.json]);
      reply.write('resent queue (len=0)\n');
      reply.write('');
    });
    expect(await sendRequest(sock, CTL.STATS_RSQUEUE, { timeoutMs: 2000 })).toBe('resent queue (len=0)\n');
    expect(await sendRequest(sock, CTL.STATS, { timeoutMs: 2000, json: true })).toBe('resent queue (len=0)\n');
    expect(seen).toEqual([[32, false], [21, true]]);
  });

  it('creates the socket with mode 0600 and leaves the process umask as it was', async () => {
    const before = process.umask();
    await start(async () => {});
    expect(process.umask()).toBe(before);
    const st = fs.statSync(sock);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
  });

  it('passes the peer credentials and refuses other uids', async () => {
    let peer: unknown;
    const s = await start(async (_c, r, ctx) => { peer = ctx.peer; r.write('x'); },
      { peerCred: () => ({ uid: 4242, pid: 7 }), allowedUids: [4242] });
    expect(await sendRequest(sock, CTL.STATS, { timeoutMs: 2000 })).toBe('x');
    expect(peer).toEqual({ uid: 4242, pid: 7 });
    await s.close();
    servers.length = 0;
    const s2 = await start(async (_c, r) => r.write('secret'), { peerCred: () => ({ uid: 1000, pid: 9 }), allowedUids: [] });
    expect(await sendRequest(sock, CTL.STATS, { timeoutMs: 2000 })).toBe('');
    expect(s2.stats.rejectedCred).toBe(1);
  });

  it('default credential reader: SO_PEERCRED through the native addon when it is built, else none', async () => {
    let peer: { uid: number; pid: number } | undefined;
    const s = new ControlServer({ path: sock, handler: async (_c, r, ctx) => { peer = ctx.peer; r.write('ok'); }, log: silentLogger });
    servers.push(s);
    await s.listen();
    expect(await sendRequest(sock, CTL.STATS, { timeoutMs: 2000 })).toBe('ok');
    // The client is this very process.
    if (peer!.uid === -1) expect(peer).toEqual({ uid: -1, pid: -1 });
    else expect(peer).toEqual({ uid: process.getuid!(), pid: process.pid });
  });

  it('falls back to the file mode when credentials cannot be read', async () => {
    let peer: unknown;
    await start(async (_c, r, ctx) => { peer = ctx.peer; r.write('ok'); }, { peerCred: () => { throw new Error('no addon'); } });
    expect(await sendRequest(sock, CTL.STATS, { timeoutMs: 2000 })).toBe('ok');
    expect(peer).toEqual({ uid: -1, pid: -1 });
  });

  it('closes unknown codes with nothing, without calling the handler', async () => {
    let calls = 0;
    const s = await start(async (_c, r) => { calls++; r.write('x'); });
    expect(await sendRequest(sock, 99, { timeoutMs: 2000 })).toBe('');
    expect(await sendRequest(sock, -1, { timeoutMs: 2000 })).toBe('');
    expect(await raw(int32(27 | 0x20000))).toBe('');
    expect(calls).toBe(0);
    expect(s.stats.unknownCodes).toBe(3);
  });

  it('survives short reads, garbage, and silent clients', async () => {
    const s = await start(async (_c, r) => r.write('alive\n'), { readTimeoutMs: 100 });
    expect(await raw(Buffer.from([21]), { end: true })).toBe('');
    expect(await raw(Buffer.from([21, 0]), { end: true })).toBe('');
    expect(await raw(Buffer.alloc(0), { end: true })).toBe('');
    expect(await raw(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toBe(''); // "GET " is an unknown code
    expect(await raw(Buffer.from([21]))).toBe(''); // never completes: read timeout
    // Extra bytes after the 4-byte request are ignored, as conntrackd's single read() does.
    expect(await raw(Buffer.concat([int32(21), Buffer.from('trailing junk')]))).toBe('alive\n');
    // Two bytes now, two later: a split request still counts.
    const split = await new Promise<string>((resolve) => {
      const c = net.connect({ path: sock });
      let out = '';
      c.on('data', (d) => { out += d.toString(); });
      c.on('close', () => resolve(out));
      c.on('connect', () => { c.write(Buffer.from([21, 0])); setTimeout(() => c.write(Buffer.from([0, 0])), 30); });
    });
    expect(split).toBe('alive\n');
    expect(s.stats.shortReads).toBe(4);
    expect(s.stats.unknownCodes).toBe(1);
    expect(await sendRequest(sock, CTL.STATS, { timeoutMs: 2000 })).toBe('alive\n');
  });

  it('keeps a handler error from killing the server', async () => {
    const s = await start(async (code, r) => {
      if (code === CTL.STATS) throw new Error('boom');
      r.write('fine');
    });
    expect(await sendRequest(sock, CTL.STATS, { timeoutMs: 2000 })).toBe('');
    expect(await sendRequest(sock, CTL.STATS_CACHE, { timeoutMs: 2000 })).toBe('fine');
    expect(s.stats.handlerErrors).toBe(1);
  });

  it('bounds concurrent connections (200 clients, 8 slots)', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    let inHandler = 0;
    let maxInHandler = 0;
    const s = await start(async (_c, r) => {
      inHandler++;
      maxInHandler = Math.max(maxInHandler, inHandler);
      await gate;
      r.write('done');
      inHandler--;
    }, { maxClients: 8 });
    const results = Array.from({ length: 200 }, () =>
      sendRequest(sock, CTL.STATS, { timeoutMs: 5000 }).catch((e: unknown) => (e instanceof ControlError ? 'ERR' : 'OTHER')));
    await new Promise((r) => setTimeout(r, 300));
    expect(s.connections).toBeLessThanOrEqual(8);
    release();
    const out = await Promise.all(results);
    expect(maxInHandler).toBeLessThanOrEqual(8);
    expect(out.filter((o) => o === 'done').length).toBeGreaterThanOrEqual(8);
    expect(out.every((o) => o === 'done' || o === '' || o === 'ERR')).toBe(true);
    expect(s.stats.accepted + s.stats.rejectedBusy).toBe(out.filter((o) => o !== 'ERR').length + (200 - out.length));
    // The server is still serving afterwards, once the slots are closed.
    await new Promise((r) => setTimeout(r, 50));
    expect(s.connections).toBe(0);
    expect(await sendRequest(sock, CTL.STATS, { timeoutMs: 2000 })).toBe('done');
  });

  it('abandons a reply a client does not read', async () => {
    const big = 'x'.repeat(1 << 20);
    const s = await start(async (_c, r) => { for (let i = 0; i < 16; i++) r.write(big); }, { maxPendingBytes: 2 << 20, writeTimeoutMs: 200 });
    const c = net.connect({ path: sock });
    await new Promise<void>((r) => c.on('connect', () => r()));
    c.pause();
    c.write(int32(CTL.STATS));
    const closed = new Promise<void>((r) => c.on('close', () => r()));
    c.on('error', () => {});
    await new Promise((r) => setTimeout(r, 500));
    c.destroy();
    await closed;
    expect(s.stats.writeAborts).toBeGreaterThanOrEqual(1);
    expect(await sendRequest(sock, 99, { timeoutMs: 2000 })).toBe('');
  });

  it('recovers a stale socket file and refuses a live one', async () => {
    const live = net.createServer((c) => c.destroy());
    await new Promise<void>((r) => live.listen(sock, () => r()));
    await expect(new ControlServer({ path: sock, handler: async () => {}, log: silentLogger, peerCred: anyone }).listen())
      .rejects.toMatchObject({ code: 'CTSYNC_ERR_CTL_BUSY', message: `another daemon is running on ${sock}` });
    await new Promise<void>((r) => live.close(() => r()));
    makeDeadSocket(sock);
    expect(fs.lstatSync(sock).isSocket()).toBe(true);
    await start(async (_c, r) => r.write('new'));
    expect(await sendRequest(sock, CTL.STATS, { timeoutMs: 2000 })).toBe('new');
  });

  it('refuses to replace a path that is not a socket', async () => {
    fs.writeFileSync(sock, 'keep me');
    await expect(new ControlServer({ path: sock, handler: async () => {}, log: silentLogger, peerCred: anyone }).listen())
      .rejects.toMatchObject({ code: 'CTSYNC_ERR_CTL_BUSY' });
    expect(fs.readFileSync(sock, 'utf8')).toBe('keep me');
  });

  it('removes the socket file on close', async () => {
    const s = await start(async () => {});
    await s.close();
    servers.length = 0;
    expect(fs.existsSync(sock)).toBe(false);
  });

  it('client reports CTSYNC_ERR_CTL_CONNECT when nobody listens', async () => {
    await expect(sendRequest(sock, CTL.STATS, { timeoutMs: 1000 })).rejects.toMatchObject({ code: 'CTSYNC_ERR_CTL_CONNECT' });
    makeDeadSocket(sock);
    await expect(sendRequest(sock, CTL.STATS, { timeoutMs: 1000 })).rejects.toMatchObject({ code: 'CTSYNC_ERR_CTL_CONNECT' });
  });

  it('client times out on a daemon that never answers', async () => {
    await start(() => new Promise<void>(() => {}));
    await expect(sendRequest(sock, CTL.STATS, { timeoutMs: 150 })).rejects.toMatchObject({ code: 'CTSYNC_ERR_CTL_PROTOCOL' });
  });

  it('client streams chunks when asked', async () => {
    await start(async (_c, r) => { r.write('a\n'); r.write('b\n'); });
    const got: string[] = [];
    expect(await sendRequest(sock, CTL.CT_DUMP_INTERNAL, { timeoutMs: 2000, onChunk: (t) => got.push(t) })).toBe('');
    expect(got.join('')).toBe('a\nb\n');
  });
});

/**
 * Leaves a socket file nobody listens on, as a crashed daemon does: a child
 * process binds it and is killed before it can unlink.
 */
function makeDeadSocket(p: string): void {
  try {
    execFileSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(p)}, () => process.kill(process.pid, 'SIGKILL'))`],
      { stdio: 'ignore' });
  } catch {
    // Killed by SIGKILL, as intended.
  }
}
