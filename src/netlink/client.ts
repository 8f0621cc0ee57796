// The ctnetlink request engine: one request socket per netns for dumps, gets
// and batched writes. The kernel handles every message of a send inside the
// sendmsg call (spec pitfall 6), so a batch is one send plus one drain, and
// per-message errors are matched back to the input by sequence number.
import { setImmediate as tick } from 'node:timers/promises';
import { NetlinkError } from '../errors.js';
import type { Conntrack, Expectation, Tuple } from '../model/conntrack.js';
import { readConntrack, writeConntrackAttrs, type CtWriteMode } from './ct-codec.js';
import { writeCreate } from './ct-write-fast.js';
import { readExpectation, writeExpectationAttrs } from './exp-codec.js';
import { beginMessage, endMessage, MessageReader, setMessageFlags } from './message.js';
import type { NativeBinding } from './native.js';
import {
  CT_DELETE, CT_GET, CT_NEW, ERRNO, EXP_DELETE, EXP_GET, EXP_NEW, NETLINK_CAP_ACK, NETLINK_EXT_ACK, NLMSG_DONE,
  NFNETLINK_V0, NFNETLINK_V1, NLMSG_ERROR, NLMSG_MIN_TYPE, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_EXCL, NLM_F_REQUEST,
  SOL_NETLINK, SOL_SOCKET, SO_RCVBUF, SO_RCVBUFFORCE,
} from './nl-constants.js';
import { NlWriter } from './nlattr.js';
import { NlSocket } from './socket.js';

export interface CtClientOptions {
  /** nsfs path (/var/run/netns/NAME); default: the process's netns. */
  netns?: string;
  binding?: NativeBinding;
  /** Messages per send (default 256: the measured sweet spot). */
  batchSize?: number;
  /** Receive buffer for ACKs, errors and dump chunks (default 8 MiB, SO_RCVBUFFORCE). */
  rcvbuf?: number;
  /** Dump restarts after NLM_F_DUMP_INTR before giving up (default 5). */
  dumpRetries?: number;
  /** Bound on waiting for a reply that should already be queued (default 5000 ms). */
  replyTimeoutMs?: number;
}

export interface BatchFailure {
  /** Index into the input array. */
  index: number;
  /** Positive errno (EEXIST 17, ENOENT 2, ...); EINVAL also for entries the codec refused to encode. */
  errno: number;
  /** Kernel extended-ACK text or the encode error, when known. */
  message?: string;
}

export interface BatchResult {
  ok: number;
  failed: BatchFailure[];
}

export interface DumpResult {
  count: number;
  /** The kernel flagged NLM_F_DUMP_INTR: the table changed while dumping. */
  interrupted: boolean;
}

export interface CtClientStats {
  requests: number;
  messagesSent: number;
  decodeErrors: number;
  dumpRestarts: number;
}

/** Writes the attributes of one item; throws to reject the item. */
type Encoder<T> = (w: NlWriter, item: T) => void;

/** Messages per request (sendmsg) unless `batchSize` says otherwise. */
export const DEFAULT_BATCH_SIZE = 256;

const DUMP_CHUNK = 4 * 1024 * 1024;
/** Bytes per send: well under the default netlink sndbuf (~208 KiB). */
const MAX_BATCH_BYTES = 128 * 1024;
/** Yield to the event loop every N batches so a 100k commit does not starve timers. */
const YIELD_EVERY = 32;

export class CtClient {
  readonly stats: CtClientStats = { requests: 0, messagesSent: 0, decodeErrors: 0, dumpRestarts: 0 };
  private readonly sock: NlSocket;
  private readonly w = new NlWriter(256 * 1024);
  private readonly reader = new MessageReader();
  private readonly batchSize: number;
  private readonly dumpRetries: number;
  private readonly replyTimeoutMs: number;
  private seq: number;
  private chain: Promise<unknown> = Promise.resolve();
  /** Position in the current batch → input index. */
  private posToIndex: Int32Array;

  constructor(opts: CtClientOptions = {}) {
    this.batchSize = Math.max(1, opts.batchSize ?? DEFAULT_BATCH_SIZE);
    this.dumpRetries = opts.dumpRetries ?? 5;
    this.replyTimeoutMs = opts.replyTimeoutMs ?? 5000;
    this.posToIndex = new Int32Array(this.batchSize);
    // Seeded from the clock like libmnl, so replies to a previous process's requests never match.
    this.seq = (Math.floor(Date.now() / 1000) & 0x7fffffff) || 1;
    this.sock = new NlSocket({ netns: opts.netns, binding: opts.binding });
    try {
      this.sock.bind(0);
      // Errors need not echo our request back: keeps a failing 256-message batch's replies small.
      this.sock.setInt(SOL_NETLINK, NETLINK_CAP_ACK, 1);
      try {
        this.sock.setInt(SOL_NETLINK, NETLINK_EXT_ACK, 1);
      } catch {
        // Old kernels: errno without a message is still enough.
      }
      const rcvbuf = opts.rcvbuf ?? 8 * 1024 * 1024;
      try {
        this.sock.setInt(SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf);
      } catch {
        this.sock.setInt(SOL_SOCKET, SO_RCVBUF, rcvbuf); // without CAP_NET_ADMIN: capped by rmem_max
      }
    } catch (e) {
      this.sock.close();
      throw e;
    }
  }

  get portid(): number {
    return this.sock.portid;
  }

  close(): void {
    this.sock.close();
  }

  /* ---------------- conntrack ---------------- */

  /** All entries of the table (family 0 = IPv4 and IPv6); restarts when the kernel flags the dump as interrupted. */
  dump(family = 0): Promise<Conntrack[]> {
    return this.exclusive(async () => {
      for (let attempt = 0; ; attempt++) {
        const out: Conntrack[] = [];
        const r = await this.runDump(CT_GET, family, (buf, s, e) => out.push(readConntrack(buf, s, e)));
        if (!r.interrupted) return out;
        if (attempt >= this.dumpRetries) {
          throw new NetlinkError('CTSYNC_ERR_NETLINK_REQUEST', `conntrack dump interrupted ${attempt + 1} times`, ERRNO.EINTR,
            { attempts: attempt + 1 });
        }
        this.stats.dumpRestarts++;
      }
    });
  }

  /**
   * Streams the table to cb without holding it in memory. Not restarted on
   * NLM_F_DUMP_INTR (cb has already seen entries): the result says so.
   */
  dumpEach(cb: (ct: Conntrack) => void, family = 0): Promise<DumpResult> {
    return this.exclusive(() => this.runDump(CT_GET, family, (buf, s, e) => cb(readConntrack(buf, s, e))));
  }

  /** The entry with this original (or reply) tuple, or null. */
  get(tuple: Tuple, zone?: number): Promise<Conntrack | null> {
    return this.exclusive(async () => {
      let found: Conntrack | null = null;
      const ct: Conntrack = zone === undefined ? { orig: tuple } : { orig: tuple, zone };
      const errno = await this.transact(CT_GET, NLM_F_REQUEST | NLM_F_ACK, tuple.l3,
        (w) => writeConntrackAttrs(w, ct, 'get'),
        (buf, s, e, type) => {
          if (type === CT_NEW) found = readConntrack(buf, s, e);
        });
      if (errno === ERRNO.ENOENT) return null;
      if (errno !== 0) throw requestError('get', errno);
      return found;
    });
  }

  /** Create only: entries that exist fail with EEXIST. */
  create(cts: readonly Conntrack[]): Promise<BatchResult> {
    return this.exclusive(() => this.ctBatch(cts, CT_NEW, NLM_F_CREATE | NLM_F_EXCL, 'create'));
  }

  /** Update only: entries that do not exist fail with ENOENT. */
  update(cts: readonly Conntrack[]): Promise<BatchResult> {
    return this.exclusive(() => this.ctBatch(cts, CT_NEW, 0, 'update'));
  }

  remove(cts: readonly Conntrack[]): Promise<BatchResult> {
    return this.exclusive(() => this.ctBatch(cts, CT_DELETE, 0, 'delete'));
  }

  /**
   * conntrackd's commit: create, and where the entry already exists delete it
   * and create it once more, so the committed state wins.
   */
  createOrReplace(cts: readonly Conntrack[]): Promise<BatchResult> {
    return this.createOrReplaceEncoded(cts, ctFamily, writeCreate, asIs);
  }

  /**
   * As createOrReplace, for items the caller writes itself: `encode` appends
   * an item's create attributes (a commit writing straight from the external
   * cache's columns). The rare clash (EEXIST) goes the createOrReplace way,
   * with the item as a Conntrack (`toConntrack`; null: the item is gone
   * meanwhile, and counts as done).
   */
  createOrReplaceEncoded<T>(items: readonly T[], family: (item: T) => number, encode: Encoder<T>,
    toConntrack: (item: T) => Conntrack | null): Promise<BatchResult> {
    return this.exclusive(async () => {
      const first = await this.batch(items, CT_NEW, NLM_F_CREATE | NLM_F_EXCL, family, encode);
      const clashed = first.failed.filter((f) => f.errno === ERRNO.EEXIST);
      if (clashed.length === 0) return first;
      const clash: BatchFailure[] = [];
      const again: Conntrack[] = [];
      for (const f of clashed) {
        const ct = toConntrack(items[f.index]!);
        if (ct === null) continue;
        clash.push(f);
        again.push(ct);
      }
      await this.ctBatch(again, CT_DELETE, 0, 'delete');
      const second = await this.ctBatch(again, CT_NEW, NLM_F_CREATE | NLM_F_EXCL, 'create');
      const failed = first.failed.filter((f) => f.errno !== ERRNO.EEXIST);
      for (const f of second.failed) failed.push({ ...f, index: clash[f.index]!.index });
      failed.sort((a, b) => a.index - b.index);
      return { ok: items.length - failed.length, failed };
    });
  }

  /** Sets the remaining lifetime of one entry (conntrack -U -t). */
  updateTimeout(ct: Conntrack, seconds: number): Promise<void> {
    return this.exclusive(async () => {
      const msg: Conntrack = { orig: ct.orig, timeout: seconds };
      if (ct.zone !== undefined) msg.zone = ct.zone;
      const r = await this.ctBatch([msg], CT_NEW, 0, 'update');
      if (r.failed.length > 0) throw requestError('timeout update', r.failed[0]!.errno, r.failed[0]!.message);
    });
  }

  /** Empties the table (family 0: both families). */
  flush(family = 0): Promise<void> {
    return this.exclusive(async () => {
      const errno = await this.transact(CT_DELETE, NLM_F_REQUEST | NLM_F_ACK, family, null, null);
      if (errno !== 0) throw requestError('flush', errno);
    });
  }

  /* ---------------- expectations ---------------- */

  dumpExpectations(family = 0): Promise<Expectation[]> {
    return this.exclusive(async () => {
      for (let attempt = 0; ; attempt++) {
        const out: Expectation[] = [];
        const r = await this.runDump(EXP_GET, family, (buf, s, e) => out.push(readExpectation(buf, s, e)));
        if (!r.interrupted || attempt >= this.dumpRetries) return out;
        this.stats.dumpRestarts++;
      }
    });
  }

  createExpectations(exps: readonly Expectation[]): Promise<BatchResult> {
    return this.exclusive(() => this.batch(exps, EXP_NEW, NLM_F_CREATE | NLM_F_EXCL, (e) => e.master.l3,
      (w, e) => writeExpectationAttrs(w, e, 'create')));
  }

  removeExpectations(exps: readonly Expectation[]): Promise<BatchResult> {
    return this.exclusive(() => this.batch(exps, EXP_DELETE, 0, (e) => e.tuple.l3,
      (w, e) => writeExpectationAttrs(w, e, 'delete')));
  }

  flushExpectations(family = 0): Promise<void> {
    return this.exclusive(async () => {
      const errno = await this.transact(EXP_DELETE, NLM_F_REQUEST | NLM_F_ACK, family, null, null);
      if (errno !== 0) throw requestError('expectation flush', errno);
    });
  }

  /* ---------------- engine ---------------- */

  /** Serialises operations: a dump yields between chunks and must not interleave with another request. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private nextSeq(): number {
    // Wrap early, so the contiguous seqs of one batch never cross zero.
    this.seq = this.seq >= 0xffff0000 ? 1 : this.seq + 1;
    return this.seq;
  }

  private ctBatch(cts: readonly Conntrack[], type: number, flags: number, mode: CtWriteMode): Promise<BatchResult> {
    return this.batch(cts, type, flags, (ct) => ct.orig.l3, mode === 'create' ? writeCreate : (w, ct) => writeConntrackAttrs(w, ct, mode));
  }

  /**
   * Sends items in batches of batchSize messages, NLM_F_ACK only on the last
   * of each (errors come back for every failing message regardless), and
   * collects failures by sequence number.
   */
  private async batch<T>(items: readonly T[], type: number, flags: number, family: (item: T) => number,
    encode: Encoder<T>): Promise<BatchResult> {
    const failed: BatchFailure[] = [];
    const w = this.w;
    let i = 0;
    let batches = 0;
    while (i < items.length) {
      w.reset();
      let n = 0;
      let firstSeq = 0;
      let lastStart = -1;
      while (i < items.length && n < this.batchSize && w.off < MAX_BATCH_BYTES) {
        const item = items[i]!;
        const seq = n === 0 ? this.nextSeq() : (firstSeq + n) >>> 0;
        if (n === 0) firstSeq = seq;
        const start = w.off;
        try {
          const at = beginMessage(w, type, NLM_F_REQUEST | flags, seq, family(item));
          encode(w, item);
          endMessage(w, at);
          this.posToIndex[n] = i;
          lastStart = at;
          n++;
        } catch (e) {
          // An entry the codec cannot express: reject it alone, keep the batch.
          w.off = start;
          failed.push({ index: i, errno: ERRNO.EINVAL, message: (e as Error).message });
        }
        i++;
      }
      if (n === 0) continue;
      const lastSeq = (firstSeq + n - 1) >>> 0;
      // Every seq of the batch was consumed, so the next batch starts after it.
      this.seq = lastSeq;
      setMessageFlags(w, lastStart, NLM_F_REQUEST | flags | NLM_F_ACK);
      this.sock.send(w.view());
      this.stats.requests++;
      this.stats.messagesSent += n;
      await this.collectAcks(firstSeq, n, lastSeq, failed);
      if (++batches % YIELD_EVERY === 0) await tick();
    }
    failed.sort((a, b) => a.index - b.index);
    return { ok: items.length - failed.length, failed };
  }

  private async collectAcks(firstSeq: number, n: number, lastSeq: number, failed: BatchFailure[]): Promise<void> {
    const r = this.reader;
    let done = false;
    const deadline = Date.now() + this.replyTimeoutMs;
    while (!done) {
      const buf = this.sock.drain();
      if (!buf) {
        if (Date.now() > deadline) {
          throw new NetlinkError('CTSYNC_ERR_NETLINK_TIMEOUT', `no ACK for netlink batch (seq ${firstSeq}..${lastSeq})`, ERRNO.ETIME,
            { firstSeq, lastSeq });
        }
        await new Promise((res) => setTimeout(res, 1));
        continue;
      }
      r.reset(buf);
      while (r.next()) {
        if (r.type !== NLMSG_ERROR || r.pid !== this.sock.portid) continue;
        const info = r.error();
        const pos = (info.origSeq - firstSeq) >>> 0;
        if (pos >= n) continue; // a stale reply from an earlier, timed-out request
        if (info.errno !== 0) {
          const f: BatchFailure = { index: this.posToIndex[pos]!, errno: info.errno };
          if (info.extack !== undefined) f.message = info.extack;
          failed.push(f);
        }
        if (info.origSeq === lastSeq) done = true;
      }
    }
  }

  /** One request, its replies passed to onReply, and its final errno (0 = ACK). */
  private async transact(type: number, flags: number, family: number, encode: ((w: NlWriter) => void) | null,
    onReply: ((buf: Buffer, start: number, end: number, type: number) => void) | null): Promise<number> {
    const w = this.w;
    w.reset();
    const seq = this.nextSeq();
    // A family-specific flush needs version 1, or the kernel ignores the family.
    const at = beginMessage(w, type, flags, seq, family, 0, family !== 0 ? NFNETLINK_V1 : NFNETLINK_V0);
    if (encode) encode(w);
    endMessage(w, at);
    this.sock.send(w.view());
    this.stats.requests++;
    this.stats.messagesSent++;
    const r = this.reader;
    const deadline = Date.now() + this.replyTimeoutMs;
    for (;;) {
      const buf = this.sock.drain();
      if (!buf) {
        if (Date.now() > deadline) {
          throw new NetlinkError('CTSYNC_ERR_NETLINK_TIMEOUT', `no reply to netlink request seq ${seq}`, ERRNO.ETIME, { seq, type });
        }
        await new Promise((res) => setTimeout(res, 1));
        continue;
      }
      r.reset(buf);
      let result = -1;
      while (r.next()) {
        if (r.seq !== seq || r.pid !== this.sock.portid) continue;
        if (r.type === NLMSG_ERROR) {
          result = r.error().errno;
        } else if (r.type >= NLMSG_MIN_TYPE && onReply) {
          try {
            onReply(r.buf, r.attrsStart(), r.msgEnd, r.type);
          } catch (e) {
            this.countDecodeError(e);
          }
        }
      }
      if (result >= 0) return result;
    }
  }

  private async runDump(type: number, family: number, onEntry: (buf: Buffer, start: number, end: number) => void): Promise<DumpResult> {
    const w = this.w;
    w.reset();
    const seq = this.nextSeq();
    const at = beginMessage(w, type, NLM_F_REQUEST | NLM_F_DUMP, seq, family);
    endMessage(w, at);
    this.sock.send(w.view());
    this.stats.requests++;
    this.stats.messagesSent++;
    try {
      return await this.readDump(seq, onEntry);
    } catch (e) {
      this.discardDump(seq);
      throw e;
    }
  }

  private async readDump(seq: number, onEntry: (buf: Buffer, start: number, end: number) => void): Promise<DumpResult> {
    const r = this.reader;
    let count = 0;
    let interrupted = false;
    let deadline = Date.now() + this.replyTimeoutMs;
    for (;;) {
      const buf = this.sock.drain(DUMP_CHUNK);
      if (!buf) {
        if (Date.now() > deadline) {
          throw new NetlinkError('CTSYNC_ERR_NETLINK_TIMEOUT', `dump seq ${seq} stalled after ${count} entries`, ERRNO.ETIME, { seq, count });
        }
        await new Promise((res) => setTimeout(res, 1));
        continue;
      }
      r.reset(buf);
      let done = false;
      while (r.next()) {
        if (r.seq !== seq || r.pid !== this.sock.portid) continue;
        if (r.flags & NLM_F_DUMP_INTR) interrupted = true;
        if (r.type === NLMSG_DONE) {
          const st = r.error();
          if (st.errno !== 0) throw requestError('dump', st.errno);
          done = true;
        } else if (r.type === NLMSG_ERROR) {
          const st = r.error();
          if (st.errno !== 0) throw requestError('dump', st.errno, st.extack);
        } else if (r.type >= NLMSG_MIN_TYPE) {
          try {
            onEntry(r.buf, r.attrsStart(), r.msgEnd);
            count++;
          } catch (e) {
            this.countDecodeError(e);
          }
        }
      }
      if (done) return { count, interrupted };
      deadline = Date.now() + this.replyTimeoutMs;
      await tick(); // big dumps arrive in 4 MiB chunks; let timers run between them
    }
  }

  /**
   * Reads what is left of an abandoned dump: the kernel refuses a new dump
   * (EBUSY) on this socket while one is still running.
   */
  private discardDump(seq: number): void {
    const r = this.reader;
    for (let i = 0; i < 100_000; i++) {
      // Closed under us (daemon shutdown mid-dump): nothing left to read, and every drain would throw.
      if (this.sock.closed) return;
      let buf: Buffer | null;
      try {
        buf = this.sock.drain(DUMP_CHUNK);
      } catch {
        continue;
      }
      if (!buf) return;
      try {
        r.reset(buf);
        while (r.next()) if (r.seq === seq && (r.type === NLMSG_DONE || r.type === NLMSG_ERROR)) return;
      } catch {
        // garbage in an abandoned dump: keep discarding
      }
    }
  }

  /** A malformed entry is counted and skipped; any other error (a throwing callback) propagates. */
  private countDecodeError(e: unknown): void {
    if ((e as NetlinkError)?.code !== 'CTSYNC_ERR_NETLINK_DECODE') throw e;
    this.stats.decodeErrors++;
  }
}

const ctFamily = (ct: Conntrack): number => ct.orig.l3;
const asIs = (ct: Conntrack): Conntrack => ct;


function requestError(op: string, errno: number, extack?: string): NetlinkError {
  return new NetlinkError('CTSYNC_ERR_NETLINK_REQUEST', `ctnetlink ${op} failed: errno ${errno}${extack ? ` (${extack})` : ''}`,
    errno, extack ? { op, extack } : { op });
}
