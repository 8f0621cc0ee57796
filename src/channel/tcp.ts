// TCP transport (§1.1, §1.7 end note): each node listens on self:Port and
// accepts one peer, and connects to destination:Port to send, reconnecting at
// most once a second. A stream has no datagram boundaries, so the receive side
// cuts it back into whole messages by each message's 16-bit length (offset 2
// of the 8-byte header). Datagrams that cannot be written (no connection, or
// the socket is backed up) wait in an error queue of ErrorQueueLength entries
// and go out when the connection returns; beyond that they are dropped and
// counted.
//
// With `tls` in the link config (Ctsync { TLS { ... } }) both directions run
// mutual TLS 1.3 (see tls.ts): the listener stays a plain TCP server (so the
// source filter, SO_BINDTODEVICE and the receive buffer apply before any TLS
// work) and hands each accepted socket to a non-listening tls.Server; the
// client side is a tls.connect. A connection counts as up only once its
// handshake and the peer identity check have passed. Everything else (one
// peer, reconnect rate, error queue, reassembly, maxDatagram) is unchanged.
// node:tls and tls.ts (node:crypto) are imported by open() of a TLS link
// only: loaded up front they cost every daemon ~2 MiB of RSS.
import net from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { Channel, LinkStatus } from './types.js';
import type { ChannelDeps, LinkConfig } from './index.js';
import { sysfsLinks, type LinkReader } from './link.js';
import { bindToDevice, loadSockoptBinding, setIntOpt, socketFd, SO_RCVBUFFORCE, SO_SNDBUFFORCE, type SockoptBinding } from './sockopt.js';
import { isV6Config, newCounters, normalizeAddress, scoped, sourceFilter, type ChannelCounters } from './udp-util.js';
import { ChannelError } from '../errors.js';
import { RateLimitedLog, silentLogger } from '../log/logger.js';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.js';
import type { TlsFiles, TlsMaterial } from './tls.js';

const HEADER = 8;
const MAX_MESSAGE = 0xffff;
/** conntrackd's TCP header allowance (IPv4 20 + TCP 20); IPv6 uses its real 40-byte header. */
export const TCP4_OVERHEAD = 40;
export const TCP6_OVERHEAD = 60;
export const RECONNECT_MS = 1000;
export const DEFAULT_ERROR_QUEUE = 128;

/**
 * Cuts a byte stream into whole messages. A run of complete messages inside
 * one chunk is delivered as one datagram, in place; a message that straddles
 * chunks is gathered in a fixed 64 KiB buffer (allocated once) and delivered
 * on its own. Delivered buffers are valid only during the callback.
 */
export class StreamReassembler {
  private readonly pending = Buffer.allocUnsafe(MAX_MESSAGE);
  private have = 0;

  constructor(private readonly deliver: (datagram: Buffer) => void, private readonly corrupt: (len: number) => void) {}

  /** Bytes held back waiting for the rest of a message. */
  get buffered(): number {
    return this.have;
  }

  reset(): void {
    this.have = 0;
  }

  push(chunk: Buffer): void {
    let off = 0;
    if (this.have > 0) {
      if (this.have < HEADER) {
        const n = Math.min(HEADER - this.have, chunk.length);
        chunk.copy(this.pending, this.have, 0, n);
        this.have += n;
        off = n;
        if (this.have < HEADER) return;
      }
      const len = this.pending.readUInt16BE(2);
      if (len < HEADER) return this.fail(len);
      const n = Math.min(len - this.have, chunk.length - off);
      chunk.copy(this.pending, this.have, off, off + n);
      this.have += n;
      off += n;
      if (this.have < len) return;
      this.have = 0;
      this.deliver(this.pending.subarray(0, len));
    }
    const start = off;
    while (chunk.length - off >= HEADER) {
      const len = chunk.readUInt16BE(off + 2);
      if (len < HEADER) {
        if (off > start) this.deliver(chunk.subarray(start, off));
        return this.fail(len);
      }
      if (len > chunk.length - off) break;
      off += len;
    }
    if (off > start) this.deliver(chunk.subarray(start, off));
    if (off < chunk.length) {
      chunk.copy(this.pending, 0, off);
      this.have = chunk.length - off;
    }
  }

  private fail(len: number): void {
    // A length below the header size means the stream lost sync; nothing after it can be trusted.
    this.have = 0;
    this.corrupt(len);
  }
}

export interface TcpCounters extends ChannelCounters {
  /** Datagrams waiting in the error queue. */
  errorQueue: number;
  connected: boolean;
  peerConnected: boolean;
  /** TLS links only: handshakes that failed, either direction (plaintext peers, timeouts, rejected certificates). */
  tlsHandshakeFailures?: number;
  /** TLS links only: the subset where the peer's certificate was missing, untrusted, expired or named another address. */
  tlsRejectedPeers?: number;
}

/** A TCP link's config: `tls` turns on mutual TLS (the files of Ctsync { TLS { ... } }). */
export type TcpLinkConfig = LinkConfig & { tls?: TlsFiles | null };

type MessageCb = (datagram: Buffer, from: { address: string; port: number }) => void;

type TlsNode = typeof import('node:tls');
type TlsLink = typeof import('./tls.js');

/** A TLS link's run-time pieces: the modules open() imported, the loaded files, the handshake server. */
interface TlsState {
  node: TlsNode;
  link: TlsLink;
  mat: TlsMaterial;
  server: TlsServer;
}

export class TcpChannel implements Channel {
  readonly kind = 'TCP' as const;
  readonly ifname: string;
  maxDatagram = 0;
  private readonly counters = newCounters();
  private readonly v6: boolean;
  private readonly dest: string;
  private readonly allow: Set<string> | null;
  private readonly links: LinkReader;
  private readonly clock: Clock;
  private readonly rlog: RateLimitedLog;
  private readonly errq: Buffer[] = [];
  private readonly errqMax: number;
  private so: SockoptBinding | null = null;
  private server: net.Server | null = null;
  private peer: net.Socket | null = null;
  private peerFrom = { address: '', port: 0 };
  private client: net.Socket | null = null;
  private connected = false;
  private lastAttempt = -Infinity;
  private retry: TimerHandle | null = null;
  private closing = false;
  private cb: MessageCb | null = null;
  private readonly reasm = new StreamReassembler((d) => this.deliver(d), (len) => this.corrupt(len));
  // TLS state (null / unused on a plain link).
  private tls: TlsState | null = null;
  private readonly handshaking = new Set<net.Socket>();
  private readonly tlsCounters = { tlsHandshakeFailures: 0, tlsRejectedPeers: 0 };
  /** The identity the peer's certificate must carry: the configured destination. */
  private readonly peerIdentity: string;

  constructor(private readonly cfg: TcpLinkConfig, private readonly deps: ChannelDeps = {}) {
    this.ifname = cfg.interface;
    if (!cfg.destination) throw new ChannelError('TCP link: destination address is mandatory', { ifname: cfg.interface });
    this.v6 = isV6Config(cfg);
    this.dest = scoped(cfg.destination, cfg.interface);
    this.peerIdentity = cfg.destination;
    this.allow = sourceFilter(cfg.acceptFrom, cfg.destination);
    this.links = deps.links ?? sysfsLinks;
    this.clock = deps.clock ?? systemClock;
    this.rlog = new RateLimitedLog(deps.log ?? silentLogger);
    this.errqMax = cfg.errorQueueLength ?? DEFAULT_ERROR_QUEUE;
  }

  async open(): Promise<void> {
    if (this.server) return;
    this.closing = false;
    const { mtu } = this.links.info(this.ifname);
    this.maxDatagram = mtu - (this.v6 ? TCP6_OVERHEAD : TCP4_OVERHEAD) - 1;
    this.so = await (this.deps.sockopt ?? loadSockoptBinding)();
    // Files are (re)read at every open: a close/open picks up renewed certificates. Errors name the file.
    if (this.cfg.tls) {
      const [node, link] = await Promise.all([import('node:tls'), import('./tls.js')]);
      this.setupTls(node, link, link.loadTls(this.cfg.tls));
    }
    const server = net.createServer((s) => this.accept(s));
    const host = scoped(this.v6 ? this.cfg.ipv6Address ?? '::' : this.cfg.ipv4Address ?? '0.0.0.0', this.ifname);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port: this.cfg.port, ipv6Only: this.v6 }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      bindToDevice(this.so, socketFd(server), this.ifname);
      // Accepted sockets inherit the listener's receive buffer.
      if (this.cfg.rcvBuf) setIntOpt(this.so, socketFd(server), SO_RCVBUFFORCE, this.cfg.rcvBuf, 'SO_RCVBUFFORCE');
    } catch (e) {
      server.close();
      throw e instanceof ChannelError ? e : new ChannelError(`TCP link ${this.ifname}: ${(e as Error).message}`,
        { ifname: this.ifname, port: this.cfg.port }, { cause: e });
    }
    server.on('error', (err) => this.recvError(err));
    this.server = server;
    this.connect();
  }

  /**
   * New certificates, key and CA for every handshake from now on; the
   * connections up keep theirs (a renewed certificate is no reason to drop
   * the sync link). loadTls names the file that failed, and the old material
   * stays when it throws.
   */
  reloadFiles(): void {
    const t = this.tls; // set by open() of a TLS link only
    if (t === null || !this.server || !this.cfg.tls) return;
    this.setupTls(t.node, t.link, t.link.loadTls(this.cfg.tls));
    this.rlog.info('tls-reload', { ifname: this.ifname }, 'TLS certificates reloaded');
  }

  send(datagram: Buffer): void {
    const c = this.client;
    if (c && this.connected && !c.writableNeedDrain && this.errq.length === 0) {
      this.write(c, datagram);
      return;
    }
    this.enqueue(datagram);
  }

  onMessage(cb: MessageCb): void {
    this.cb = cb;
  }

  async close(): Promise<void> {
    this.closing = true;
    this.retry?.cancel();
    this.retry = null;
    this.client?.destroy();
    this.peer?.destroy();
    this.client = this.peer = null;
    this.connected = false;
    for (const s of this.handshaking) s.destroy();
    this.handshaking.clear();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  stats(): TcpCounters {
    const base = { ...this.counters, errorQueue: this.errq.length, connected: this.connected, peerConnected: this.peer !== null };
    return this.cfg.tls ? { ...base, ...this.tlsCounters } : base;
  }

  status(): LinkStatus {
    return this.links.status(this.ifname);
  }

  private write(c: net.Socket, d: Buffer): void {
    // A stream holds on to what it could not write yet, possibly long after
    // send() returns, while the caller may reuse its buffer: hand it a copy
    // (a slice of Node's buffer pool for datagram-sized data).
    c.write(Buffer.from(d));
    this.counters.bytesSent += d.length;
    this.counters.packetsSent++;
  }

  private enqueue(d: Buffer): void {
    if (this.errq.length >= this.errqMax) {
      this.counters.errorsSent++;
      return;
    }
    // Copied for the same reason as in write().
    this.errq.push(Buffer.from(d));
  }

  private flushQueue(): void {
    const c = this.client;
    while (c && this.connected && !c.writableNeedDrain && this.errq.length > 0) {
      const d = this.errq.shift()!;
      c.write(d);
      this.counters.bytesSent += d.length;
      this.counters.packetsSent++;
    }
  }

  private connect(): void {
    if (this.closing || this.client) return;
    this.lastAttempt = this.clock.now();
    const local = this.v6 ? this.cfg.ipv6Address : this.cfg.ipv4Address;
    const opts = { host: this.dest, port: this.cfg.port, ...(local ? { localAddress: scoped(local, this.ifname) } : {}) };
    if (this.tls) return this.connectTls(opts, this.tls);
    const c = net.connect(opts);
    this.client = c;
    c.on('connect', () => {
      this.connected = true;
      this.socketUp(c);
      this.flushQueue();
    });
    this.clientEvents(c);
  }

  /** Client side over TLS: the TCP connection is tuned at 'connect', used from 'secureConnect' on. */
  private connectTls(opts: net.TcpNetConnectOpts, { node, link, mat }: TlsState): void {
    let tcpUp = false;
    let secure = false;
    const c = node.connect({
      ...opts,
      secureContext: mat.context,
      minVersion: 'TLSv1.3',
      rejectUnauthorized: true,
      checkServerIdentity: (_host, cert) => link.checkPeerIdentity(this.peerIdentity, cert),
    });
    this.client = c;
    c.on('connect', () => {
      tcpUp = true;
      this.socketUp(c);
    });
    c.on('secureConnect', () => {
      secure = true;
      this.connected = true;
      this.flushQueue();
    });
    c.on('error', (err: Error & { code?: string }) => {
      // A failure during the handshake, or the server's alert right after it (TLS 1.3: the client
      // finishes first, the server verifies our certificate afterwards).
      if ((tcpUp && !secure) || (secure && /^ERR_SSL_.*ALERT/.test(err.code ?? ''))) {
        this.tlsFailed('tls-connect', this.cfg.destination ?? '', link.classifyTlsError(err, secure ? null : c.authorizationError),
          secure ? 'TLS peer refused our certificate' : 'TLS handshake with the sync peer failed');
      }
    });
    this.clientEvents(c);
  }

  /** Socket options once the TCP connection is up (both modes). */
  private socketUp(c: net.Socket): void {
    c.setKeepAlive(true);
    c.setNoDelay(true);
    try {
      if (this.cfg.sndBuf && this.so) setIntOpt(this.so, socketFd(c), SO_SNDBUFFORCE, this.cfg.sndBuf, 'SO_SNDBUFFORCE');
    } catch (e) {
      this.rlog.warn('tcp-sndbuf', { ifname: this.ifname, err: (e as Error).message }, 'cannot set send buffer');
    }
  }

  private clientEvents(c: net.Socket): void {
    c.on('drain', () => this.flushQueue());
    // The peer never writes on this connection; reading keeps the socket from stalling if it did.
    c.on('data', () => {});
    c.on('error', (err) => {
      if (this.connected) this.counters.errorsSent++;
      this.rlog.warn('tcp-connect', { ifname: this.ifname, err: err.message }, 'sync link connection error');
    });
    c.on('close', () => {
      if (this.client !== c) return;
      this.client = null;
      this.connected = false;
      this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    if (this.closing || this.retry) return;
    // At most one attempt per RECONNECT_MS, as conntrackd.
    const wait = Math.max(0, this.lastAttempt + RECONNECT_MS - this.clock.now());
    this.retry = this.clock.setTimeout(() => {
      this.retry = null;
      this.connect();
    }, wait);
  }

  private accept(s: net.Socket): void {
    const addr = s.remoteAddress ?? '';
    if (this.closing || (this.allow && !this.allow.has(normalizeAddress(addr)))) {
      this.counters.rejectedSource++;
      this.rlog.warn('tcp-source', { ifname: this.ifname, from: addr }, 'refused sync connection from unexpected source');
      s.destroy();
      return;
    }
    if (this.tls) return this.handshake(s, addr, this.tls);
    this.adopt(s, addr, s.remotePort ?? 0);
  }

  private setupTls(node: TlsNode, link: TlsLink, mat: TlsMaterial): void {
    // Never listens: accept() hands it the sockets that passed the source filter.
    const ts = node.createServer({
      ...mat.options,
      requestCert: true,
      rejectUnauthorized: true,
      handshakeTimeout: link.TLS_HANDSHAKE_TIMEOUT_MS,
    }, (t) => this.secured(t, link));
    ts.on('tlsClientError', (err: Error & { code?: string }, t: TLSSocket) => {
      // Node destroys a socket whose certificate failed verification before telling us, so the
      // address comes from the TCP socket underneath (cached by accept()).
      const addr = t.remoteAddress ?? (t as unknown as { _parent?: net.Socket })._parent?.remoteAddress ?? 'unknown';
      this.tlsFailed('tls-accept', addr, link.classifyTlsError(err, t.authorizationError), 'refused sync connection: TLS handshake failed');
      t.destroy();
    });
    this.tls = { node, link, mat, server: ts };
  }

  /** Server side, TLS: the accepted TCP socket goes through the handshake before it may become the peer. */
  private handshake(s: net.Socket, addr: string, { server, link }: TlsState): void {
    if (this.handshaking.size >= link.TLS_MAX_PENDING) {
      this.tlsFailed('tls-accept', addr, { reason: `more than ${link.TLS_MAX_PENDING} handshakes in progress`, rejectedPeer: false },
        'refused sync connection: TLS handshake failed');
      s.destroy();
      return;
    }
    this.handshaking.add(s);
    s.once('close', () => this.handshaking.delete(s));
    s.setKeepAlive(true);
    server.emit('connection', s);
  }

  private secured(t: TLSSocket, link: TlsLink): void {
    const raw = (t as unknown as { _parent?: net.Socket })._parent;
    const addr = t.remoteAddress ?? raw?.remoteAddress ?? 'unknown';
    if (raw) this.handshaking.delete(raw);
    // The chain was verified by TLS (rejectUnauthorized); the certificate must also name our peer.
    const idErr = t.authorized ? link.checkPeerIdentity(this.peerIdentity, t.getPeerCertificate()) : new Error(String(t.authorizationError));
    if (idErr || this.closing) {
      if (idErr) this.tlsFailed('tls-accept', addr, { reason: idErr.message, rejectedPeer: true }, 'refused sync connection: TLS peer identity');
      t.destroy();
      return;
    }
    this.adopt(t, addr, t.remotePort ?? raw?.remotePort ?? 0);
  }

  private tlsFailed(key: string, peer: string, f: { reason: string; rejectedPeer: boolean }, msg: string): void {
    this.tlsCounters.tlsHandshakeFailures++;
    if (f.rejectedPeer) this.tlsCounters.tlsRejectedPeers++;
    this.rlog.warn(key, { ifname: this.ifname, peer, reason: f.reason }, msg);
  }

  /** The connection becomes the one peer we receive from. */
  private adopt(s: net.Socket, addr: string, port: number): void {
    // One peer: a new connection (the peer restarted) replaces the old one.
    if (this.peer) this.peer.destroy();
    this.peer = s;
    this.peerFrom = { address: addr, port };
    this.reasm.reset();
    s.setKeepAlive(true);
    s.on('data', (chunk: Buffer) => {
      if (this.peer !== s) return;
      this.counters.bytesRecv += chunk.length;
      this.reasm.push(chunk);
    });
    s.on('error', (err) => this.recvError(err));
    s.on('close', () => {
      if (this.peer !== s) return;
      this.peer = null;
      this.reasm.reset();
    });
    // Our peer is back: try our own direction now rather than at the next retry tick.
    if (!this.client && !this.retry) this.scheduleReconnect();
  }

  private deliver(d: Buffer): void {
    this.counters.packetsRecv++;
    try {
      this.cb?.(d, this.peerFrom);
    } catch (e) {
      this.recvError(e as Error);
    }
  }

  private corrupt(len: number): void {
    this.recvError(new Error(`message length ${len} below header size: stream out of sync, dropping connection`));
    this.peer?.destroy();
    this.peer = null;
  }

  private recvError(err: Error): void {
    this.counters.errorsRecv++;
    this.rlog.warn('tcp-recv', { ifname: this.ifname, err: err.message }, 'sync link receive error');
  }
}
