// An authenticated, encrypted sync link: a Channel decorator that seals every
// datagram the sync layer sends and opens (or drops and counts) every one it
// receives. conntrackd trusts its link, so anyone who can put a datagram on it
// with the peer's source address can plant connections in the standby's cache
// (a CT_NEW with HELLO skips the sequence check) or stall replication (a HELLO
// far ahead). With a key configured, only the peer's sealed datagrams reach
// the sync layer.
//
// Wire format (all big-endian), overhead 42 bytes per datagram:
//
//   0      1       2..9           10..17           18..25    26..n-17    n-16..n-1
//   magic  key id  sender epoch   receiver epoch   counter   ciphertext  GCM tag
//   0xC1                          (0 = unknown)
//
// magic 0xC1 can never start a conntrackd datagram (byte 0 is version<<4|type,
// 0x1X), so a plaintext datagram is recognised and rejected. Bytes 0..25 are
// the AEAD associated data. The cipher is AES-256-GCM under a session key
// HKDF-SHA256(shared key, salt = sender epoch ‖ receiver epoch, 'ctsync sync v1');
// the nonce is 0x00000000 ‖ counter.
//
// Epochs: each process draws a random non-zero 64-bit epoch at start; the
// counter starts at 0 and only grows within it, so a (key, nonce) pair is
// never used twice, across restarts included. A datagram's payload is handed
// up only when its receiver epoch is this process's own epoch: that proves the
// sender has heard from this incarnation, so nothing recorded before this
// process started (from the peer or from ourselves, reflected) is accepted.
// A sliding window (1024) per peer epoch rejects replays within the session,
// and a peer epoch that has been superseded by a newer one is rejected.
//
// Session setup costs no configuration: until a node has received a datagram
// addressed to its own epoch it queues outgoing datagrams (bounded) and sends
// empty "probe" datagrams every probeMs; a node that authenticates a datagram
// from an epoch it does not yet talk to answers with a probe addressed to it.
// Two probes establish both directions.
import type * as Crypto from 'node:crypto';
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Channel, ChannelStats, LinkStatus } from './types.js';
import { loadKeyFile, type Keyring, type SyncKey } from './keyring.js';
import { chooseAead, type Aead, type AeadKey } from './aead.js';
import { loadNative } from '../netlink/native.js';
import { RateLimitedLog, silentLogger, type Logger } from '../log/logger.js';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.js';
import { rdU32BE, wrU32BE } from '../util/bytes.js';

export const SECURE_MAGIC = 0xc1;
export const SECURE_HEADER_SIZE = 26;
export const SECURE_TAG_SIZE = 16;
/** Bytes a sealed datagram adds to the plaintext one. */
export const SECURE_OVERHEAD = SECURE_HEADER_SIZE + SECURE_TAG_SIZE;
export const REPLAY_WINDOW = 1024;
const HKDF_INFO = Buffer.from('ctsync sync v1');
const MAX_SUPERSEDED = 64;
const MAX_SESSION_KEYS = 32;

// node:crypto is required by the first SecureChannel rather than imported:
// every daemon loads this module, but only one with a key file needs crypto,
// which costs ~1 MiB of RSS. Synchronous, as the constructor is.
let cryptoLib: typeof Crypto | null = null;
function nodeCrypto(): typeof Crypto {
  return (cryptoLib ??= createRequire(import.meta.url)('node:crypto') as typeof Crypto);
}

function nativeOrNull(): ReturnType<typeof loadNative> | null {
  try {
    return loadNative();
  } catch {
    return null; // no addon: Node's crypto seals
  }
}

export interface SecureOptions {
  /** Key file to load (and watch, see reloadCheckMs). Either this or `keyring`. */
  keyFile?: string;
  /** A parsed keyring (tests). */
  keyring?: Keyring;
  log?: Logger;
  clock?: Clock;
  /** Key file permission check (default true). */
  checkMode?: boolean;
  /** How often the key file is checked for changes and reloaded (ms; 0 = never; default 1000). */
  reloadCheckMs?: number;
  /** Probe interval while no session is established (ms, default 250). */
  probeMs?: number;
  /** Datagrams held while no session is established (default 4096; the oldest are dropped). */
  queueLimit?: number;
  /** This process's epoch (tests only; default random). */
  epoch?: bigint;
  /** The AES-256-GCM implementation (tests; default the addon's when it has one, else Node's). */
  aead?: Aead;
}

/** Why a received datagram was dropped; each has a counter in SecureStats. */
export type RejectReason =
  | 'plaintext' | 'malformed' | 'unknown-key' | 'bad-tag' | 'replayed' | 'stale-epoch' | 'reflected' | 'not-for-session';

export interface SecureStats {
  /** A conntrackd (unsealed) datagram arrived while a key is configured. */
  rejectedPlaintext: number;
  /** Too short, or neither plaintext nor sealed (unknown magic). */
  rejectedMalformed: number;
  rejectedUnknownKey: number;
  /** AEAD open failed: forged, tampered, or sealed with a different key of the same id. */
  rejectedBadTag: number;
  rejectedReplayed: number;
  /** From a peer epoch that a newer one has replaced (the peer restarted). */
  rejectedStaleEpoch: number;
  /** Carrying this process's own epoch as sender: our datagram sent back to us. */
  rejectedReflected: number;
  /** Authentic, but addressed to another incarnation of this node (before the session was set up). */
  rejectedNotForSession: number;
  /** Outgoing datagrams lost because no session was up and the queue was full. */
  queueDropped: number;
  sealed: number;
  opened: number;
  probesSent: number;
  probesReceived: number;
  sessionsEstablished: number;
  keyReloads: number;
  keyReloadErrors: number;
  /** Exceptions caught in the receive path (a bug or a throwing consumer); the datagram is dropped. */
  receiveErrors: number;
}

interface SessionSlot {
  key: SyncKey;
  salt: Buffer;
  k: AeadKey;
}

type MessageCb = (datagram: Buffer, from: { address: string; port: number }) => void;

export class SecureChannel implements Channel {
  readonly inner: Channel;
  readonly epoch: bigint;
  private ring: Keyring;
  private readonly keyFile: string | null;
  private readonly checkMode: boolean;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly rlog: RateLimitedLog;
  private readonly probeMs: number;
  private readonly queueLimit: number;
  private readonly reloadCheckMs: number;
  private readonly epochBytes = Buffer.alloc(8);
  private readonly nonce = Buffer.alloc(12);
  private readonly rxNonce = Buffer.alloc(12);
  private readonly crypto = nodeCrypto();
  private readonly aead: Aead;
  private cb: MessageCb | null = null;
  private counter = 0;
  /** The peer epoch proven live (it sent us a datagram addressed to our epoch). */
  private livePeer: bigint | null = null;
  /** The latest authentic peer epoch seen while no session was up: where probes go. */
  private candidate = 0n;
  private readonly superseded = new Set<bigint>();
  private readonly window = new ReplayWindow(REPLAY_WINDOW);
  private readonly sessionKeys = new Map<string, AeadKey>();
  private readonly lastKeys: [SessionSlot | null, SessionSlot | null] = [null, null];
  private queue: Buffer[] = [];
  private probeTimer: TimerHandle | null = null;
  private reloadTimer: TimerHandle | null = null;
  private lastProbeAt = -Infinity;
  private lastProbeTo = -1n;
  private fileSig = '';
  private opened = false;
  private readonly counters: SecureStats = {
    rejectedPlaintext: 0, rejectedMalformed: 0, rejectedUnknownKey: 0, rejectedBadTag: 0, rejectedReplayed: 0,
    rejectedStaleEpoch: 0, rejectedReflected: 0, rejectedNotForSession: 0, queueDropped: 0, sealed: 0, opened: 0,
    probesSent: 0, probesReceived: 0, sessionsEstablished: 0, keyReloads: 0, keyReloadErrors: 0, receiveErrors: 0,
  };

  /** Which AES-256-GCM seals this link: the addon's ('native') or Node's crypto API ('node'). */
  get aeadName(): 'native' | 'node' {
    return this.aead.name;
  }

  /** Loads the key file synchronously: a missing, malformed or group-readable file throws ConfigError here. */
  constructor(inner: Channel, opts: SecureOptions) {
    this.inner = inner;
    this.keyFile = opts.keyFile ?? null;
    this.checkMode = opts.checkMode ?? true;
    if (opts.keyring) this.ring = opts.keyring;
    else if (this.keyFile) {
      this.fileSig = fileSignature(this.keyFile);
      this.ring = loadKeyFile(this.keyFile, { checkMode: this.checkMode });
    } else throw new TypeError('SecureChannel needs keyFile or keyring');
    this.clock = opts.clock ?? systemClock;
    this.aead = opts.aead ?? chooseAead(nativeOrNull(), nodeCrypto);
    this.log = opts.log ?? silentLogger;
    this.rlog = new RateLimitedLog(this.log, 5000, () => this.clock.now());
    this.probeMs = opts.probeMs ?? 250;
    this.queueLimit = opts.queueLimit ?? 4096;
    this.reloadCheckMs = opts.reloadCheckMs ?? 1000;
    this.epoch = opts.epoch ?? randomEpoch();
    if (this.epoch === 0n) throw new RangeError('epoch 0 is reserved');
    this.epochBytes.writeBigUInt64BE(this.epoch);
    inner.onMessage((d, from) => this.receive(d, from));
  }

  get kind(): Channel['kind'] {
    return this.inner.kind;
  }

  get ifname(): string {
    return this.inner.ifname;
  }

  /** What the sync layer may send: the link's size less the seal. */
  get maxDatagram(): number {
    return Math.max(0, this.inner.maxDatagram - SECURE_OVERHEAD);
  }

  /** True once the peer has proven it talks to this incarnation. */
  get established(): boolean {
    return this.livePeer !== null;
  }

  /** Key ids currently accepted, the sending one first. */
  get keyIds(): number[] {
    return [this.ring.send.id, ...[...this.ring.byId.keys()].filter((id) => id !== this.ring.send.id)];
  }

  async open(): Promise<void> {
    await this.inner.open();
    this.opened = true;
    this.probeTimer ??= this.clock.setInterval(() => {
      if (this.livePeer === null) this.sendProbe(this.candidate);
    }, this.probeMs);
    if (this.keyFile && this.reloadCheckMs > 0) this.reloadTimer ??= this.clock.setInterval(() => this.checkKeyFile(), this.reloadCheckMs);
    this.sendProbe(this.candidate);
  }

  async close(): Promise<void> {
    this.opened = false;
    this.probeTimer?.cancel();
    this.reloadTimer?.cancel();
    this.probeTimer = this.reloadTimer = null;
    this.queue = [];
    await this.inner.close();
  }

  /** Seals and sends; before a session is up the datagram is queued (a copy) and sent once it is. Never throws. */
  send(datagram: Buffer): void {
    if (this.livePeer === null) {
      if (this.queue.length >= this.queueLimit) {
        this.queue.shift();
        this.counters.queueDropped++;
      }
      this.queue.push(Buffer.from(datagram));
      return;
    }
    this.inner.send(this.seal(datagram, this.livePeer));
  }

  onMessage(cb: MessageCb): void {
    this.cb = cb;
  }

  /** The link's counters plus the secure layer's. */
  stats(): ChannelStats & SecureStats {
    return { ...this.inner.stats(), ...this.counters };
  }

  secureStats(): SecureStats {
    return { ...this.counters };
  }

  status(): LinkStatus {
    return this.inner.status();
  }

  /**
   * Re-reads the key file. On error the old keys stay in use and the error
   * (a ConfigError naming file:line) is thrown. Returns the key ids, sending key first.
   */
  reloadKeys(): number[] {
    if (!this.keyFile) return this.keyIds;
    try {
      this.fileSig = fileSignature(this.keyFile);
      const ring = loadKeyFile(this.keyFile, { checkMode: this.checkMode });
      this.setKeyring(ring);
    } catch (e) {
      this.counters.keyReloadErrors++;
      throw e;
    }
    this.log.info({ keyFile: this.keyFile, keyIds: this.keyIds }, 'sync link keys reloaded');
    return this.keyIds;
  }

  /** The link underneath reloads its own files (TLS); the keys have reloadKeys. */
  reloadFiles(): void {
    this.inner.reloadFiles?.();
  }

  /** Replaces the keys in use (reloadKeys does this from the file). */
  setKeyring(ring: Keyring): void {
    this.ring = ring;
    this.sessionKeys.clear();
    this.lastKeys[0] = this.lastKeys[1] = null;
    this.counters.keyReloads++;
  }

  // ---- internals -----------------------------------------------------------

  private checkKeyFile(): void {
    if (!this.keyFile) return;
    const sig = fileSignature(this.keyFile);
    if (sig === this.fileSig) return;
    try {
      this.reloadKeys();
    } catch (e) {
      this.rlog.error('key-reload', { keyFile: this.keyFile, err: (e as Error).message }, 'sync link key file reload failed; old keys kept');
    }
  }

  private seal(plain: Buffer, peer: bigint): Buffer {
    const key = this.ring.send;
    const out = Buffer.allocUnsafe(SECURE_HEADER_SIZE + plain.length + SECURE_TAG_SIZE);
    out[0] = SECURE_MAGIC;
    out[1] = key.id;
    this.epochBytes.copy(out, 2);
    out.writeBigUInt64BE(peer, 10);
    const ctr = this.counter++;
    wrU32BE(out, 18, Math.floor(ctr / 0x1_0000_0000));
    wrU32BE(out, 22, ctr >>> 0);
    out.copy(this.nonce, 4, 18, 26);
    plain.copy(out, SECURE_HEADER_SIZE);
    this.aead.seal(this.sessionKey(key, out, 0), out, SECURE_HEADER_SIZE, plain.length, this.nonce);
    this.counters.sealed++;
    return out;
  }

  /**
   * HKDF of the shared key over both epochs in the header; cached per (key id,
   * epochs), with the last one used per direction (slot) checked first.
   */
  private sessionKey(key: SyncKey, header: Buffer, slot: 0 | 1): AeadKey {
    const last = this.lastKeys[slot];
    if (last && last.key === key && header.compare(last.salt, 0, 16, 2, 18) === 0) return last.k;
    const salt = header.subarray(2, 18);
    const id = `${key.id}:${salt.toString('hex')}`;
    let k = this.sessionKeys.get(id);
    if (!k) {
      if (this.sessionKeys.size >= MAX_SESSION_KEYS) this.sessionKeys.clear();
      k = this.aead.key(Buffer.from(this.crypto.hkdfSync('sha256', key.key, salt, HKDF_INFO, 32)));
      this.sessionKeys.set(id, k);
    }
    this.lastKeys[slot] = { key, salt: Buffer.from(salt), k };
    return k;
  }

  private sendProbe(to: bigint): void {
    if (!this.opened) return;
    this.lastProbeAt = this.clock.now();
    this.lastProbeTo = to;
    this.counters.probesSent++;
    this.inner.send(this.seal(Buffer.alloc(0), to));
  }

  private reject(reason: RejectReason, from: { address: string }, extra: Record<string, unknown> = {}): void {
    switch (reason) {
      case 'plaintext': this.counters.rejectedPlaintext++; break;
      case 'malformed': this.counters.rejectedMalformed++; break;
      case 'unknown-key': this.counters.rejectedUnknownKey++; break;
      case 'bad-tag': this.counters.rejectedBadTag++; break;
      case 'replayed': this.counters.rejectedReplayed++; break;
      case 'stale-epoch': this.counters.rejectedStaleEpoch++; break;
      case 'reflected': this.counters.rejectedReflected++; break;
      case 'not-for-session': this.counters.rejectedNotForSession++; break;
    }
    // not-for-session is part of normal session setup after a restart: not worth a warning.
    if (reason === 'not-for-session') return;
    this.rlog.warn(`secure-${reason}`, { ifname: this.inner.ifname, peer: from.address, reason, ...extra },
      'dropped sync datagram that failed authentication');
  }

  private receive(d: Buffer, from: { address: string; port: number }): void {
    try {
      this.open_(d, from);
    } catch (e) {
      // Nothing below should throw (a consumer's exception included); if it does, the datagram is dropped, never the link.
      this.counters.receiveErrors++;
      this.rlog.error('secure-receive', { ifname: this.inner.ifname, peer: from.address, err: (e as Error).message },
        'sync datagram handling failed');
    }
  }

  private open_(d: Buffer, from: { address: string; port: number }): void {
    if (d.length > 0 && d[0]! >> 4 === 1) return this.reject('plaintext', from);
    if (d.length < SECURE_OVERHEAD || d[0] !== SECURE_MAGIC) return this.reject('malformed', from, { bytes: d.length });
    const key = this.ring.byId.get(d[1]!);
    if (!key) return this.reject('unknown-key', from, { keyId: d[1] });
    const sender = d.readBigUInt64BE(2);
    const receiver = d.readBigUInt64BE(10);
    if (sender === this.epoch) return this.reject('reflected', from);
    if (sender === 0n) return this.reject('malformed', from);
    if (this.superseded.has(sender)) return this.reject('stale-epoch', from);
    const ctr = rdU32BE(d, 18) * 0x1_0000_0000 + rdU32BE(d, 22);
    const fresh = receiver === this.epoch;
    // The tag is checked before the replay window, so a forgery that reuses a
    // seen header counts as bad-tag, and only authentic repeats as replayed.
    const nonce = this.rxNonce;
    d.copy(nonce, 4, 18, 26);
    const plain = this.aead.open(this.sessionKey(key, d, 1), d, SECURE_HEADER_SIZE, nonce);
    if (plain === null) return this.reject('bad-tag', from, { keyId: key.id });
    if (!fresh) {
      // Authentic but addressed to an earlier incarnation of this node (or to
      // nobody yet): its payload may be a recording, so it is not delivered.
      // Answer with a probe so the sender learns our epoch.
      this.reject('not-for-session', from);
      if (sender !== this.livePeer) {
        if (this.livePeer === null) this.candidate = sender;
        // At most one answer per 50 ms to the same epoch: replayed recordings cannot make us chatter.
        if (sender !== this.lastProbeTo || this.clock.now() - this.lastProbeAt >= 50) this.sendProbe(sender);
      }
      return;
    }
    if (sender !== this.livePeer) this.establish(sender, from);
    if (!this.window.accept(ctr)) return this.reject('replayed', from, { counter: ctr });
    this.counters.opened++;
    if (plain.length === 0) {
      this.counters.probesReceived++;
      return;
    }
    this.cb?.(plain, from);
  }

  /** A datagram addressed to our epoch from a new peer epoch: the peer (re)started and knows us. */
  private establish(sender: bigint, from: { address: string }): void {
    if (this.livePeer !== null) {
      this.superseded.add(this.livePeer);
      if (this.superseded.size > MAX_SUPERSEDED) this.superseded.delete(this.superseded.values().next().value!);
    }
    const restarted = this.livePeer !== null;
    this.livePeer = sender;
    this.candidate = sender;
    this.window.reset();
    this.counters.sessionsEstablished++;
    this.log.info({ ifname: this.inner.ifname, peer: from.address, restarted }, 'sync link session established');
    // Let the peer establish its side at once, then release what was held.
    this.sendProbe(sender);
    const q = this.queue;
    this.queue = [];
    for (const d of q) this.inner.send(this.seal(d, sender));
  }
}

/**
 * Anti-replay bitmap over the last `size` counters (RFC 6479 style): a counter
 * above the highest seen slides the window; one below it is accepted once if
 * still inside the window.
 */
export class ReplayWindow {
  private readonly bits: Uint32Array;
  private top = -1;

  constructor(private readonly size: number) {
    if (size % 32 !== 0 || size <= 0) throw new RangeError('window size must be a positive multiple of 32');
    this.bits = new Uint32Array(size / 32);
  }

  reset(): void {
    this.top = -1;
    this.bits.fill(0);
  }

  /** Accepts `n` once; false for a repeat or a counter that fell out of the window. */
  accept(n: number): boolean {
    if (n > this.top) {
      if (n - this.top >= this.size || this.top < 0) this.bits.fill(0);
      else for (let k = this.top + 1; k <= n; k++) this.clear(k % this.size);
      this.top = n;
    } else if (this.top - n >= this.size) return false;
    const i = n % this.size;
    const mask = 1 << (i & 31);
    if ((this.bits[i >>> 5]! & mask) !== 0) return false;
    this.bits[i >>> 5]! |= mask;
    return true;
  }

  private clear(i: number): void {
    this.bits[i >>> 5]! &= ~(1 << (i & 31));
  }
}

function randomEpoch(): bigint {
  for (;;) {
    const e = nodeCrypto().randomBytes(8).readBigUInt64BE();
    if (e !== 0n) return e;
  }
}

function fileSignature(path: string): string {
  try {
    const st = statSync(path);
    return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}:${st.mode}`;
  } catch {
    return 'missing';
  }
}
