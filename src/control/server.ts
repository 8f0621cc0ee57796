// The UNIX control socket (conntrackd's local.c server side). One request per
// connection: the client writes one native-endian int32, the handler writes
// text, the server closes. Everything a local client sends is untrusted: a
// short or garbage request, a client that never sends or never reads, or a
// flood of connections is counted, its connection dropped, and the daemon
// goes on.
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import type { Logger } from '../log/logger.js';
import { RateLimitedLog } from '../log/logger.js';
import { ControlError } from '../errors.js';
import { decodeRequest, isKnownCode } from './codes.js';

export interface PeerCred {
  uid: number;
  pid: number;
}

export interface ControlReply {
  /** Queues text for the client. Ignored once the connection is gone. */
  write(text: string): void;
}

export interface ControlContext {
  /** The request carried ctsync's JSON flag (see CTL_FLAG_JSON). */
  json: boolean;
  /** uid/pid of the client, or -1/-1 when credentials could not be read. */
  peer: PeerCred;
}

export type ControlHandler = (code: number, reply: ControlReply, ctx: ControlContext) => Promise<void>;

/**
 * Reads the peer's credentials of a connected socket. `null` means "cannot
 * tell" (no native addon): the socket's 0600 mode is then the only gate.
 */
export type PeerCredReader = (socket: net.Socket) => PeerCred | null;

/** Counters of hostile or broken local clients; the daemon maps them onto -s runtime. */
export interface ControlServerStats {
  accepted: number;
  /** Connections refused because maxClients were already open. */
  rejectedBusy: number;
  /** Connections refused by the credential check. */
  rejectedCred: number;
  /** Clients that closed or timed out before sending 4 bytes ("local read failed"). */
  shortReads: number;
  /** Well-formed requests with a code conntrackd does not have. */
  unknownCodes: number;
  /** Replies abandoned because the client did not read them in time or they grew past the bound. */
  writeAborts: number;
  /** Handlers that threw. */
  handlerErrors: number;
}

export interface ControlServerOptions {
  path: string;
  handler: ControlHandler;
  log: Logger;
  /** Connections served at once; more are closed at accept. Default 32 (conntrackd serves one at a time). */
  maxClients?: number;
  /** Time a client has to send its 4 bytes. Default 2000 ms. */
  readTimeoutMs?: number;
  /** Time a reply may make no write progress before the connection is dropped. Default 30000 ms. */
  writeTimeoutMs?: number;
  /** Bytes a reply may have queued unsent before it is abandoned. Default 256 MiB (a very large dump). */
  maxPendingBytes?: number;
  /** Credential reader; default: SO_PEERCRED through the native addon, if present. */
  peerCred?: PeerCredReader;
  /** uids allowed besides 0. Default: the daemon's own uid. */
  allowedUids?: number[];
}

const REQUEST_SIZE = 4;
const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
const UCRED_SIZE = 12;
const STALE_PROBE_TIMEOUT_MS = 1000;

export class ControlServer {
  readonly stats: ControlServerStats = {
    accepted: 0, rejectedBusy: 0, rejectedCred: 0, shortReads: 0, unknownCodes: 0, writeAborts: 0, handlerErrors: 0,
  };

  private readonly opts: Required<Omit<ControlServerOptions, 'peerCred' | 'allowedUids'>>;
  private readonly allowed: Set<number>;
  private readonly rl: RateLimitedLog;
  private readonly sockets = new Set<net.Socket>();
  private server: net.Server | null = null;
  private ready = false;
  private credReader: PeerCredReader | null;
  private credUnavailableLogged = false;

  constructor(options: ControlServerOptions) {
    this.opts = {
      path: options.path,
      handler: options.handler,
      log: options.log,
      maxClients: options.maxClients ?? 32,
      readTimeoutMs: options.readTimeoutMs ?? 2000,
      writeTimeoutMs: options.writeTimeoutMs ?? 30_000,
      maxPendingBytes: options.maxPendingBytes ?? 256 * 1024 * 1024,
    };
    const own = typeof process.getuid === 'function' ? process.getuid() : 0;
    this.allowed = new Set([0, ...(options.allowedUids ?? [own])]);
    this.credReader = options.peerCred ?? null;
    this.rl = new RateLimitedLog(options.log);
  }

  /** Connections currently open. */
  get connections(): number {
    return this.sockets.size;
  }

  async listen(): Promise<void> {
    if (this.server) throw new Error('ControlServer.listen called twice');
    if (!this.credReader) this.credReader = await loadNativePeerCred();
    if (!this.credReader) {
      this.opts.log.warn({ path: this.opts.path },
        'control socket: peer credentials unavailable (native addon missing); relying on the socket file mode 0600');
      this.credUnavailableLogged = true;
    }
    await removeStaleSocket(this.opts.path);

    const server = net.createServer({ allowHalfOpen: true }, (s) => this.onConnection(s));
    server.maxConnections = this.opts.maxClients * 4; // a hard kernel-side backstop; the soft limit is below
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        this.server = null;
        reject(new ControlError('CTSYNC_ERR_CTL_BUSY', `cannot listen on ${this.opts.path}: ${err.message}`,
          { path: this.opts.path, errno: err.code }));
      };
      server.once('error', onError);
      // The socket file is created by bind() with mode 0777 & ~umask; a
      // 0177 umask around listen() closes the window in which another user
      // could connect before the chmod below. umask() cannot be changed in
      // worker threads, where the chmod alone has to do.
      const oldMask = trySetUmask(0o177);
      try {
        server.listen({ path: this.opts.path, backlog: 100 }, () => {
          server.off('error', onError);
          try {
            // 'listening' runs before any accept callback, so no client is
            // served while the mode is still wrong.
            fs.chmodSync(this.opts.path, 0o600);
          } catch (err) {
            server.close();
            this.server = null;
            reject(new ControlError('CTSYNC_ERR_CTL_BUSY', `cannot chmod ${this.opts.path}: ${(err as Error).message}`));
            return;
          }
          this.ready = true;
          server.on('error', (e) => this.opts.log.error({ err: e }, 'control socket error'));
          resolve();
        });
      } finally {
        if (oldMask !== null) process.umask(oldMask);
      }
    });
  }

  /** Stops accepting, drops open connections and removes the socket file. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    this.ready = false;
    if (!server) return;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    try {
      fs.unlinkSync(this.opts.path);
    } catch {
      // Already gone (close() unlinks it on some Node versions): nothing to do.
    }
  }

  private onConnection(socket: net.Socket): void {
    if (!this.ready || this.sockets.size >= this.opts.maxClients) {
      this.stats.rejectedBusy++;
      this.rl.warn('ctl-busy', { open: this.sockets.size }, 'control socket: too many clients, connection closed');
      socket.destroy();
      return;
    }
    this.stats.accepted++;
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy()); // EPIPE/ECONNRESET from a client that went away

    const peer = this.checkPeer(socket);
    if (!peer) return;

    let buf = Buffer.alloc(0);
    let done = false;
    const finishRead = (): void => {
      done = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.pause();
    };
    const timer = setTimeout(() => {
      if (done) return;
      finishRead();
      this.stats.shortReads++;
      this.rl.warn('ctl-read-timeout', { got: buf.length }, 'control socket: client sent no complete request in time');
      socket.destroy();
    }, this.opts.readTimeoutMs);
    const onEnd = (): void => {
      if (done) return;
      finishRead();
      this.stats.shortReads++;
      this.rl.warn('ctl-short-read', { got: buf.length }, 'control socket: short request');
      socket.destroy();
    };
    const onData = (chunk: Buffer): void => {
      if (done) return;
      // At most 4 bytes are kept: whatever else a client sends is ignored, as conntrackd's single read() does.
      buf = Buffer.concat([buf, chunk.subarray(0, REQUEST_SIZE - buf.length)]);
      if (buf.length < REQUEST_SIZE) return;
      finishRead();
      const word = os.endianness() === 'LE' ? buf.readInt32LE(0) : buf.readInt32BE(0);
      void this.serve(socket, word, peer);
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
  }

  private checkPeer(socket: net.Socket): PeerCred | null {
    let cred: PeerCred | null = null;
    if (this.credReader) {
      try {
        cred = this.credReader(socket);
      } catch (err) {
        if (!this.credUnavailableLogged) {
          this.credUnavailableLogged = true;
          this.opts.log.warn({ err }, 'control socket: reading peer credentials failed; relying on the socket file mode 0600');
        }
      }
    }
    if (cred && !this.allowed.has(cred.uid)) {
      this.stats.rejectedCred++;
      this.rl.warn('ctl-cred', { uid: cred.uid, pid: cred.pid }, 'control socket: client uid not allowed, connection closed');
      socket.destroy();
      return null;
    }
    return cred ?? { uid: -1, pid: -1 };
  }

  private async serve(socket: net.Socket, word: number, peer: PeerCred): Promise<void> {
    const { code, json } = decodeRequest(word);
    if (!isKnownCode(code)) {
      // conntrackd closes without a word; so do we.
      this.stats.unknownCodes++;
      this.rl.info('ctl-unknown', { code: word }, 'control socket: unknown request');
      socket.end(() => socket.destroy());
      return;
    }
    let aborted = false;
    // Progress-based write timeout: a client that stops reading leaves bytes
    // queued; if nothing drains for writeTimeoutMs the reply is abandoned.
    socket.setTimeout(this.opts.writeTimeoutMs, () => {
      if (socket.writableLength === 0 && !aborted) return;
      aborted = true;
      this.stats.writeAborts++;
      this.rl.warn('ctl-write-timeout', { pending: socket.writableLength }, 'control socket: client stopped reading, reply abandoned');
      socket.destroy();
    });
    const reply: ControlReply = {
      write: (text: string) => {
        if (aborted || socket.destroyed || text.length === 0) return;
        if (socket.writableLength > this.opts.maxPendingBytes) {
          aborted = true;
          this.stats.writeAborts++;
          this.rl.warn('ctl-write-overflow', { pending: socket.writableLength }, 'control socket: reply too large for a slow client, abandoned');
          socket.destroy();
          return;
        }
        socket.write(text);
      },
    };
    try {
      await this.opts.handler(code, reply, { json, peer });
    } catch (err) {
      this.stats.handlerErrors++;
      this.opts.log.error({ err, code }, 'control request failed');
    }
    // Full close once the reply is flushed: a client that never closes its
    // side must not keep a half-open slot forever.
    if (!socket.destroyed) socket.end(() => socket.destroy());
  }
}

function trySetUmask(mask: number): number | null {
  try {
    return process.umask(mask);
  } catch {
    return null;
  }
}

/**
 * A socket file left by a crashed daemon is removed; one that still answers
 * belongs to a live daemon and is never taken over.
 */
async function removeStaleSocket(path: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(path);
  } catch {
    return; // nothing there
  }
  if (!st.isSocket()) {
    throw new ControlError('CTSYNC_ERR_CTL_BUSY', `${path} exists and is not a socket`, { path });
  }
  const alive = await new Promise<boolean>((resolve) => {
    const c = net.connect({ path });
    const t = setTimeout(() => { c.destroy(); resolve(true); }, STALE_PROBE_TIMEOUT_MS);
    c.once('connect', () => { clearTimeout(t); c.destroy(); resolve(true); });
    c.once('error', () => { clearTimeout(t); resolve(false); });
  });
  if (alive) throw new ControlError('CTSYNC_ERR_CTL_BUSY', `another daemon is running on ${path}`, { path });
  fs.unlinkSync(path);
}

interface NativeWithSockopt {
  getsockoptFd?: (fd: number, level: number, name: number, len: number) => Buffer | Uint8Array;
}

/**
 * SO_PEERCRED through the native addon (src/netlink/native.ts). Imported
 * lazily by a computed specifier so this module builds and its tests run
 * without the addon; any failure means "no credential check".
 */
async function loadNativePeerCred(): Promise<PeerCredReader | null> {
  let native: NativeWithSockopt;
  try {
    const spec = '../netlink/native.js';
    const mod = (await import(spec)) as { loadNative?: () => NativeWithSockopt };
    if (typeof mod.loadNative !== 'function') return null;
    native = mod.loadNative();
  } catch {
    return null;
  }
  const getsockopt = native.getsockoptFd;
  if (typeof getsockopt !== 'function') return null;
  return (socket) => {
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) return null;
    const raw = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, UCRED_SIZE);
    const b = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    if (b.length < UCRED_SIZE) return null;
    // struct ucred { pid_t pid; uid_t uid; gid_t gid; } in host byte order.
    const le = os.endianness() === 'LE';
    return le ? { pid: b.readInt32LE(0), uid: b.readUInt32LE(4) } : { pid: b.readInt32BE(0), uid: b.readUInt32BE(4) };
  };
}
